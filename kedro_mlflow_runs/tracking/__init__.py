"""The MLflow boundary: where run data goes to MLflow, and the one error translation.

Every call names its run explicitly through a cached :class:`mlflow.MlflowClient` bound to one
store (never the global default). MLflow is imported lazily: it costs over a second. Failures
become our errors: :class:`TrackingUnavailableError` when the store does not answer,
:class:`RunNotFoundError` for an unknown run, :class:`ParameterError` for a changed parameter,
:class:`TrackingError` otherwise; messages never hold a password.

MLflow's fluent state (the active-run stack, the global URIs) is not changed here: see
``kedro_mlflow_runs.core.process``; the private names it needs are in ``tracking/_compat.py``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .._redact import redact_uri, safe_cause
from ..errors import ParameterError, RunNotFoundError, TrackingError, TrackingUnavailableError

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient
    from mlflow.entities import Run

__all__ = [
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_TAGS_PER_BATCH",
    "Tracker",
    "check_param_conflicts",
    "run_entity",
]

logger = logging.getLogger(__name__)

MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_DATASETS_PER_BATCH = 1000

T = TypeVar("T")


def _is_not_found(exc: BaseException) -> bool:
    code = getattr(exc, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(exc).lower()


def _is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the store did not answer (a network error), not that a local file failed."""
    import socket

    text = f"{type(exc).__name__} {exc}".lower()
    markers = ("connection", "max retries", "timed out", "unreachable", "refused", "operationalerror")
    network = isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror, socket.herror)) or (
        isinstance(exc, OSError) and exc.errno is None)  # requests' errors are OSErrors without an errno
    return network or any(m in text for m in markers)


#: errno of a local write that failed -> why, as the user should read it
_STORAGE_ERRNOS: dict[int, str] = {
    code: why
    for name, why in (
        ("ENOSPC", "the disk is full"),
        ("EDQUOT", "the disk quota is used up"),
        ("EROFS", "the file system is read-only"),
        ("EACCES", "permission denied"),
        ("EPERM", "operation not permitted"),
        ("EFBIG", "the file is too large for the file system"),
    )
    if (code := getattr(errno, name, None)) is not None
}
#: what a sqlite store says when it cannot write its database file -> why
_SQLITE_STORAGE_TEXTS = (
    ("database or disk is full", "the disk holding the database is full"),
    ("attempt to write a readonly database", "the database file is read-only"),
    ("disk i/o error", "the disk holding the database failed to write (disk I/O error)"),
)
_DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql")


class StorageFailure:
    """A write that failed on a local disk (not a store that did not answer): what, where, why."""

    __slots__ = ("cause", "path", "why")

    def __init__(self, why: str, path: str | None, cause: BaseException) -> None:
        self.why = why
        self.path = path
        self.cause = cause

    @property
    def full(self) -> bool:
        return "full" in self.why or "quota" in self.why or "too large" in self.why


def storage_failure(exc: BaseException, tracking_uri: str | None = None) -> StorageFailure | None:
    """The local write failure behind ``exc`` (its chain included), or None when it is something else.

    A local OS error (disk full, read-only file system, permission denied, ...) that is not a
    network error, or a sqlite store's "database or disk is full" / "readonly database"; for the
    latter the path is the database file of ``tracking_uri``.
    """
    found: StorageFailure | None = None
    seen: BaseException | None = exc
    for _ in range(20):
        if seen is None:
            break
        if (isinstance(seen, OSError) and not isinstance(seen, (ConnectionError, TimeoutError))
                and seen.errno in _STORAGE_ERRNOS):
            path = seen.filename if isinstance(seen.filename, str) else None
            return StorageFailure(_STORAGE_ERRNOS[seen.errno], path, seen)
        text = str(seen).lower()
        for marker, why in _SQLITE_STORAGE_TEXTS:
            if marker in text:  # the innermost such error names the driver's own exception
                found = StorageFailure(why, sqlite_path(tracking_uri or ""), seen)
        seen = seen.__cause__ or seen.__context__
    return found


def sqlite_path(uri: str) -> str | None:
    """The database file of a ``sqlite:///`` URI, or None for another store (or an in-memory one)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].partition("?")[0]
    return None if path in ("", ":memory:") else os.path.abspath(path)


class _DropStoreTraceback(logging.Filter):
    """Drops the traceback MLflow logs for a database error raised in one thread during one of our
    calls: the error reaches us, and we report it (our own logger has the whole chain at DEBUG)."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.thread == self.thread and record.exc_info and record.levelno >= logging.ERROR)


@contextlib.contextmanager
def _quiet_store_errors(tracking_uri: str) -> Iterator[None]:
    """Keep MLflow's own traceback of a database error out of the output while we make one call."""
    if tracking_uri.partition(":")[0].partition("+")[0].lower() not in _DATABASE_SCHEMES:
        yield
        return
    from ._compat import store_error_logger

    target = store_error_logger()
    quiet = _DropStoreTraceback()
    target.addFilter(quiet)
    try:
        yield
    finally:
        target.removeFilter(quiet)


class Tracker:
    """Tracking calls for one store, each naming its run explicitly.

    Args:
        tracking_uri: the tracking store (``sqlite:///...``, ``http://...``, ...).
        registry_uri: the model registry, when it differs from the tracking store.
    """

    __slots__ = ("environment", "registry_uri", "tracking_uri")

    def __init__(self, tracking_uri: str, registry_uri: str | None = None, *,
                 environment: Mapping[str, str] | None = None):
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri
        self.environment = dict(environment or {})  # credentials to set around each call (outside a run)

    @property
    def client(self) -> MlflowClient:
        from ._store import CLIENTS

        return CLIENTS.get(self.tracking_uri, self.registry_uri)

    # -- the one error translation -----------------------------------------------------------

    def _call(self, what: str, call: Callable[[], T], *, run_id: str | None = None) -> T:
        """Run ``call``; turn any failure into our error saying ``what`` failed."""
        try:
            with _quiet_store_errors(self.tracking_uri):
                if self.environment:
                    from ..core.registry import registry

                    with registry().process.environment(self.environment):
                        return call()
                return call()
        except (TrackingError, RunNotFoundError, ParameterError, TrackingUnavailableError):
            raise
        except Exception as exc:
            logger.debug("Could not %s", what, exc_info=True)
            error = self.translate(what, exc, run_id=run_id)
            if storage_failure(exc, self.tracking_uri) is not None:  # our message says it all: no chained
                raise error from None  # traceback through MLflow's and SQLAlchemy's frames (DEBUG has it)
            raise error from safe_cause(exc)

    def translate(self, what: str, exc: BaseException, *, run_id: str | None = None) -> Exception:
        """Our error for ``exc``, raised while trying to ``what``."""
        detail = redact_uri(str(exc))
        if "changing param values is not allowed" in detail.lower():
            return ParameterError(
                f"MLflow run '{run_id}' already has some of these parameters with a different "
                f"value (another process logged them first): {detail[:1000]}. Give the processes "
                f"sharing this run the same parameters, or start a new run.",
                run_id=run_id,
            )
        failure = storage_failure(exc, self.tracking_uri)
        if failure is not None:
            return TrackingError(self._storage_message(what, failure, run_id), run_id=run_id)
        if _is_unreachable(exc):
            return TrackingUnavailableError(
                f"Could not {what}: the MLflow tracking store at {redact_uri(self.tracking_uri)} did "
                f"not answer ({type(exc).__name__}: {detail[:300]}). Check that the server is up and "
                f"the URI is right (server.mlflow_tracking_uri in mlflow.yml or MLFLOW_TRACKING_URI).",
                run_id=run_id,
            )
        return TrackingError(f"Could not {what} in {redact_uri(self.tracking_uri)}: {detail}", run_id=run_id)

    def _storage_message(self, what: str, failure: StorageFailure, run_id: str | None) -> str:
        """What could not be written where, why, and what to do (see :func:`storage_failure`)."""
        cause = failure.cause
        kind = f"{type(cause).__module__}.{type(cause).__name__}".removeprefix("builtins.")
        detail = redact_uri(str(cause).strip().splitlines()[0] if str(cause).strip() else repr(cause))[:300]
        database = sqlite_path(self.tracking_uri)
        path = failure.path
        if path is not None and path == database:
            where = f"the tracking database '{path}'"
            elsewhere = "or move the store (server.mlflow_tracking_uri in mlflow.yml)"
        else:
            folder = _artifact_folder(path, run_id)
            where = (f"the artifact folder of MLflow run '{run_id}' ('{redact_uri(folder)}')" if folder
                     else f"'{redact_uri(path)}'" if path else "a local file")
            elsewhere = ("or give new runs another artifact folder (tracking.experiment.create_experiment_kwargs."
                         "artifact_location in mlflow.yml, for a new experiment name)")
        todo = ("Free space on that disk (or raise the quota)" if failure.full
                else "Make it writable for the user running Kedro")
        return (f"Could not {what}: {where} could not be written because {failure.why} ({kind}: {detail}). "
                f"{todo}, {elsewhere}.")

    # -- experiments and runs ----------------------------------------------------------------

    def ensure_experiment(
        self,
        name: str,
        *,
        artifact_location: str | None = None,
        restore_if_deleted: bool = True,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """The id of experiment ``name``, created (with ``artifact_location`` and ``tags``) or
        restored when needed."""
        return self._call(
            f"get or create experiment '{name}'",
            lambda: self._ensure_experiment(name, artifact_location, restore_if_deleted, tags),
        )

    def _ensure_experiment(
        self, name: str, artifact_location: str | None, restore_if_deleted: bool, tags: Mapping[str, str] | None
    ) -> str:
        from mlflow.exceptions import MlflowException

        client = self.client
        exp = client.get_experiment_by_name(name)
        if exp is None:
            try:
                return str(client.create_experiment(name, artifact_location=artifact_location,
                                                    tags=dict(tags) if tags else None))
            except MlflowException:  # another process created it meanwhile
                exp = client.get_experiment_by_name(name)
                if exp is None:
                    raise
        if exp.lifecycle_stage == "deleted":
            if not restore_if_deleted:
                raise TrackingError(
                    f"Experiment '{name}' is deleted in {redact_uri(self.tracking_uri)}. Restore it, "
                    f"choose another tracking.experiment.name, or set "
                    f"tracking.experiment.restore_if_deleted: true in mlflow.yml.",
                    key="tracking.experiment.name",
                )
            client.restore_experiment(exp.experiment_id)
            logger.warning("Restored deleted MLflow experiment '%s'.", name)
        return str(exp.experiment_id)

    def create_run(self, experiment_id: str, *, run_name: str | None, tags: Mapping[str, str]) -> Run:
        return self._call(
            "create an MLflow run",
            lambda: self.client.create_run(experiment_id, tags=dict(tags), run_name=run_name),
        )

    def get_run(self, run_id: str, *, source: str | None = None) -> Run:
        """The run ``run_id``; :class:`RunNotFoundError` when the store does not have it."""
        where = f" (from {source})" if source else ""
        try:
            run = self.client.get_run(run_id)
        except (TrackingError, TrackingUnavailableError):  # the store itself did not open
            raise
        except Exception as exc:
            if _is_not_found(exc) or "invalid" in str(exc).lower():
                raise RunNotFoundError(
                    f"MLflow run '{run_id}'{where} does not exist in {redact_uri(self.tracking_uri)}. "
                    f"Check the id and the tracking URI, or unset it to start a new run.",
                    run_id=run_id,
                ) from safe_cause(exc)
            raise self.translate(f"look up MLflow run '{run_id}'", exc, run_id=run_id) from safe_cause(exc)
        if run.info.lifecycle_stage == "deleted":
            raise RunNotFoundError(
                f"MLflow run '{run_id}'{where} is deleted in {redact_uri(self.tracking_uri)}. Restore "
                f"it or use another run id.",
                run_id=run_id,
            )
        return run

    def running_kedro_runs(self, experiment_name: str) -> list[Run]:
        """The runs of ``experiment_name`` that a ``kedro run`` opened and that are still RUNNING, oldest first."""

        def search() -> list[Run]:
            exp = self.client.get_experiment_by_name(experiment_name)
            if exp is None:
                return []
            runs = self.client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'",
                                           order_by=["attributes.start_time ASC"], max_results=1000)
            return [r for r in runs if "kedro.run_id" in r.data.tags]

        return self._call(f"search the RUNNING runs of experiment '{experiment_name}'", search)

    def find_experiment(self, name: str) -> Any | None:
        """Experiment ``name`` (active or deleted), or None when the store has none of that name."""
        return self._call(f"look up experiment '{name}'", lambda: self.client.get_experiment_by_name(name))

    def experiment_name(self, experiment_id: str) -> str:
        """The name of experiment ``experiment_id``."""
        return self._call(f"look up experiment {experiment_id}",
                          lambda: str(self.client.get_experiment(experiment_id).name))

    def experiment_names(self) -> list[str]:
        """The names of the store's active experiments, sorted."""
        return sorted(self._call("list the experiments", lambda: [e.name for e in self.client.search_experiments()]))

    def search_runs(self, experiment_id: str, *, status: str | None = None, max_results: int = 20) -> list[Run]:
        """The active runs of ``experiment_id`` (only those with ``status`` when given), newest first."""
        where = f"attributes.status = '{status}'" if status else ""
        return self._call(
            f"search the runs of experiment {experiment_id}",
            lambda: list(self.client.search_runs([experiment_id], where, order_by=["attributes.start_time DESC"],
                                                 max_results=max_results)),
        )

    def artifact_files(self, run_id: str, *, limit: int = 200) -> list[Any]:
        """The files of run ``run_id``'s artifact tree, depth first, at most ``limit`` of them."""

        def walk() -> list[Any]:
            files: list[Any] = []
            folders: list[str | None] = [None]
            while folders and len(files) < limit:
                for item in self.client.list_artifacts(run_id, folders.pop()):
                    if item.is_dir:
                        folders.append(item.path)
                    elif len(files) < limit:
                        files.append(item)
            return sorted(files, key=lambda f: f.path)

        return self._call(f"list the artifacts of MLflow run '{run_id}'", walk, run_id=run_id)

    def logged_models(self, run_id: str, experiment_id: str) -> list[Any]:
        """The LoggedModels whose source run is ``run_id``, by name."""
        found = self._call(
            f"search models of MLflow run '{run_id}'",
            lambda: list(self.client.search_logged_models(experiment_ids=[experiment_id],
                                                          filter_string=f"source_run_id = '{run_id}'")),
            run_id=run_id,
        )
        return sorted(found, key=lambda m: (m.name, m.creation_timestamp))

    def set_terminated(self, run_id: str, status: str) -> None:
        self._call(
            f"end run '{run_id}' as {status}",
            lambda: self.client.set_terminated(run_id, status),
            run_id=run_id,
        )

    # -- params, tags, metrics ---------------------------------------------------------------

    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        metrics: Iterable[tuple[str, float, int, int]] = (),
        what: str = "log to",
    ) -> None:
        """Log params, tags and ``(key, value, timestamp_ms, step)`` metrics in as few requests as allowed."""
        from mlflow.entities import Metric, Param, RunTag

        items: list[Any] = [Param(k, v) for k, v in (params or {}).items()]
        items += [RunTag(k, v) for k, v in (tags or {}).items()]
        metric_list = [Metric(k, float(v), int(ts), int(step)) for k, v, ts, step in metrics]

        def send() -> None:
            for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
                chunk = items[i : i + MAX_PARAMS_TAGS_PER_BATCH]
                self.client.log_batch(
                    run_id,
                    params=[x for x in chunk if isinstance(x, Param)],
                    tags=[x for x in chunk if isinstance(x, RunTag)],
                )
            for i in range(0, len(metric_list), MAX_METRICS_PER_BATCH):
                self.client.log_batch(run_id, metrics=metric_list[i : i + MAX_METRICS_PER_BATCH])

        self._call(f"{what} MLflow run '{run_id}'", send, run_id=run_id)

    def metric_history(self, run_id: str, key: str) -> list[Any]:
        """Every point of metric ``key``, ordered by step then time."""
        history = self._call(
            f"read metric '{key}' of MLflow run '{run_id}'",
            lambda: self.client.get_metric_history(run_id, key),
            run_id=run_id,
        )
        return sorted(history, key=lambda m: (m.step, m.timestamp))

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        run = self._call(f"read the metrics of MLflow run '{run_id}'", lambda: self.client.get_run(run_id), run_id=run_id)
        return {k: float(v) for k, v in run.data.metrics.items()}

    def log_inputs(self, run_id: str, datasets: Iterable[Mapping[str, Any]]) -> None:
        """Log dataset inputs of run ``run_id`` in one request (per 1000).

        Each mapping has ``name``, ``digest``, ``source_type``, ``source`` and optionally ``schema``,
        ``profile`` (JSON strings) and ``context`` (the ``mlflow.data.context`` input tag).
        """
        from mlflow.entities import Dataset, DatasetInput, InputTag

        inputs = [
            DatasetInput(
                Dataset(name=d["name"], digest=d["digest"], source_type=d["source_type"], source=d["source"],
                        schema=d.get("schema"), profile=d.get("profile")),
                tags=[InputTag("mlflow.data.context", d["context"])] if d.get("context") else [],
            )
            for d in datasets
        ]

        def send() -> None:
            for i in range(0, len(inputs), MAX_DATASETS_PER_BATCH):
                self.client.log_inputs(run_id, datasets=inputs[i : i + MAX_DATASETS_PER_BATCH])

        if inputs:
            self._call(f"log the dataset inputs of MLflow run '{run_id}'", send, run_id=run_id)

    # -- artifacts ---------------------------------------------------------------------------

    def log_artifact(self, run_id: str, local: str, artifact_path: str | None) -> None:
        """Log a file, or every file of a folder, under ``artifact_path``."""
        if os.path.isdir(local):
            call: Callable[[], None] = lambda: self.client.log_artifacts(run_id, local, artifact_path)  # noqa: E731
        else:
            call = lambda: self.client.log_artifact(run_id, local, artifact_path)  # noqa: E731
        self._call(f"log '{local}' as an artifact of MLflow run '{run_id}'", call, run_id=run_id)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[str]:
        """The artifact paths directly under ``path`` of run ``run_id``."""
        return self._call(
            f"list the artifacts of MLflow run '{run_id}'",
            lambda: [item.path for item in self.client.list_artifacts(run_id, path)],
            run_id=run_id,
        )

    def download_artifact(self, run_id: str, name: str, destination: str) -> str:
        return self._call(
            f"download artifact '{name}' of MLflow run '{run_id}'",
            lambda: self.client.download_artifacts(run_id, name, destination),
            run_id=run_id,
        )

    # -- LoggedModels ------------------------------------------------------------------------

    def create_logged_model(
        self,
        run_id: str,
        name: str,
        *,
        experiment_id: str | None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        model_type: str | None = None,
    ) -> str:
        """Create a LoggedModel linked to run ``run_id`` (its params included); return its id."""

        def create() -> str:
            run = self.client.get_run(run_id)
            model = self.client.create_logged_model(
                experiment_id=experiment_id or str(run.info.experiment_id),
                name=name,
                source_run_id=run_id,
                params={**{k: str(v) for k, v in (params or {}).items()}, **run.data.params},
                tags={str(k): str(v) for k, v in tags.items()} if tags else None,
                model_type=model_type,
            )
            return str(model.model_id)

        return self._call(f"create model '{name}' in MLflow run '{run_id}'", create, run_id=run_id)

    def fail_logged_model(self, model_id: str) -> None:
        """Mark a LoggedModel FAILED unless it already reached a final status (best effort)."""
        try:
            model = self.client.get_logged_model(model_id)
            if str(model.status).rpartition(".")[2] not in ("READY", "FAILED"):
                self.client.finalize_logged_model(model_id, "FAILED")
        except Exception:  # the save already failed; this only tidies up
            return

    def label_model_version(self, name: str, version: str, alias: str | None, tags: Mapping[str, Any]) -> None:
        """Set an alias and tags on version ``version`` of registered model ``name``."""

        def label() -> None:
            if alias:
                self.client.set_registered_model_alias(name, alias, version)
            for key, value in tags.items():
                self.client.set_model_version_tag(name, version, str(key), str(value))

        self._call(f"label version {version} of registered model '{name}'", label)

    def has_logged_model(self, run_id: str, experiment_id: str | None, name: str) -> bool:
        found = self._call(
            f"search models of MLflow run '{run_id}'",
            lambda: self.client.search_logged_models(
                experiment_ids=[experiment_id] if experiment_id else None,
                filter_string=f"source_run_id = '{run_id}' AND name = '{name}'",
                max_results=1,
            ),
            run_id=run_id,
        )
        return len(found) > 0


def _artifact_folder(path: str | None, run_id: str | None) -> str | None:
    """The run's artifact folder (``.../<run_id>/artifacts``) that ``path`` lies in, if it does."""
    if not path or not run_id:
        return None
    marker = f"/{run_id}/artifacts"
    head, found, _ = path.replace(os.sep, "/").partition(marker)
    return head + marker if found else None


def check_param_conflicts(run_id: str, new: Mapping[str, str], existing: Mapping[str, str]) -> dict[str, str]:
    """Drop params already logged with the same value; raise on a different value."""
    for key, value in new.items():
        if key in existing and existing[key] != value:
            raise ParameterError(
                f"Parameter '{key}' is already logged in MLflow run '{run_id}' as "
                f"{existing[key][:200]!r}; this Kedro run has {value[:200]!r}. MLflow parameters "
                f"cannot change: give the runs sharing this MLflow run the same parameters, or "
                f"start a new run.",
                run_id=run_id,
                key=key,
            )
    return {k: v for k, v in new.items() if k not in existing}


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
