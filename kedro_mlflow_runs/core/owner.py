"""Who a RunContext reports to and ends through, and the transitions its state machine allows."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Protocol

from ..errors import RunStateError
from ..handle import Outcome, RunState

if TYPE_CHECKING:  # pragma: no cover
    from .context import RunContext
    from .process import ProcessState

__all__ = ["END_STATES", "TRANSITIONS", "RunOwner", "check_end_status", "check_transition"]

#: The only transitions a RunContext makes.
TRANSITIONS: Final = MappingProxyType({
    RunState.IDLE: frozenset({RunState.ACTIVE, RunState.DISABLED}),
    RunState.ACTIVE: frozenset({RunState.FINISHED, RunState.FAILED, RunState.KILLED}),
})
END_STATES: Final = (RunState.FINISHED, RunState.FAILED, RunState.KILLED)


class RunOwner(Protocol):
    """What a RunContext reports to, and ends through (the process's ``RunRegistry`` by default)."""

    @property
    def process(self) -> ProcessState: ...

    def activated(self, ctx: RunContext) -> None: ...

    def finish(self, target: RunContext, outcome: Outcome) -> RunContext | None: ...


def check_transition(state: RunState, target: RunState, action: str, *, kedro_run_id: str | None,
                     run_id: str | None) -> None:
    """Raise :class:`RunStateError` unless ``state`` may move to ``target``."""
    allowed = TRANSITIONS.get(state, frozenset())
    if target not in allowed:
        raise RunStateError(
            f"Cannot {action}: RunContext for Kedro run {kedro_run_id!r} is {state.value}; allowed from "
            f"{state.value}: {', '.join(sorted(s.value for s in allowed)) or 'nothing'}.",
            run_id=run_id,
        )


def check_end_status(state: RunState, status: RunState, *, kedro_run_id: str | None, run_id: str | None) -> None:
    """Raise :class:`RunStateError` unless ``status`` is a status a run can end with."""
    if status not in END_STATES:
        raise RunStateError(
            f"Cannot end the run of Kedro run {kedro_run_id!r} (now {state.value}) as "
            f"{status.value}: use one of {', '.join(s.value for s in END_STATES)}.", run_id=run_id
        )
