"""``before_pipeline_run``: register the Kedro run, then open its MLflow run (or publish that it is off)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping
from typing import Any

from .runner_guard import guard_runner, session_runner, shutdown_manager
from .signals import SignalGuard
from ..config import MlflowConfig
from ..handle import Outcome
from ..params import parameter_inputs
from ..core.registry import registry

__all__ = ["start_pipeline_run"]

logger = logging.getLogger(__name__)


def start_pipeline_run(run_params: Mapping[str, Any], pipeline: Any, catalog: Any) -> None:
    from ..io._naming import check_output_runs, name_datasets, validate_datasets  # no MLflow import

    reg = registry()
    kedro_run_id = str(run_params.get("run_id"))
    if reg.tracked(kedro_run_id) is not None:  # a second registered hook instance
        return
    kedro_context, config, credentials = _config_for(run_params)
    ctx = reg.begin(kedro_run_id, config)
    if ctx is None:  # a second registered hook instance: the first one did it all
        return
    reg.close_stale(kedro_run_id)
    names = sorted(pipeline.datasets())
    # default model names and metric keys, and which Kedro run the datasets belong to
    name_datasets(catalog, names, kedro_run_id=kedro_run_id)
    # for this run only: bounded HTTP retries, and the credentials MLflow reads from the environment
    environment = {**config.http_env, **config.uri_credentials, **credentials}
    if config.autolog_flavors is not None:  # for spawned workers, too
        from .autolog import autolog_env

        environment.update(autolog_env(config.autolog_flavors, config.autolog_kwargs))
    pipelines = run_params.get("pipeline_names") or ["__default__"]
    if config.tracking_disabled_for(pipelines):
        reg.disable(kedro_run_id, environment)
        _guard_session_runner(kedro_run_id)  # a SystemExit must give the environment back too
        logger.info("MLflow tracking is disabled for pipeline(s) %s.", pipelines)
        return
    _show_run_lines()
    from .run_info import run_tags

    tracked = reg.tracked(kedro_run_id)
    recorder = _recorder(kedro_run_id, config, pipeline, catalog, tracked)
    if recorder is not None:
        environment.update(recorder.environment())
    try:
        if config.header_provider is not None:  # before the first request
            _header_provider(config, kedro_context, reg.tracked(kedro_run_id), environment)
        if config.system_metrics:  # a missing psutil is a clear error before the run opens
            from .system_metrics import check_system_metrics

            check_system_metrics(config.source)
        ctx.start(run_name=",".join(pipelines), tags=run_tags(run_params, config), publish=True,
                  environment=environment)
    except BaseException:
        reg.finish(kedro_run_id, Outcome.killed("the MLflow run could not be opened"))  # forget it
        raise
    runner = session_runner()
    guard = SignalGuard(lambda signum: reg.kill(kedro_run_id, f"{signal.Signals(signum).name} received"),
                        stop_workers=(lambda: shutdown_manager(runner)) if runner is not None else None)
    if tracked is not None and guard.install():
        tracked.guard = guard
    if tracked is not None and recorder is not None:
        tracked.before_end.append(recorder.write)
    if tracked is not None and config.system_metrics:
        _system_metrics(ctx, tracked)
    try:  # Kedro calls no error hook for errors raised here: end the run FAILED ourselves
        _autologging(config, tracked)
        validate_datasets(catalog, names)
        check_output_runs(catalog, pipeline.all_outputs(), ctx.handle.run_id)
        from ..pipeline._run import plan_pipeline_models  # no MLflow import

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


def _header_provider(config: MlflowConfig, kedro_context: Any, tracked: Any, environment: dict[str, str]) -> None:
    """Give the project's header provider to MLflow for the run, and publish it (``init_kwargs`` in a
    private file, never in ``environment``) for spawned workers; both are undone when the run ends."""
    from .header_provider import install, publish

    spec = config.header_provider
    if spec is None:
        return
    remove = install(spec, kedro_context)
    if tracked is None:  # nothing would take it out again: the session's process only
        remove()
        return
    tracked.cleanups.append(remove)
    published, unpublish = publish(spec)
    tracked.cleanups.append(unpublish)
    environment.update(published)


def _recorder(kedro_run_id: str, config: MlflowConfig, pipeline: Any, catalog: Any, tracked: Any) -> Any:
    """The node timeline and lineage recorder of the run (None when off, or when it cannot be built)."""
    if tracked is None or not (config.timeline or config.lineage):
        return None
    from ..recording.recorder import RunRecorder

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


def _system_metrics(ctx: Any, tracked: Any) -> None:
    from .system_metrics import start_system_metrics

    try:
        start_system_metrics(ctx, tracked)
    except Exception as exc:  # system metrics never fail a run
        logger.warning("Could not start system metrics for MLflow run %s: %s: %s", ctx.run_id, type(exc).__name__, exc)


def _autologging(config: MlflowConfig, tracked: Any) -> None:
    """``tracking.autolog`` on for the run (off again when it ends), else ``disable_autologging``."""
    from .autolog import set_autolog

    if config.autolog_flavors is not None:
        set_autolog(config.autolog_flavors, config.autolog_kwargs, on=True)
        if tracked is not None:
            tracked.cleanups.append(lambda: set_autolog(config.autolog_flavors or (), {}, on=False))
    elif config.disable_autologging:  # kedro-mlflow's default: autologging cannot open stray runs
        import mlflow

        mlflow.autolog(disable=True)


def _show_run_lines() -> None:
    """Show where each run is (INFO), like Kedro's own lines, unless the project configured our logger."""
    package_logger = logging.getLogger("kedro_mlflow_runs")
    if package_logger.level == logging.NOTSET:
        package_logger.setLevel(logging.INFO)


def _guard_session_runner(kedro_run_id: str) -> None:
    runner = session_runner()
    if runner is None:
        logger.debug("No KedroSession.run on the stack: SystemExit from a node ends the run at the next run or exit.")
        return

    def escaped(exc: BaseException) -> None:
        try:
            registry().kill(kedro_run_id, f"{type(exc).__name__} ended the Kedro run")
        except Exception:  # keep the original exception in front
            logger.exception("Could not end the MLflow run of Kedro run %s", kedro_run_id)

    tracked = registry().tracked(kedro_run_id)
    unguard = guard_runner(runner, escaped)
    if tracked is not None and unguard is not None:
        tracked.cleanups.append(unguard)


def _config_for(run_params: Mapping[str, Any]) -> tuple[Any, MlflowConfig, dict[str, str]]:
    """The Kedro context, config and credentials after_context_created loaded; else the config read
    from the project's conf/ (no context, no credentials)."""
    found = registry().take_pending_config()
    if found is not None:
        return found
    from ..config import config_from_project

    return None, config_from_project(run_params.get("project_path") or ".", run_params.get("env")), {}
