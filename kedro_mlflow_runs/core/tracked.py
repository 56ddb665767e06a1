"""What one Kedro run holds while it is in progress in this process, besides its RunContext."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # pragma: no cover
    from ..config import MlflowConfig
    from ..handle import Outcome
    from .context import RunContext

__all__ = ["EndStep", "TrackedRun"]

logger = logging.getLogger(__name__)


class EndStep(NamedTuple):
    """A step run by ``RunRegistry.finish`` before a run ends, whatever its outcome.

    Attributes:
        label: what the step records, for the warning when it fails ("the node timeline").
        call: called with the context and the outcome.
    """

    label: str
    call: Callable[[RunContext, Outcome], None]


class TrackedRun:
    """A Kedro run's context, config, signal guard, cleanups, success and end steps, and recorder."""

    __slots__ = ("before_end", "before_success", "children", "cleanups", "clusters", "config", "context", "guard",
                 "recorder")

    def __init__(self, context: RunContext, config: MlflowConfig) -> None:
        self.context = context
        self.config = config
        self.guard: Any = None  # the framework's signal guard (``restore()`` puts the handlers back)
        self.cleanups: list[Callable[[], None]] = []  # the runner's own run method, autologging off, ...
        #: called with the context, oldest first, when the pipeline succeeded and before the run ends
        #: FINISHED (pipeline models); one that raises ends the run FAILED.
        self.before_success: list[Callable[[RunContext], None]] = []
        #: run by ``finish`` for ANY outcome, oldest first, in the process that runs the Kedro run,
        #: before the run ends (system metrics stopped, timeline and lineage written). Bounded in
        #: time; a step that fails is logged and never changes the status.
        self.before_end: list[EndStep] = []
        #: what the run records about itself (node timeline, lineage): see ``recording/recorder.py``
        self.recorder: Any = None
        #: what the run handed to a compute cluster (Dask workers): see ``framework/dask_cluster.py``
        self.clusters: Any = None
        #: the routing of its child runs (``tracking.child_runs``): see ``core/children.py``
        self.children: dict[str, Any] | None = None

    def release(self) -> None:
        """Put back the signal handlers, then undo the cleanups, newest first."""
        try:
            if self.guard is not None:
                self.guard.restore()
        finally:
            for cleanup in reversed(self.cleanups):
                try:
                    cleanup()
                except Exception:  # one failing cleanup must not keep the others from running
                    logger.debug("A cleanup of Kedro run %s failed", self.context.kedro_run_id, exc_info=True)
