"""The one translation of MLflow's failures into our errors, and what tells them apart.

:class:`TrackingUnavailableError` when the store does not answer, :class:`RunNotFoundError` for an
unknown run, :class:`ParameterError` for a changed parameter, a :class:`TrackingError` saying what
could not be written where and why for a local disk that is full or read-only, :class:`TrackingError`
otherwise; messages never hold a password.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Iterator
from types import MappingProxyType

from .._redact import redact_uri
from ..errors import ParameterError, TrackingError, TrackingUnavailableError

__all__ = ["StorageFailure", "is_not_found", "quiet_store_errors", "sqlite_path", "storage_failure", "translate"]


def is_not_found(exc: BaseException) -> bool:
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
_STORAGE_ERRNOS = MappingProxyType({
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
})
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
def quiet_store_errors(tracking_uri: str) -> Iterator[None]:
    """Keep MLflow's own traceback of a database error out of the output while we make one call."""
    if tracking_uri.partition(":")[0].partition("+")[0].lower() not in _DATABASE_SCHEMES:
        yield
        return
    from ..compat.mlflow import store_error_logger

    target = store_error_logger()
    quiet = _DropStoreTraceback()
    target.addFilter(quiet)
    try:
        yield
    finally:
        target.removeFilter(quiet)


def translate(tracking_uri: str, what: str, exc: BaseException, *, run_id: str | None = None) -> Exception:
    """Our error for ``exc``, raised while trying to ``what``."""
    detail = redact_uri(str(exc))
    if "changing param values is not allowed" in detail.lower():
        return ParameterError(
            f"MLflow run '{run_id}' already has some of these parameters with a different "
            f"value (another process logged them first): {detail[:1000]}. Give the processes "
            f"sharing this run the same parameters, or start a new run.",
            run_id=run_id,
        )
    failure = storage_failure(exc, tracking_uri)
    if failure is not None:
        return TrackingError(_storage_message(tracking_uri, what, failure, run_id), run_id=run_id)
    if _is_unreachable(exc):
        return TrackingUnavailableError(
            f"Could not {what}: the MLflow tracking store at {redact_uri(tracking_uri)} did "
            f"not answer ({type(exc).__name__}: {detail[:300]}). Check that the server is up and "
            f"the URI is right (server.mlflow_tracking_uri in mlflow.yml or MLFLOW_TRACKING_URI).",
            run_id=run_id,
        )
    return TrackingError(f"Could not {what} in {redact_uri(tracking_uri)}: {detail}", run_id=run_id)

def _storage_message(tracking_uri: str, what: str, failure: StorageFailure, run_id: str | None) -> str:
    """What could not be written where, why, and what to do (see :func:`storage_failure`)."""
    cause = failure.cause
    kind = f"{type(cause).__module__}.{type(cause).__name__}".removeprefix("builtins.")
    detail = redact_uri(str(cause).strip().splitlines()[0] if str(cause).strip() else repr(cause))[:300]
    database = sqlite_path(tracking_uri)
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


def _artifact_folder(path: str | None, run_id: str | None) -> str | None:
    """The run's artifact folder (``.../<run_id>/artifacts``) that ``path`` lies in, if it does."""
    if not path or not run_id:
        return None
    marker = f"/{run_id}/artifacts"
    head, found, _ = path.replace(os.sep, "/").partition(marker)
    return head + marker if found else None
