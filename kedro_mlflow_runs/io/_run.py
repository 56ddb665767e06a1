"""Run selection for every dataset, and the MLflow plumbing the datasets share.

:func:`select_run` is the one place that implements the run-selection table:

=================  ===========  ====================================  ==========================
dataset ``run_id``  active run  save                                  load
=================  ===========  ====================================  ==========================
not set            yes          into the active run                   from the active run
not set            no           :class:`NoActiveRunError`             :class:`NoActiveRunError`
set                no           into that run (it must exist)         from that run
set, different     yes          :class:`RunConflictError`, no write   from ``run_id``
set, same          yes          into it                               from it
=================  ===========  ====================================  ==========================

No function here starts or ends a run, and none reads MLflow's fluent active-run stack.
MLflow is imported lazily.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from ..config import redact_uri, safe_cause
from ..context import current_run_context, store_uris
from ..errors import (
    DatasetRunNotFoundError,
    MlflowDatasetError,
    NoActiveRunError,
    RunConflictError,
    RunNotFoundError,
    TrackingError,
)

__all__ = ["DatasetRunNotFoundError", "RunTarget", "pinned_store", "select_run"]

Operation = Literal["save", "load"]


@dataclass(frozen=True)
class RunTarget:
    """The run a dataset reads from or writes to, and the store it lives in.

    Attributes:
        run_id: the MLflow run id.
        tracking_uri: the tracking store of the run.
        registry_uri: the model registry (None: the tracking store).
        experiment_id: the run's experiment (None until looked up).
    """

    run_id: str
    tracking_uri: str
    registry_uri: str | None
    experiment_id: str | None = None


def select_run(
    dataset: str, run_id: str | None, operation: Operation, kedro_run_id: str | None = None
) -> RunTarget:
    """The run ``dataset`` must use for ``operation``, following the run-selection table.

    Args:
        dataset: how to name the dataset in errors (class, catalog entry, flavor, path).
        run_id: the dataset's configured ``run_id``, if any.
        operation: ``"save"`` or ``"load"``.
        kedro_run_id: the Kedro run the dataset belongs to (set by the plugin's hooks): only
            that run's context is considered active.

    Returns:
        The selected run; an explicit ``run_id`` is checked to exist.

    Raises:
        NoActiveRunError: no run is active and the dataset has no ``run_id``.
        RunConflictError: on save, ``run_id`` differs from the active run; nothing was written.
        DatasetRunNotFoundError: ``run_id`` does not exist or is deleted.
    """
    ctx = current_run_context(kedro_run_id)
    active = ctx.handle if ctx is not None and ctx.is_active else None
    if run_id is None:
        if active is None:
            raise NoActiveRunError(
                f"{dataset} cannot {operation}: no MLflow run is active (no `kedro run` with "
                f"tracking enabled is in progress) and the dataset has no run_id. Use it inside "
                f"`kedro run` with tracking enabled, or set `run_id: <mlflow run id>` in its "
                f"catalog entry. No run was created."
            )
        return RunTarget(active.run_id, active.tracking_uri, active.registry_uri, active.experiment_id)
    if active is not None and run_id == active.run_id:
        return RunTarget(active.run_id, active.tracking_uri, active.registry_uri, active.experiment_id)
    if active is not None and operation == "save":
        raise RunConflictError(
            f"{dataset} cannot save: its run_id '{run_id}' differs from the active MLflow run "
            f"'{active.run_id}' of this `kedro run`. Nothing was written. Remove run_id from the "
            f"catalog entry to save into the active run, or run without tracking (or with "
            f"tracking.run.id: {run_id} in mlflow.yml) to write into run '{run_id}'."
        )
    tracking_uri, registry_uri = store_uris(kedro_run_id)
    experiment_id = _existing_run_experiment(dataset, run_id, tracking_uri, registry_uri, operation)
    return RunTarget(run_id, tracking_uri, registry_uri, experiment_id)


def _existing_run_experiment(
    dataset: str, run_id: str, tracking_uri: str, registry_uri: str | None, operation: Operation
) -> str:
    from ..tracking import Tracker

    try:
        run = Tracker(tracking_uri, registry_uri).get_run(run_id)
    except RunNotFoundError as exc:
        raise DatasetRunNotFoundError(
            f"{dataset}: its run_id '{run_id}' does not exist (or is deleted) in the tracking "
            f"store {redact_uri(tracking_uri)}. Check the run id and the tracking URI "
            f"(server.mlflow_tracking_uri in mlflow.yml or MLFLOW_TRACKING_URI)."
            + (" Nothing was written." if operation == "save" else "")
        ) from safe_cause(exc)
    return str(run.info.experiment_id)


def client(target: RunTarget):  # noqa: ANN201 - MlflowClient is imported lazily
    """The cached ``MlflowClient`` of ``target``'s store."""
    from ..tracking import client_for

    return client_for(target.tracking_uri, target.registry_uri)


def tracking_error(dataset: str, what: str, target: RunTarget, exc: BaseException) -> MlflowDatasetError:
    """An :class:`MlflowDatasetError` saying that ``what`` failed for ``dataset`` in ``target``'s run."""
    detail = str(exc) if isinstance(exc, TrackingError) else f"{type(exc).__name__}: {exc}"
    return MlflowDatasetError(
        f"{dataset} could not {what} MLflow run '{target.run_id}' in "
        f"{redact_uri(target.tracking_uri)}: {redact_uri(detail)[:1000]}"
    )


# --- the global store MLflow's model functions read ---------------------------------------

_store_lock = threading.RLock()


@contextlib.contextmanager
def pinned_store(tracking_uri: str, registry_uri: str | None) -> Iterator[None]:
    """Point MLflow's process-wide tracking and registry URIs at a store, then restore them.

    MLflow's ``log_model``, ``load_model`` (``runs:/`` and ``models:/`` URIs) and model
    registration read the global URIs. This sets them for the duration of the block, under a
    process-wide lock (so threads saving concurrently cannot restore each other's values),
    and restores the previous values and ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``
    exactly. No run is started or ended.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _store_lock:
        previous_uri = tracking_utils._tracking_uri
        previous_env = os.environ.get("MLFLOW_TRACKING_URI")
        previous_registry = getattr(registry_utils, "_registry_uri", None)
        previous_registry_env = os.environ.get("MLFLOW_REGISTRY_URI")
        try:
            if previous_uri != tracking_uri:
                mlflow.set_tracking_uri(tracking_uri)
            mlflow.set_registry_uri(registry_uri or tracking_uri)
            yield
        finally:
            if tracking_utils._tracking_uri != previous_uri:
                tracking_utils.set_tracking_uri(previous_uri)
            _restore_env("MLFLOW_TRACKING_URI", previous_env)
            registry_utils._registry_uri = previous_registry
            _restore_env("MLFLOW_REGISTRY_URI", previous_registry_env)


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
