"""The MLflow boundary: where run data goes to MLflow, and the one error translation.

Every call names its run explicitly through a cached :class:`mlflow.MlflowClient` bound to one
store (never the global default). MLflow is imported lazily: it costs over a second. Failures
become our errors (``_errors.py``); messages never hold a password.

MLflow's fluent state (the active-run stack, the global URIs) is not changed here but by
``kedro_mlflow_runs.core.process``; every MLflow private name is in ``compat/mlflow.py``. Nothing
here imports the rest of the plugin but its leaves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import MAX_DATASETS_PER_BATCH, MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH
from ._errors import sqlite_path, storage_failure, translate
from ._files import FileCalls
from ._runs import RunCalls
from ._store import CLIENTS, probe_database

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.entities import Run

__all__ = [
    "CLIENTS",
    "MAX_DATASETS_PER_BATCH",
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_TAGS_PER_BATCH",
    "Tracker",
    "probe_database",
    "run_entity",
    "sqlite_path",
    "storage_failure",
    "translate",
]


class Tracker(RunCalls, FileCalls):
    """Tracking calls for one store, each naming its run explicitly.

    Args:
        tracking_uri: the tracking store (``sqlite:///...``, ``http://...``, ...).
        registry_uri: the model registry, when it differs from the tracking store.
        scope: a context manager factory entered around each call (the credentials a call made
            outside a run needs); none by default.
    """

    __slots__ = ()


def run_entity(run_id: str, experiment_id: str) -> Run:
    """A minimal ``Run`` naming ``run_id``, enough for MLflow's active-run stack (no request)."""
    from mlflow.entities import Run, RunData, RunInfo

    info = RunInfo(
        run_id=run_id,
        experiment_id=experiment_id,
        user_id="",
        status="RUNNING",
        start_time=0,
        end_time=None,
        lifecycle_stage="active",
    )
    return Run(info, RunData())
