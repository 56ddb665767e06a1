"""The small values that describe a run: its state, who owns it, its handle, how it ended.

Nothing here imports MLflow or holds state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

from ._redact import redact_uri

__all__ = ["Outcome", "Ownership", "RunHandle", "RunState"]


class RunState(str, Enum):
    """Where a RunContext is in its life."""

    IDLE = "IDLE"
    ACTIVE = "ACTIVE"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    DISABLED = "DISABLED"

    @property
    def is_terminal(self) -> bool:
        return self not in (RunState.IDLE, RunState.ACTIVE)


class Ownership(str, Enum):
    """Who ends an ACTIVE context's MLflow run."""

    OWNED = "OWNED"
    ATTACHED = "ATTACHED"


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as data: the one argument of ``RunRegistry.finish``.

    Attributes:
        status: FINISHED, FAILED or KILLED.
        error: what failed or interrupted the run (None when it finished).
        node: the Kedro node that failed, when known.
    """

    status: RunState
    error: BaseException | None = None
    node: str | None = None

    @classmethod
    def finished(cls) -> Outcome:
        return cls(RunState.FINISHED)

    @classmethod
    def failed(cls, error: BaseException, node: str | None = None) -> Outcome:
        return cls(RunState.FAILED, error, node)

    @classmethod
    def killed(cls, reason: str | BaseException) -> Outcome:
        from .errors import RunInterruptedError

        error = reason if isinstance(reason, BaseException) else RunInterruptedError(reason)
        return cls(RunState.KILLED, error)

    @classmethod
    def of_exception(cls, exc: BaseException | None) -> Outcome:
        """FINISHED for None, FAILED for an ``Exception``, KILLED for anything else (SystemExit, ...)."""
        if exc is None:
            return cls.finished()
        if isinstance(exc, Exception):
            return cls.failed(exc)
        return cls(RunState.KILLED, exc)


@dataclass(frozen=True)
class RunHandle:
    """The identity of an MLflow run: enough for any process to attach to it.

    Attributes:
        run_id: the MLflow run id.
        tracking_uri: where the run lives.
        experiment_id: the run's experiment.
        registry_uri: the model registry, when it differs from the tracking store.
        kedro_run_id: the Kedro run (session id) that opened or attached the run, if any.
        attempt_id: the attempt of that Kedro run, when it attached to a run (``core/attempts.py``).
    """

    run_id: str
    tracking_uri: str
    experiment_id: str
    registry_uri: str | None = None
    kedro_run_id: str | None = None
    attempt_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"RunHandle(run_id={self.run_id!r}, tracking_uri={redact_uri(self.tracking_uri)!r}, "
            f"experiment_id={self.experiment_id!r}, kedro_run_id={self.kedro_run_id!r})"
        )

    def to_json(self) -> str:
        """The handle as a JSON string (for an environment variable or a message queue)."""
        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_json(cls, text: str) -> RunHandle:
        """The handle :meth:`to_json` wrote."""
        return cls.from_mapping(json.loads(text))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RunHandle:
        """The handle of a mapping of its fields (unknown keys are ignored)."""
        values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(cls)}
        return cls(**values)
