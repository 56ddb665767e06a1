"""``tracking.system_metrics``: MLflow's ``system/...`` metrics for the whole ``kedro run``.

MLflow samples CPU, memory, disk, network (and GPU) only for runs opened with
``mlflow.start_run``; ours are created with the client, so the process that runs the Kedro run
starts MLflow's monitor when the run starts, and stops it (after one last sample, so a short run
still gets its metrics) before the run ends, whatever the outcome. Needs ``psutil``: the
``kedro-mlflow-runs[system]`` extra.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING, Any

from ..core.tracked import EndStep
from ..errors import MissingDependencyError
from ..handle import Outcome, Ownership

if TYPE_CHECKING:  # pragma: no cover
    from ..core.context import RunContext
    from ..core.tracked import TrackedRun

__all__ = ["check_system_metrics", "start_system_metrics"]

logger = logging.getLogger(__name__)


def check_system_metrics(source: str) -> None:
    """Raise :class:`MissingDependencyError` when system metrics are on and psutil is missing."""
    if importlib.util.find_spec("psutil") is None:
        raise MissingDependencyError(
            f"System metrics are enabled (tracking.system_metrics.enabled in {source}, or "
            f"MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true) but psutil is not installed. Install it with "
            f"pip install 'kedro-mlflow-runs[system]', or turn system metrics off.",
            key="tracking.system_metrics.enabled",
        )


def start_system_metrics(ctx: RunContext, tracked: TrackedRun) -> None:
    """Start MLflow's monitor for ``ctx``'s run and have ``tracked`` stop it before the run ends."""
    from ..compat.mlflow import SystemMetricsMonitor

    cfg = ctx.config
    monitor = SystemMetricsMonitor(
        ctx.handle.run_id,
        sampling_interval=cfg.tracking.system_metrics.sampling_interval,
        samples_before_logging=cfg.tracking.system_metrics.samples_before_logging,
        resume_logging=ctx.ownership is Ownership.ATTACHED,  # another process may have logged steps already
        tracking_uri=ctx.handle.tracking_uri,
    )
    monitor.start()

    def stop_system_metrics(ctx: RunContext, outcome: Outcome) -> None:
        _stop(monitor)

    # first: nothing may be sampled after the run ended
    tracked.before_end.insert(0, EndStep("the system metrics", stop_system_metrics))


def _stop(monitor: Any) -> None:
    monitor.finish()  # joins its thread and flushes what it queued
    # one last sample of the stretch since the last one: a run shorter than the interval gets metrics too
    monitor.collect_metrics()
    monitor.publish_metrics(monitor.aggregate_metrics())
    monitor.mlflow_logger.flush()
