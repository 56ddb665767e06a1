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

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from typing import Literal

from .._redact import redact_uri, safe_cause
from ..core.children import child_for
from ..core.current import current_run_context
from ..core.registry import REGISTRY
from ..errors import (
    DatasetRunNotFoundError,
    MlflowDatasetError,
    NoActiveRunError,
    RunConflictError,
    RunNotFoundError,
    TrackingError,
)
from ..tracking import Tracker

__all__ = ["RunTarget", "note_loaded_from", "pinned_store", "select_run", "store_target", "tracker", "tracking_error",
           "wrapped_errors"]

Operation = Literal["save", "load"]


@dataclass(frozen=True)
class RunTarget:
    """The run a dataset reads from or writes to, and the store it lives in.

    Attributes:
        run_id: the MLflow run id.
        tracking_uri: the tracking store of the run.
        registry_uri: the model registry (None: the tracking store).
        experiment_id: the run's experiment (None until looked up).
        attempt_id: the attempt of this Kedro run, when it attached to the run (``core/attempts.py``).
    """

    run_id: str
    tracking_uri: str
    registry_uri: str | None
    experiment_id: str | None = None
    environment: tuple[tuple[str, str], ...] = ()  # credentials for calls outside a run (repr-safe: not shown)
    attempt_id: str | None = None

    def __repr__(self) -> str:
        return f"RunTarget(run_id={self.run_id!r}, tracking_uri={redact_uri(self.tracking_uri)!r})"


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
    whose, elsewhere = "of this `kedro run`", (
        f"run without tracking (or with tracking.run.id: {run_id} in mlflow.yml)")
    if active is None:  # else a run the user started in this thread (mlflow.start_run), attached
        active = REGISTRY.process.user_run()
        whose, elsewhere = "you started in this thread (mlflow.start_run)", "save outside that run"
    if operation == "save" and ctx is not None and ctx.ended_elsewhere:
        raise MlflowDatasetError(
            f"{dataset} cannot save: MLflow run '{ctx.run_id}' was ended ({ctx.ended_elsewhere}) by another process "
            f"(kedro mlflow close-run?) while this Kedro run still wrote into it. Nothing was written. Re-run this "
            f"step in a run that is open.", run_id=ctx.run_id, dataset=dataset)
    if operation == "save" and ctx is not None and active is not None and ctx.in_worker:
        _require_running(dataset, active.run_id, active.tracking_uri, active.registry_uri)
    child = child_for(kedro_run_id, operation) if ctx is not None and ctx.is_active else None
    if ctx is not None and child is not None:  # tracking.child_runs: the child run of the dataset's node
        active = replace(ctx.handle, run_id=child)
    if run_id is None:
        if active is None:
            raise NoActiveRunError(
                f"{dataset} cannot {operation}: no MLflow run is active (no `kedro run` with "
                f"tracking enabled is in progress, and no run was started with mlflow.start_run() in "
                f"this thread) and the dataset has no run_id. Use it inside `kedro run` with tracking "
                f"enabled or inside `with mlflow.start_run():`, or set `run_id: <mlflow run id>` in its "
                f"catalog entry. No run was created.",
                dataset=dataset,
            )
        return RunTarget(active.run_id, active.tracking_uri, active.registry_uri, active.experiment_id,
                         attempt_id=active.attempt_id)
    if active is not None and run_id == active.run_id:
        return RunTarget(active.run_id, active.tracking_uri, active.registry_uri, active.experiment_id,
                         attempt_id=active.attempt_id)
    if active is not None and operation == "save":
        raise RunConflictError(
            f"{dataset} cannot save: its run_id '{run_id}' differs from the active MLflow run "
            f"'{active.run_id}' {whose}. Nothing was written. Remove run_id from the "
            f"catalog entry to save into the active run, or {elsewhere} to write into run '{run_id}'.",
            run_id=run_id,
            dataset=dataset,
        )
    store = store_target(kedro_run_id)
    experiment_id = _existing_run_experiment(dataset, run_id, store, operation)
    return RunTarget(run_id, store.tracking_uri, store.registry_uri, experiment_id, store.environment)


def store_target(kedro_run_id: str | None) -> RunTarget:
    """The store a dataset uses when no run is selected (``run_id`` left empty), with the credentials
    its calls need outside a run."""
    ctx = current_run_context(kedro_run_id)
    if ctx is not None:  # the active run's store: its credentials are published already
        return RunTarget("", ctx.handle.tracking_uri, ctx.handle.registry_uri)
    store = REGISTRY.configs.store()
    if store.tracking_uri is None:  # no project loaded, nothing published: MLflow's own default
        import mlflow

        return RunTarget("", mlflow.get_tracking_uri(), None)
    return RunTarget("", store.tracking_uri, store.registry_uri, environment=tuple(store.credentials.items()))


def _require_running(dataset: str, run_id: str, tracking_uri: str, registry_uri: str | None) -> None:
    """In a runner's worker process: refuse to write into a run its owner has ended (KILLED by a
    signal while this worker still ran its node). One request per save, in workers only."""
    status = Tracker(tracking_uri, registry_uri).get_run(run_id).info.status
    if status != "RUNNING":
        raise MlflowDatasetError(
            f"{dataset} cannot save: MLflow run '{run_id}' has already ended ({status}); this worker outlived "
            f"it. Nothing was written.",
            run_id=run_id,
            dataset=dataset,
        )


def _existing_run_experiment(dataset: str, run_id: str, store: RunTarget, operation: Operation) -> str:
    tracking_uri = store.tracking_uri
    try:
        run = tracker(store).get_run(run_id)
    except RunNotFoundError as exc:
        raise DatasetRunNotFoundError(
            f"{dataset}: its run_id '{run_id}' does not exist (or is deleted) in the tracking "
            f"store {redact_uri(tracking_uri)}. Check the run id and the tracking URI "
            f"(server.mlflow_tracking_uri in mlflow.yml or MLFLOW_TRACKING_URI)."
            + (" Nothing was written." if operation == "save" else ""),
            run_id=run_id,
            dataset=dataset,
        ) from safe_cause(exc)
    return str(run.info.experiment_id)


def note_loaded_from(kedro_run_id: str | None, dataset_name: str | None, uri: str) -> None:
    """Tell the lineage that the load of catalog entry ``dataset_name`` in progress read ``uri`` (an
    artifact of the run) instead of its own location (see ``core/pending_io.py``)."""
    ctx = current_run_context(kedro_run_id)
    if ctx is not None and dataset_name:
        ctx.pending_io.loaded_from(dataset_name, uri)


def tracker(target: RunTarget) -> Tracker:
    """The MLflow boundary for ``target``'s store."""
    environment = dict(target.environment)
    return Tracker(target.tracking_uri, target.registry_uri,
                   scope=(lambda: REGISTRY.process.environment(environment)) if environment else None)


def tracking_error(dataset: str, what: str, target: RunTarget, exc: BaseException) -> MlflowDatasetError:
    """An :class:`MlflowDatasetError` saying that ``what`` failed for ``dataset`` in ``target``'s run."""
    detail = str(exc) if isinstance(exc, TrackingError) else f"{type(exc).__name__}: {exc}"
    return MlflowDatasetError(
        f"{dataset} could not {what} MLflow run '{target.run_id}' in "
        f"{redact_uri(target.tracking_uri)}: {redact_uri(detail, limit=1000)}",
        run_id=target.run_id,
        dataset=dataset,
    )


@contextmanager
def wrapped_errors(dataset: str, what: str, target: RunTarget) -> Iterator[None]:
    """Any error of the block re-raised as :func:`tracking_error` (``what`` failed for ``dataset`` in
    ``target``'s run), with its cause kept only when it is safe to show (no secrets).

    Example: ``with wrapped_errors(self._label(), "log metrics to", target): tracker(target).log_batch(...)``
    """
    try:
        yield
    except Exception as exc:
        raise tracking_error(dataset, what, target, exc) from safe_cause(exc)


def pinned_store(target: RunTarget) -> AbstractContextManager[None]:
    """MLflow's global URIs pointed at ``target``'s store for one model call (see ``ProcessState``)."""
    return REGISTRY.process.pinned_store(target.tracking_uri, target.registry_uri, dict(target.environment))
