"""Kedro runs on ``dask.distributed``: the run is handed to every Dask worker, which attaches to it.

Imported only once the process has imported ``distributed`` (``clusters.py``).

In the process running the Kedro run, :func:`publish` gives the tracked run a
:class:`DaskPublication` and hands the run to the cluster of the default ``Client`` at once, if there
is one, and to every ``Client`` created while the run lasts: this module is in Dask's
``distributed.client.preload`` meanwhile, so Dask calls :func:`dask_setup` with each new client.
Handing over is registering a :class:`RunPlugin` named after the Kedro run (``Client.register_plugin``:
every worker, and every worker joining later, runs its ``setup``), and subscribing to the run's event
topic, through which the workers send their timeline and lineage events (``Worker.log_event``) to the
run's recorder: no shared disk. :meth:`DaskPublication.withdraw` (an end step) unregisters the plugin
before the run ends.

In a worker, :meth:`RunPlugin.setup` attaches to the run and makes it the worker process's run
(``core.current.attach_cluster_worker``): node hooks, datasets and ``mlflow.log_metric`` in node code
find it, and turns on the run's autologging (``tracking.autolog``). :meth:`RunPlugin.teardown` turns it
off and detaches, leaving the run open for its owner.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Final

import dask.config
import distributed
from distributed.diagnostics.plugin import WorkerPlugin

from ..core.children import publish_routing, withdraw_routing
from ..core.current import attach_cluster_worker
from ..core.registry import REGISTRY
from ..core.tracked import TrackedRun
from ..handle import Outcome, RunHandle
from ..recording.recorder import RunRecorder
from .autolog import set_autolog

__all__ = ["PRELOAD", "DaskPublication", "RunPlugin", "dask_setup", "plugin_name", "publish"]

logger = logging.getLogger(__name__)

#: This module, as Dask's client preload: Dask calls its ``dask_setup`` with every new ``Client``.
PRELOAD: Final = __name__
_PRELOAD_KEY: Final = "distributed.client.preload"
#: Seconds to reach a scheduler again to take the run back, when the runner closed its client.
_RECONNECT_TIMEOUT_S: Final = 10


def plugin_name(kedro_run_id: str | None) -> str:
    """The name of the worker plugin of a Kedro run (one per run: runs sharing a cluster do not clash)."""
    return f"kedro-mlflow-runs-{kedro_run_id}"


class RunPlugin(WorkerPlugin):
    """Hands an MLflow run to a Dask worker: attach at ``setup``, detach at ``teardown``.

    Args:
        handle: the run.
        recorder: the run recorder's ``settings()`` (None: no timeline or lineage is recorded).
        topic: the Dask event topic the worker sends its timeline and lineage events to.
        autolog: the run's autologging (``{"flavors": [...], "kwargs": {...}}``), None when off.
        children: the routing of the run's child runs (``core/children.py``), None without child runs.
    """

    idempotent = False

    def __init__(self, handle: RunHandle, recorder: Mapping[str, Any] | None, topic: str,
                 autolog: Mapping[str, Any] | None = None, children: Mapping[str, Any] | None = None) -> None:
        self.handle = handle
        self.recorder = dict(recorder) if recorder is not None else None
        self.topic = topic
        self.autolog = dict(autolog) if autolog is not None else None
        self.children = dict(children) if children else None
        self.name = plugin_name(handle.kedro_run_id)
        self._ctx: Any = None  # the worker's attached context, between setup and teardown

    def __getstate__(self) -> dict[str, Any]:
        return {"handle": self.handle, "recorder": self.recorder, "topic": self.topic, "autolog": self.autolog,
                "children": self.children, "name": self.name}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.__dict__.update(state)
        self._ctx = None

    def setup(self, worker: Any) -> None:
        """On the worker: attach to the run; record node events into it through Dask's event log."""
        self._ctx = attach_cluster_worker(self.handle)
        if self.children:
            publish_routing(self.children)
        if self.recorder is not None:
            sink = _EventSink(worker, self.topic)
            REGISTRY.set_worker_recorder(str(self.handle.kedro_run_id), _worker_recorder(self.recorder, sink))
        if self.autolog is not None:
            set_autolog(self.autolog["flavors"], self.autolog["kwargs"], on=True)
        logger.debug("Dask worker %s attached to MLflow run %s", worker.name, self.handle.run_id)

    def teardown(self, worker: Any) -> None:
        """On the worker: autologging off, and detach (the run stays open for the process running the Kedro run)."""
        REGISTRY.set_worker_recorder(str(self.handle.kedro_run_id), None)
        withdraw_routing(str(self.handle.kedro_run_id))
        if self.autolog is not None:
            try:
                set_autolog(self.autolog["flavors"], self.autolog["kwargs"], on=False)
            except Exception as exc:  # detach all the same
                logger.warning("Could not turn autologging off in Dask worker %s: %s", worker.name, exc)
        ctx, self._ctx = self._ctx, None
        if ctx is not None and ctx.is_active:
            REGISTRY.finish(ctx, Outcome.finished())


def _worker_recorder(settings: Mapping[str, Any], sink: Callable[[dict[str, Any]], None]) -> RunRecorder:
    """In a Dask worker: a recorder of the run ``settings`` describe (``RunRecorder.settings``), handing
    each event to ``sink`` instead of a spool file."""
    recorder = RunRecorder(str(settings["kedro_run_id"]), "", os.getpid(), timeline=bool(settings.get("timeline")),
                           lineage=bool(settings.get("lineage")), watched=settings.get("watched") or (),
                           attempt_id=settings.get("attempt_id"))
    recorder.sink = sink
    return recorder


def _receive(recorder: RunRecorder, event: Any) -> None:
    """An event a Dask worker sent: kept with the events of the process running the Kedro run."""
    if isinstance(event, Mapping) and "e" in event:
        recorder.events.append(dict(event))


class _EventSink:
    """Sends a worker's recorder events to the process running the Kedro run, naming the Dask worker."""

    __slots__ = ("topic", "worker")

    def __init__(self, worker: Any, topic: str) -> None:
        self.worker = worker
        self.topic = topic

    def __call__(self, event: dict[str, Any]) -> None:
        if "node" in event:
            event = {**event, "dask_worker": str(self.worker.name)}
        self.worker.log_event(self.topic, event)


class DaskPublication:
    """What one tracked run handed to Dask: its plugin, its event topic, the clients it went through."""

    def __init__(self, tracked: TrackedRun) -> None:
        ctx = tracked.context
        self.kedro_run_id = str(ctx.kedro_run_id)
        self.run_id = ctx.handle.run_id
        self.topic = f"kedro-mlflow-runs/{self.kedro_run_id}"
        recorder = tracked.recorder
        autolog = tracked.config.tracking.autolog
        self.plugin = RunPlugin(ctx.handle, recorder.settings() if recorder is not None else None, self.topic,
                                {"flavors": list(autolog.flavors), "kwargs": dict(autolog.kwargs)}
                                if autolog.enabled else None, tracked.children)
        self._receive = partial(_receive, recorder) if recorder is not None else None
        self._clients: list[tuple[Any, str | None]] = []
        self._lock = threading.Lock()
        self.withdrawn = False

    def to(self, client: Any) -> Any:
        """Hand the run to the workers of ``client``'s cluster (once per client). Blocks until every
        worker attached; for an asynchronous client, returns what to await."""
        with self._lock:
            if self.withdrawn or any(known is client for known, _ in self._clients):
                return None
            self._clients.append((client, getattr(client.scheduler, "address", None)))
        if self._receive is not None:
            receive = self._receive
            client.subscribe_topic(self.topic, lambda event: receive(event[1]))
        result = client.register_plugin(self.plugin, name=self.plugin.name)
        logger.info("Handed MLflow run %s to the Dask workers of %s", self.run_id,
                    getattr(client.scheduler, "address", "the cluster"))
        return result

    def withdraw(self) -> None:
        """Take the run back from every worker (each detaches), and stop handing it to new clients."""
        with self._lock:
            self.withdrawn = True
            clients, self._clients = self._clients, []
        try:
            for client, address in clients:
                try:
                    self._withdraw_from(client, address)
                except Exception as exc:
                    logger.warning("Could not take MLflow run %s back from the Dask workers of %s: %s: %s",
                                   self.run_id, address, type(exc).__name__, exc)
        finally:
            _remove_preload_unless_used()

    def _withdraw_from(self, client: Any, address: str | None) -> None:
        if client.status == "running":
            if self._receive is not None:
                client.unsubscribe_topic(self.topic)
            client.unregister_worker_plugin(self.plugin.name)
        elif client.cluster is None and address:  # the runner closed its client; its scheduler lives on
            connect: Any = distributed.Client
            with connect(address, timeout=_RECONNECT_TIMEOUT_S, set_as_default=False) as again:
                again.unregister_worker_plugin(self.plugin.name)


def publish(tracked: TrackedRun) -> None:
    """Hand the run of ``tracked`` to the default client's workers now, and to every client created
    while it lasts (see the module docstring)."""
    if not tracked.context.is_active or tracked.clusters is not None:
        return
    publication = tracked.clusters = DaskPublication(tracked)
    preloads = list(dask.config.get(_PRELOAD_KEY, None) or [])
    if PRELOAD not in preloads:
        dask.config.set({_PRELOAD_KEY: [*preloads, PRELOAD]})
    current: Any = distributed.default_client
    try:
        client = current()
    except ValueError:  # no client yet: dask_setup hands the run to the one the runner creates
        return
    publication.to(client)


async def dask_setup(client: Any) -> None:
    """Dask's client preload hook: hand the runs in progress in this process to a new client's workers."""
    for publication in _pending():
        if client.asynchronous:
            result = publication.to(client)
            if inspect.isawaitable(result):
                await result
        else:  # the client's own calls block: make them from another thread while its loop runs on
            await asyncio.get_running_loop().run_in_executor(None, publication.to, client)


def _pending() -> list[DaskPublication]:
    """The publications of the tracked runs of this process that are still handed out."""
    found = []
    for kedro_run_id in REGISTRY.runs():
        tracked = REGISTRY.tracked(kedro_run_id)
        publication = tracked.clusters if tracked is not None else None
        if isinstance(publication, DaskPublication) and not publication.withdrawn \
                and tracked is not None and tracked.context.pid == os.getpid():
            found.append(publication)
    return found


def _remove_preload_unless_used() -> None:
    if _pending():
        return
    preloads = list(dask.config.get(_PRELOAD_KEY, None) or [])
    if PRELOAD in preloads:
        dask.config.set({_PRELOAD_KEY: [p for p in preloads if p != PRELOAD]})
