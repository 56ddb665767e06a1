"""In a notebook: the project's store and experiment become MLflow's defaults for the kernel.

``%load_ext kedro.ipython`` / ``%reload_kedro`` create the project's Kedro context, which runs our
``after_context_created`` hook. In an IPython kernel (Jupyter, ``kedro ipython``) that hook also
makes the project's tracking store, registry and experiment MLflow's defaults for the rest of the
kernel (through the environment variables MLflow reads: ``MLFLOW_TRACKING_URI``,
``MLFLOW_REGISTRY_URI``, ``MLFLOW_EXPERIMENT_ID``, and the credentials of ``server.credentials``),
so ``with mlflow.start_run():`` in a cell opens its run where ``kedro run`` logs, and the plugin's
datasets saved inside it log into that run. The next ``%reload_kedro`` replaces them. Outside
IPython (``kedro run``, scripts, tests) nothing is changed outside a run.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from ..config import MlflowConfig
from ..core.registry import REGISTRY
from ..errors import KedroMlflowRunsError
from ..tracking import Tracker

__all__ = ["adopt_project_store", "in_ipython"]

logger = logging.getLogger(__name__)


def in_ipython() -> bool:
    """Whether this process is an IPython kernel or shell (without importing IPython)."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    return get is not None and get() is not None


def adopt_project_store(config: MlflowConfig, credentials: Mapping[str, str]) -> None:
    """Make the project's store and experiment MLflow's defaults in this kernel (see the module docstring)."""
    secrets = {**config.server.uri_credentials, **credentials}
    tracker = Tracker(config.server.tracking_uri, config.server.registry_uri,
                      scope=lambda: REGISTRY.process.environment(secrets))
    try:
        experiment_id: str | None = tracker.ensure_experiment(
            config.tracking.experiment.name, artifact_location=config.artifact_location,
            restore_if_deleted=config.tracking.experiment.restore_if_deleted, tags=config.tracking.experiment.tags)
    except KedroMlflowRunsError as exc:  # the notebook still loads; MLflow creates the experiment later
        logger.warning("Could not prepare MLflow experiment '%s' for this notebook: %s",
                       config.tracking.experiment.name, exc)
        experiment_id = None
    REGISTRY.process.adopt_defaults({
        "MLFLOW_TRACKING_URI": config.server.tracking_uri,
        "MLFLOW_REGISTRY_URI": config.server.registry_uri,
        "MLFLOW_EXPERIMENT_ID": experiment_id,
        "MLFLOW_EXPERIMENT_NAME": None if experiment_id else config.tracking.experiment.name,
        **secrets,
    })
    logger.info("MLflow in this notebook: tracking store %s, experiment '%s' (id %s).",
                config.server.redacted_tracking_uri, config.tracking.experiment.name, experiment_id)
