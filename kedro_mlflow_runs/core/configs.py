"""The project configuration a Kedro session loaded, kept from ``after_context_created`` (where
Kedro gives the hooks the context) to ``before_pipeline_run`` (where it does not), and the store a
dataset uses when no run is active."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from . import worker_env

if TYPE_CHECKING:  # pragma: no cover
    from ..config import MlflowConfig

__all__ = ["Loaded", "ProjectConfigs", "Store"]


class Loaded(NamedTuple):
    """What ``after_context_created`` loaded: the Kedro context, the config, its credentials."""

    context: Any
    config: MlflowConfig
    credentials: dict[str, str]


class Store(NamedTuple):
    """A tracking store, and the credentials a call to it needs outside a run."""

    tracking_uri: str | None
    registry_uri: str | None
    credentials: dict[str, str]


class ProjectConfigs:
    """The configs loaded in this process: per thread (sessions may run in several), and the last one."""

    __slots__ = ("_last", "_pending", "_thread")

    def __init__(self) -> None:
        self._pending = threading.local()  # a Loaded, until before_pipeline_run takes it
        self._thread = threading.local()  # (config, credentials) of the project loaded in this thread
        self._last: tuple[MlflowConfig, dict[str, str]] | None = None  # ... and in this process

    def remember(self, context: Any, config: MlflowConfig, credentials: Mapping[str, str]) -> None:
        self._pending.value = Loaded(context, config, dict(credentials))
        self._thread.value = (config, {**config.server.uri_credentials, **credentials})
        self._last = self._thread.value

    def pending(self, context: Any = None) -> Loaded | None:
        """What after_context_created loaded in this thread (for ``context`` when given)."""
        loaded: Loaded | None = getattr(self._pending, "value", None)
        if loaded is None or (context is not None and loaded.context is not context):
            return None
        return loaded

    def take(self) -> Loaded | None:
        """What after_context_created left for this thread, once."""
        found: Loaded | None = getattr(self._pending, "value", None)
        self._pending.value = None
        return found

    def store(self) -> Store:
        """The store of the project loaded in this thread, else in this process, with the credentials a
        run would publish; else the store a parent process published (tracking disabled, spawned
        worker); else none (``tracking_uri`` None: MLflow's own default)."""
        remembered = getattr(self._thread, "value", None) or self._last
        if remembered is not None:
            config, credentials = remembered
            return Store(config.server.tracking_uri, config.server.registry_uri, dict(credentials))
        published = worker_env.decode(worker_env.STORE, ("tracking_uri",))
        if published is not None:
            return Store(str(published["tracking_uri"]), published.get("registry_uri"), {})
        return Store(None, None, {})

    def forget(self) -> None:
        """Forget the configs remembered for this thread and process (tests, notebooks)."""
        self._thread.value = None
        self._last = None
        self._pending.value = None
