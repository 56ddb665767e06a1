"""The steps that run just before a run ends, whatever its outcome: bounded, and never in the way.

``RunRegistry.finish`` is called from Kedro's hooks but also from signal handlers and atexit, so
the steps (run before the run is closed, or right after it for a KILLED run, see
:data:`KILLED_END_STEPS_TIMEOUT_S`) (stop the system-metrics monitor, write the timeline and the lineage)
run in a helper
thread that the caller waits for at most :data:`END_STEPS_TIMEOUT_S` seconds. A step that fails
is logged as a warning and the others still run; the run's status is never changed by them.
A ``KeyboardInterrupt`` while waiting (a second Ctrl-C) stops the wait: the caller closes the run
first and re-raises it afterwards.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..handle import Outcome
    from .context import RunContext
    from .tracked import EndStep

__all__ = ["END_STEPS_TIMEOUT_S", "KILLED_END_STEPS_TIMEOUT_S", "run_end_steps"]

logger = logging.getLogger(__name__)

#: How long ``finish`` waits for the end steps of one run before it ends the run anyway.
END_STEPS_TIMEOUT_S = 60.0
#: For a KILLED run (a signal, the process exiting) the run is closed first and the steps then get
#: this long: a container's SIGKILL follows its SIGTERM within seconds.
KILLED_END_STEPS_TIMEOUT_S = 5.0


def run_end_steps(
    steps: Sequence[EndStep], ctx: RunContext, outcome: Outcome,
    timeout: float = END_STEPS_TIMEOUT_S,
) -> BaseException | None:
    """Run ``steps`` (oldest first) within ``timeout`` seconds; return an interruption to re-raise later."""

    def run_all() -> None:
        for step in list(steps):
            try:
                step.call(ctx, outcome)
            except Exception as exc:
                logger.warning("Could not record %s in MLflow run %s: %s: %s", step.label, ctx.run_id,
                               type(exc).__name__, exc, exc_info=logger.isEnabledFor(logging.DEBUG))

    worker = threading.Thread(target=run_all, name="kedro-mlflow-runs-end-steps", daemon=True)
    try:
        worker.start()
    except RuntimeError:  # no new thread at interpreter shutdown (Python 3.12+ atexit): run them here
        run_all()
        return None
    try:
        worker.join(timeout)
    except BaseException as exc:  # Ctrl-C while waiting: end the run now, re-raise afterwards
        logger.warning("Interrupted while recording the timeline and lineage of MLflow run %s; ending it.",
                       ctx.run_id)
        return exc
    if worker.is_alive():
        logger.warning("Recording the timeline and lineage of MLflow run %s took over %.0f s; ending the run "
                       "without waiting for it.", ctx.run_id, timeout)
    return None

