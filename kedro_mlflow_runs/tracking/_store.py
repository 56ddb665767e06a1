"""Opening a store: one ``MlflowClient`` per (process, store), created one process at a time for sqlite."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from types import MappingProxyType
from typing import TYPE_CHECKING

from .._redact import safe_cause
from ..errors import TrackingError, TrackingUnavailableError
from ._errors import translate

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient

__all__ = ["CLIENTS", "PROBE_TIMEOUT_S", "probe_database"]


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
        from ..compat.mlflow import close_store_connections

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

    probe_database(tracking_uri)
    try:
        with _store_creation_lock(tracking_uri):
            return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    except Exception as exc:
        error = translate(tracking_uri, "open the MLflow tracking store", exc)
        error.args = (f"{error} {_uri_sources(tracking_uri)}.",)
        if isinstance(error, (TrackingError, TrackingUnavailableError)):
            error.key = "server.mlflow_tracking_uri"
        raise error from safe_cause(exc)


def _uri_sources(tracking_uri: str) -> str:
    """Where the tracking URI comes from, and (for a sqlite store only) what to do with a bad file."""
    if tracking_uri.startswith("sqlite:"):
        return ("The URI comes from server.mlflow_tracking_uri in mlflow.yml, else MLFLOW_TRACKING_URI, else the "
                "default sqlite:///<project>/mlflow.db; fix it there (a sqlite file MLflow cannot migrate can be "
                "moved aside to start afresh)")
    return "The URI comes from server.mlflow_tracking_uri in mlflow.yml, else MLFLOW_TRACKING_URI; fix it there"


#: The default port of each database server MLflow can keep runs in (the URI's dialect).
_DATABASE_PORTS = MappingProxyType({"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306,
                                    "mssql": 1433})
#: How long :func:`probe_database` waits for a database server to accept a connection.
PROBE_TIMEOUT_S = 3.0


def probe_database(tracking_uri: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast when a database store's server does not accept connections.

    MLflow retries creating its engine for about 100 s (with a logged traceback each time) before it
    gives up on a database that is down; one TCP connect to the URI's host and port answers in
    ``timeout`` seconds at most. URIs of other stores, and database URIs without a host (a unix
    socket), are not probed.

    Raises:
        TrackingUnavailableError: nothing accepts connections at the URI's host and port.
    """
    import socket
    from urllib.parse import urlsplit

    from .._redact import redact_uri

    parts = urlsplit(tracking_uri)
    dialect = parts.scheme.partition("+")[0].lower()
    if dialect not in _DATABASE_PORTS:
        return
    try:
        host, port = parts.hostname, parts.port or _DATABASE_PORTS[dialect]
    except ValueError:  # a malformed port: MLflow's own error says so
        return
    if not host:
        return
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        raise TrackingUnavailableError(
            f"Could not open the MLflow tracking store {redact_uri(tracking_uri)}: its database server at "
            f"{host}:{port} does not accept connections ({reason}, after at most {timeout:.0f} s). Start the "
            f"database server, or fix the URI. {_uri_sources(tracking_uri)}.",
            key="server.mlflow_tracking_uri",
        ) from None


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
