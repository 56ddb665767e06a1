"""Opening the MLflow run of a tracked Kedro run: recorder, header provider, signal guard, system
metrics, autologging, dataset checks, pipeline models, parameters (``pipeline_start.py`` has decided
that the run is tracked and registered it)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping
from typing import Any

from ..config import MlflowConfig
from ..core.catalog import parameter_values
from ..core.context import RunContext
from ..core.heap_freeze import freeze_heap
from ..core.registry import REGISTRY
from ..core.tracked import EndStep, TrackedRun
from ..handle import Outcome
from ..io.naming import check_output_runs, validate_datasets
from ..params import parameter_inputs
from ..pipeline.planning import plan_pipeline_models
from ..recording.recorder import RunRecorder
from .attempt_steps import first_beat, new_attempt, start_beating, track_attempt
from .autolog import autolog_env, set_autolog
from .child_runs import start_child_runs
from .clusters import publish_to_clusters
from .header_provider import install, publish
from .run_info import run_tags
from .runner_guard import session_runner, shutdown_manager
from .signals import SignalGuard
from .system_metrics import check_system_metrics, start_system_metrics

__all__ = ["start_tracked_run"]

logger = logging.getLogger(__name__)


def start_tracked_run(tracked: TrackedRun, kedro_context: Any, environment: dict[str, str],
                      run_params: Mapping[str, Any], pipeline: Any, catalog: Any) -> None:
    """IDLE -> ACTIVE, then everything the run needs before its first node; a failure ends it FAILED.

    Args:
        tracked: the registered Kedro run.
        kedro_context: the session's KedroContext (None when the hooks read conf/ themselves).
        environment: what the run publishes for its duration (HTTP settings, credentials).
        run_params, pipeline, catalog: what Kedro gave ``before_pipeline_run``.
    """
    reg, ctx, config = REGISTRY, tracked.context, tracked.config
    kedro_run_id = str(ctx.kedro_run_id)
    pipelines = run_params.get("pipeline_names") or ["__default__"]
    names = sorted(pipeline.datasets())
    autolog = config.tracking.autolog
    if autolog.enabled:  # for spawned workers, too
        environment.update(autolog_env(autolog.flavors, autolog.kwargs))
    REGISTRY.process.show_package_info()
    attempt = new_attempt(kedro_run_id, pipeline) if config.tracking.run.id else None
    recorder = _recorder(kedro_run_id, config, pipeline, catalog, tracked, attempt.id if attempt else None)
    if recorder is not None:
        environment.update(recorder.environment())
    try:
        if config.server.header_provider is not None:  # before the first request
            _header_provider(config, kedro_context, tracked, environment)
        if config.tracking.system_metrics.enabled:  # a missing psutil is a clear error before the run opens
            check_system_metrics(config.source)
        ctx.start(run_name=",".join(pipelines), tags={**run_tags(run_params, config), **first_beat(attempt)},
                  publish=True, environment=environment, attempt_id=attempt.id if attempt else None)
    except BaseException:
        reg.finish(kedro_run_id, Outcome.killed("the MLflow run could not be opened"))  # forget it
        raise
    tracked.cleanups.append(freeze_heap())  # the collector skips MLflow's objects while the run runs
    runner = session_runner()

    def on_signal(signum: int) -> None:
        reg.kill(kedro_run_id, f"{signal.Signals(signum).name} received")

    guard = SignalGuard(on_signal, stop_workers=(lambda: shutdown_manager(runner)) if runner is not None else None)
    if guard.install():
        tracked.guard = guard
    if recorder is not None:
        tracked.before_end.append(EndStep(_RECORDER_STEP, recorder.write))
    start_beating(ctx, tracked, attempt)
    if config.tracking.system_metrics.enabled:
        _system_metrics(ctx, tracked)
    try:  # Kedro calls no error hook for errors raised here: end the run FAILED ourselves
        if attempt is not None:
            track_attempt(ctx, tracked, attempt)
        _autologging(config, tracked)
        validate_datasets(catalog, names)
        check_output_runs(catalog, pipeline.all_outputs(), ctx.handle.run_id)
        plan_pipeline_models(run_params, pipeline, catalog, tracked)  # models of pipeline_ml_factory pipelines
        inputs = parameter_inputs(sorted(pipeline.inputs()))
        if inputs:
            ctx.log_params(parameter_values(catalog, inputs))
        start_child_runs(tracked, pipeline, catalog)  # tracking.child_runs
        # Dask workers, with the child runs; taken back before the recorder's end step needs their events
        publish_to_clusters(tracked, before=_RECORDER_STEP)
    except BaseException as exc:
        try:
            reg.finish(kedro_run_id, Outcome.failed(exc))
        except Exception:  # keep the original error in front
            logger.exception("Could not record the failure in MLflow run %s", ctx.run_id)
        raise


_RECORDER_STEP = "the node timeline and the data lineage"


def _header_provider(config: MlflowConfig, kedro_context: Any, tracked: TrackedRun,
                     environment: dict[str, str]) -> None:
    """Give the project's header provider to MLflow for the run, and publish it (``init_kwargs`` in a
    private file, never in ``environment``) for spawned workers; both are undone when the run ends."""
    spec = config.server.header_provider
    if spec is None:
        return
    tracked.cleanups.append(install(spec, kedro_context))
    published, unpublish = publish(spec)
    tracked.cleanups.append(unpublish)
    environment.update(published)


def _recorder(kedro_run_id: str, config: MlflowConfig, pipeline: Any, catalog: Any,
              tracked: TrackedRun, attempt_id: str | None) -> RunRecorder | None:
    """The node timeline and lineage recorder of the run (None when off, or when it cannot be built)."""
    if not (config.tracking.timeline.enabled or config.tracking.lineage.enabled):
        return None
    try:
        recorder = RunRecorder.for_pipeline(kedro_run_id, config, pipeline, catalog, attempt_id)
    except Exception as exc:  # lineage and timeline never fail a run
        logger.warning("Not recording the node timeline and lineage of Kedro run %s: %s: %s", kedro_run_id,
                       type(exc).__name__, exc)
        return None
    if recorder is not None:
        tracked.recorder = recorder
        tracked.cleanups.append(recorder.cleanup)
    return recorder


def _system_metrics(ctx: RunContext, tracked: TrackedRun) -> None:
    try:
        start_system_metrics(ctx, tracked)
    except Exception as exc:  # system metrics never fail a run
        logger.warning("Could not start system metrics for MLflow run %s: %s: %s", ctx.run_id, type(exc).__name__, exc)


def _autologging(config: MlflowConfig, tracked: TrackedRun) -> None:
    """``tracking.autolog`` on for the run, else (``disable_autologging``, kedro-mlflow's default: no
    stray runs) the autologging that was on suspended for the run; as it was again when the run ends."""
    autolog = config.tracking.autolog
    if not autolog.enabled and not config.tracking.disable_tracking.disable_autologging:
        return
    tracked.cleanups.append(REGISTRY.process.suspend_autologging())
    if autolog.enabled:
        set_autolog(autolog.flavors, autolog.kwargs, on=True)


