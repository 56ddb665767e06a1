"""``before_pipeline_run``: register the Kedro run, then open its MLflow run (or publish that it is off)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping
from typing import Any

from ..config import MlflowConfig, config_from_project
from ..core.context import RunContext
from ..core.registry import REGISTRY
from ..core.tracked import EndStep, TrackedRun
from ..handle import Outcome
from ..io.naming import check_output_runs, name_datasets, validate_datasets
from ..params import parameter_inputs
from ..pipeline.planning import plan_pipeline_models
from ..recording.recorder import RunRecorder
from .autolog import autolog_env, set_autolog
from .header_provider import install, publish
from .run_info import run_tags
from .runner_guard import guard_runner, session_runner, shutdown_manager
from .signals import SignalGuard
from .system_metrics import check_system_metrics, start_system_metrics

__all__ = ["start_pipeline_run"]

logger = logging.getLogger(__name__)


def start_pipeline_run(run_params: Mapping[str, Any], pipeline: Any, catalog: Any) -> None:
    reg = REGISTRY
    kedro_run_id = str(run_params.get("run_id"))
    if reg.tracked(kedro_run_id) is not None:  # a second registered hook instance
        return
    kedro_context, config, credentials = _config_for(run_params)
    tracked = reg.begin(RunContext(config, kedro_run_id=kedro_run_id, owner=reg))
    if tracked is None:  # a second registered hook instance: the first one did it all
        return
    ctx = tracked.context
    reg.close_stale(kedro_run_id)
    names = sorted(pipeline.datasets())
    # default model names and metric keys, and which Kedro run the datasets belong to
    name_datasets(catalog, names, kedro_run_id=kedro_run_id)
    # for this run only: bounded HTTP retries, and the credentials MLflow reads from the environment
    environment = {**config.server.http_env, **config.server.uri_credentials, **credentials}
    autolog = config.tracking.autolog
    if autolog.enabled:  # for spawned workers, too
        environment.update(autolog_env(autolog.flavors, autolog.kwargs))
    pipelines = run_params.get("pipeline_names") or ["__default__"]
    if config.tracking_disabled_for(pipelines):
        reg.disable(kedro_run_id, environment)
        _guard_session_runner(kedro_run_id)  # a SystemExit must give the environment back too
        logger.info("MLflow tracking is disabled for pipeline(s) %s.", pipelines)
        return
    REGISTRY.process.show_package_info()
    recorder = _recorder(kedro_run_id, config, pipeline, catalog, tracked)
    if recorder is not None:
        environment.update(recorder.environment())
    try:
        if config.server.header_provider is not None:  # before the first request
            _header_provider(config, kedro_context, tracked, environment)
        if config.tracking.system_metrics.enabled:  # a missing psutil is a clear error before the run opens
            check_system_metrics(config.source)
        ctx.start(run_name=",".join(pipelines), tags=run_tags(run_params, config), publish=True,
                  environment=environment)
    except BaseException:
        reg.finish(kedro_run_id, Outcome.killed("the MLflow run could not be opened"))  # forget it
        raise
    runner = session_runner()
    def on_signal(signum: int) -> None:
        reg.kill(kedro_run_id, f"{signal.Signals(signum).name} received")

    guard = SignalGuard(on_signal, stop_workers=(lambda: shutdown_manager(runner)) if runner is not None else None)
    if guard.install():
        tracked.guard = guard
    if recorder is not None:
        tracked.before_end.append(EndStep("the node timeline and the data lineage", recorder.write))
    if config.tracking.system_metrics.enabled:
        _system_metrics(ctx, tracked)
    try:  # Kedro calls no error hook for errors raised here: end the run FAILED ourselves
        _autologging(config, tracked)
        validate_datasets(catalog, names)
        check_output_runs(catalog, pipeline.all_outputs(), ctx.handle.run_id)
        plan_pipeline_models(run_params, pipeline, catalog, tracked)  # models of pipeline_ml_factory pipelines
        inputs = parameter_inputs(sorted(pipeline.inputs()))
        if inputs:
            ctx.log_params({name: catalog.load(name) for name in inputs})
    except BaseException as exc:
        try:
            reg.finish(kedro_run_id, Outcome.failed(exc))
        except Exception:  # keep the original error in front
            logger.exception("Could not record the failure in MLflow run %s", ctx.run_id)
        raise
    _guard_session_runner(kedro_run_id)


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
              tracked: TrackedRun) -> RunRecorder | None:
    """The node timeline and lineage recorder of the run (None when off, or when it cannot be built)."""
    if not (config.tracking.timeline.enabled or config.tracking.lineage.enabled):
        return None
    try:
        recorder = RunRecorder.for_pipeline(kedro_run_id, config, pipeline, catalog)
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


def _guard_session_runner(kedro_run_id: str) -> None:
    runner = session_runner()
    if runner is None:
        logger.debug("No KedroSession.run on the stack: SystemExit from a node ends the run at the next run or exit.")
        return

    def escaped(exc: BaseException) -> None:
        try:
            REGISTRY.kill(kedro_run_id, f"{type(exc).__name__} ended the Kedro run")
        except Exception:  # keep the original exception in front
            logger.exception("Could not end the MLflow run of Kedro run %s", kedro_run_id)

    tracked = REGISTRY.tracked(kedro_run_id)
    unguard = guard_runner(runner, escaped)
    if tracked is not None and unguard is not None:
        tracked.cleanups.append(unguard)


def _config_for(run_params: Mapping[str, Any]) -> tuple[Any, MlflowConfig, dict[str, str]]:
    """The Kedro context, config and credentials after_context_created loaded; else the config read
    from the project's conf/ (no context, no credentials)."""
    found = REGISTRY.configs.take()
    if found is not None:
        return found.context, found.config, found.credentials
    return None, config_from_project(run_params.get("project_path") or ".", run_params.get("env")), {}
