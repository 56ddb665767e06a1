"""``before_pipeline_run``: register the Kedro run, then open its MLflow run (``tracked_start.py``) or
publish that tracking is off for it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..config import MlflowConfig, config_from_project
from ..core.context import RunContext
from ..core.registry import REGISTRY
from ..io.naming import name_datasets
from .runner_guard import guard_runner, session_runner

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
    reg.close_stale(kedro_run_id)
    names = sorted(pipeline.datasets())
    # default model names and metric keys, and which Kedro run the datasets belong to
    name_datasets(catalog, names, kedro_run_id=kedro_run_id)
    # for this run only: bounded HTTP retries, and the credentials MLflow reads from the environment
    environment = {**config.server.http_env, **config.server.uri_credentials, **credentials}
    pipelines = run_params.get("pipeline_names") or ["__default__"]
    if config.tracking_disabled_for(pipelines):
        reg.disable(kedro_run_id, environment)
        _guard_session_runner(kedro_run_id)  # a SystemExit must give the environment back too
        logger.info("MLflow tracking is disabled for pipeline(s) %s.", pipelines)
        return
    from .tracked_start import start_tracked_run  # a run with tracking disabled never loads what tracking needs

    start_tracked_run(tracked, kedro_context, environment, run_params, pipeline, catalog)
    _guard_session_runner(kedro_run_id)


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
