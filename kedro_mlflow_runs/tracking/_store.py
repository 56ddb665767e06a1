"""Opening a store: one ``MlflowClient`` per (process, store), created one process at a time for sqlite."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .._redact import safe_cause
from ..errors import TrackingError, TrackingUnavailableError

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient

__all__ = ["CLIENTS"]


class _Clients:
    """``MlflowClient`` objects per (process, store): a forked worker never reuses its parent's connections."""

    __slots__ = ("_clients", "_lock")

    def __init__(self) -> None:
        self._clients: dict[tuple[int, str, str | None], MlflowClient] = {}
        self._lock = threading.RLock()  # a signal handler may need a client while one is being made

    def reinit_after_fork(self) -> None:
        self._lock = threading.RLock()

    def release(self, tracking_uri: str) -> None:
        """Forget this process's clients of ``tracking_uri`` and close their connections (a store that
        is thrown away, such as a test's: each cached sqlite store keeps a file open)."""
        from ._compat import close_store_connections

        with self._lock:
            gone = [self._clients.pop(key) for key in list(self._clients)
                    if key[0] == os.getpid() and key[1] == tracking_uri]
        for client in gone:
            close_store_connections(client)

    def get(self, tracking_uri: str, registry_uri: str | None) -> MlflowClient:
        key = (os.getpid(), tracking_uri, registry_uri)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = _open_store(tracking_uri, registry_uri)
            return client


def _open_store(tracking_uri: str, registry_uri: str | None) -> MlflowClient:
    """A client whose tracking store is open (MLflow creates or migrates a new database here).

    Creating a sqlite store runs MLflow's migrations; two processes doing it at once (two first
    ``kedro run`` commands) break it, so processes of this machine take turns through a lock file.

    Raises:
        TrackingUnavailableError | TrackingError: the store cannot be opened, naming the URI and the
            settings it comes from.
    """
    from mlflow import MlflowClient

    try:
        with _store_creation_lock(tracking_uri):
            return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    except Exception as exc:
        from . import Tracker

        error = Tracker(tracking_uri, registry_uri).translate("open the MLflow tracking store", exc)
        error.args = (f"{error} The URI comes from server.mlflow_tracking_uri in mlflow.yml, else "
                      f"MLFLOW_TRACKING_URI, else the default sqlite:///<project>/mlflow.db; fix it there "
                      f"(a sqlite file MLflow cannot migrate can be moved aside to start afresh).",)
        if isinstance(error, (TrackingError, TrackingUnavailableError)):
            error.key = "server.mlflow_tracking_uri"
        raise error from safe_cause(exc)


@contextlib.contextmanager
def _store_creation_lock(tracking_uri: str) -> Iterator[None]:
    """An exclusive lock per sqlite database (``<db>.lock`` next to it), shared by every process that
    opens it; a no-op for other stores, or where the lock file cannot be created (read-only folder)."""
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        yield
        return
    db = os.path.realpath(tracking_uri[len("sqlite:///"):].partition("?")[0])
    try:
        os.makedirs(os.path.dirname(db), exist_ok=True)
        handle = open(db + ".lock", "a")  # noqa: SIM115 - closed below
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


CLIENTS = _Clients()
