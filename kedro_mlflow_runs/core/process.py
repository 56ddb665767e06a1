"""The one owner of the process-wide state a run changes.

A tracked run changes three things outside its own objects:

* environment variables: the run's handle (``KEDRO_MLFLOW_RUNS_HANDLE``, for spawned workers),
  the project's store when tracking is disabled (``KEDRO_MLFLOW_RUNS_STORE``), MLflow's HTTP
  retry settings and the credentials of ``server.credentials``;
* MLflow's process-wide tracking and registry URIs (and ``MLFLOW_TRACKING_URI`` /
  ``MLFLOW_REGISTRY_URI``), which MLflow's model functions and user code read;
* MLflow's fluent active run of a thread, so ``mlflow.log_metric`` in node code lands in the run;
* MLflow's list of request header providers (``server.request_header_provider``).

:class:`ProcessState` is the only writer of all three, under one lock. Runs *publish* what they
need; several may be published at once (sessions in several threads) and end in any order, so the
state is always re-derived from the newest publication, or from the baseline saved before the
first one. Datasets *pin* a store for one MLflow call. Threads *bind* a run as their active run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..handle import HANDLE_ENV_VAR, RunHandle

__all__ = ["ProcessState", "apply_environment"]

_URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
_RUN_ENV = (HANDLE_ENV_VAR, "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")


def apply_environment(env: Mapping[str, str | None]) -> None:
    """Set (or, for None, unset) environment variables."""
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@dataclass
class _Publication:
    key: object
    environment: dict[str, str]
    handle: RunHandle | None = None
    fluent: tuple[list[Any], Any] | None = None  # (the starting thread's stack, our entry on it)


@dataclass
class _Baseline:
    uris: tuple[str | None, str | None]
    env: dict[str, str | None] = field(default_factory=dict)


class ProcessState:
    """Saves, sets and restores what runs change in this process (see the module docstring)."""

    __slots__ = ("_baseline", "_bindings", "_lock", "_publications")

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._publications: list[_Publication] = []
        self._baseline: _Baseline | None = None
        self._bindings = threading.local()

    # -- publication ---------------------------------------------------------------------

    def publish(self, key: object, environment: Mapping[str, str]) -> None:
        """Make ``key`` the newest publication: its environment applies at once (credentials and
        HTTP settings are needed by the first request); :meth:`publish_run` adds its run later."""
        with self._lock:
            if not self._publications:
                self._baseline = _Baseline(self._uris_if_loaded(), {n: os.environ.get(n) for n in _URI_ENV})
            assert self._baseline is not None
            for name in (*_RUN_ENV, *environment):
                self._baseline.env.setdefault(name, os.environ.get(name))
            self._publications.append(_Publication(key, dict(environment)))
            self._refresh()

    def publish_run(self, key: object, handle: RunHandle, run: Any, *, activate: bool = True) -> None:
        """Point MLflow's URIs and ``KEDRO_MLFLOW_RUNS_HANDLE`` at ``handle``'s run while ``key`` is
        the newest publication; with ``activate``, make ``run`` the calling thread's active run."""
        with self._lock:
            publication = self._find(key)
            if publication is None:
                self.publish(key, {})
                publication = self._find(key)
            assert publication is not None
            publication.handle = handle
            if activate:
                publication.fluent = self._push(run)
            self._refresh()

    def unpublish(self, key: object) -> None:
        """Withdraw ``key``'s publication (a no-op when it has none) and re-derive the state."""
        leftovers: list[Any] = []
        with self._lock:
            publication = self._find(key)
            if publication is None:
                return
            self._publications.remove(publication)
            try:
                if publication.fluent is not None:
                    leftovers = self._remove(*publication.fluent)
            finally:
                self._refresh()
        if leftovers and publication.handle is not None:
            _kill(leftovers, publication.handle.tracking_uri)

    def is_published(self, key: object) -> bool:
        with self._lock:
            return self._find(key) is not None

    def _find(self, key: object) -> _Publication | None:
        return next((p for p in self._publications if p.key is key), None)

    def _refresh(self) -> None:
        """Derive the environment and MLflow's URIs from the newest publication, or the baseline."""
        baseline = self._baseline
        if baseline is None:
            return
        env: dict[str, str | None] = dict(baseline.env)
        uris = baseline.uris
        if self._publications:
            for publication in self._publications:  # older first: the newest wins a clash
                env.update(publication.environment)
            newest = self._publications[-1]
            if newest.handle is not None:
                uris = (newest.handle.tracking_uri, newest.handle.registry_uri)
                env[HANDLE_ENV_VAR] = newest.handle.to_json()
                env["MLFLOW_TRACKING_URI"] = newest.handle.tracking_uri
                env["MLFLOW_EXPERIMENT_ID"] = newest.handle.experiment_id  # runs node code starts land beside it
                env["MLFLOW_EXPERIMENT_NAME"] = None  # a shell's other name would contradict the id
                env["MLFLOW_REGISTRY_URI"] = newest.handle.registry_uri
        if uris != baseline.uris or "mlflow" in _loaded():
            from ..tracking._compat import set_global_uris

            set_global_uris(*uris)
        apply_environment(env)
        if not self._publications:
            self._baseline = None

    @staticmethod
    def _uris_if_loaded() -> tuple[str | None, str | None]:
        if "mlflow" not in _loaded():  # nothing set yet, and no need to import MLflow to know it
            return (None, None)
        from ..tracking._compat import global_uris

        return global_uris()

    # -- a store pinned for one MLflow call ------------------------------------------------

    @contextlib.contextmanager
    def environment(self, env: Mapping[str, str] | None) -> Iterator[None]:
        """``env`` set for the block, then restored (under the lock; a no-op for an empty ``env``).

        For MLflow calls outside a run (a notebook loading a model with ``run_id``), whose store
        needs the credentials a run would have published."""
        if not env:
            yield
            return
        with self._lock:
            before = {name: os.environ.get(name) for name in env}
            apply_environment(env)
            try:
                yield
            finally:
                apply_environment(before)

    @contextlib.contextmanager
    def pinned_store(
        self, tracking_uri: str, registry_uri: str | None, env: Mapping[str, str] | None = None
    ) -> Iterator[None]:
        """Point MLflow's process-wide URIs at a store for the block, then restore them.

        MLflow's ``log_model``, ``load_model`` (``runs:/`` and ``models:/`` URIs) and model
        registration read the global URIs. Held under the lock, so threads saving at once cannot
        restore each other's values, and a run ending meanwhile (a signal) re-derives them right.
        """
        from ..tracking._compat import global_uris, set_global_uris

        with self._lock:
            published = bool(self._publications)
            before_uris = global_uris()
            before_env = {n: os.environ.get(n) for n in _URI_ENV}
            try:
                set_global_uris(tracking_uri, registry_uri or tracking_uri)
                with self.environment(env):
                    yield
            finally:
                if self._publications:
                    self._refresh()
                elif not published:
                    set_global_uris(*before_uris)
                    apply_environment(before_env)
                # else: the last run ended inside the block (a signal) and restored the baseline

    # -- the fluent active run of a thread -------------------------------------------------

    def bind(self, run: Callable[[], Any], tracking_uri: str) -> None:
        """Make the run ``run()`` returns (of the store ``tracking_uri``) the calling thread's MLflow
        active run until :meth:`unbind` (nests).

        In a process that has not imported MLflow (a spawned worker whose nodes do not log), the
        binding waits: it is made when the thread imports ``mlflow``, so a worker pays for MLflow
        only when its code uses it (see :class:`_AfterImport`)."""
        stack = getattr(self._bindings, "stack", None)
        if stack is None:
            stack = self._bindings.stack = []
        if "mlflow" not in _loaded():
            stack.append(_Deferred(run, tracking_uri))
            self._bind_when_mlflow_is_imported()
            if "mlflow" in _loaded():  # another thread imported it meanwhile: its hook may not bind this one
                self._bind_deferred()
            return
        self._bind_deferred()  # bindings this thread deferred while another thread imported MLflow
        stack.append(self._binding(run(), tracking_uri))

    def _binding(self, run: Any, tracking_uri: str) -> tuple[list[Any], Any, str] | None:
        from ..tracking._compat import fluent_stack

        current = fluent_stack()
        if current and current[-1].info.run_id == run.info.run_id:
            return None
        return (*self._push(run), tracking_uri)

    def _bind_when_mlflow_is_imported(self) -> None:
        with self._lock:
            if not any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
                sys.meta_path.insert(0, _AfterImport("mlflow", self._bind_deferred))

    def _bind_deferred(self) -> None:
        """MLflow was just imported by this thread: make the bindings that waited for it."""
        stack = getattr(self._bindings, "stack", None) or []
        for index, entry in enumerate(stack):
            if isinstance(entry, _Deferred):
                stack[index] = self._binding(entry.run(), entry.tracking_uri)

    def unbind(self) -> None:
        """Undo the calling thread's latest :meth:`bind`."""
        stack = getattr(self._bindings, "stack", None)
        if stack:
            entry = stack.pop()
            if entry is not None and not isinstance(entry, _Deferred):
                fluent, ours, tracking_uri = entry
                _kill(self._remove(fluent, ours), tracking_uri)

    def fluent_run_id(self) -> str | None:
        """The id of MLflow's active run in the calling thread (None when there is none)."""
        if "mlflow" not in _loaded():
            return None
        from ..tracking._compat import fluent_stack

        stack = fluent_stack()
        return stack[-1].info.run_id if stack else None

    def user_run(self) -> RunHandle | None:
        """MLflow's active run in the calling thread, as a handle, when the user started one (no
        RunContext of ours is behind it). The plugin treats it as attached: it never ends it."""
        if "mlflow" not in _loaded():  # nobody called mlflow.start_run
            return None
        from ..tracking._compat import fluent_stack, global_uris

        stack = fluent_stack()
        if not stack:
            return None
        import mlflow

        info = stack[-1].info
        registry_uri = global_uris()[1]
        return RunHandle(info.run_id, mlflow.get_tracking_uri(), str(info.experiment_id), registry_uri)

    @staticmethod
    def _push(run: Any) -> tuple[list[Any], Any]:
        from ..tracking._compat import ActiveRun, fluent_stack

        stack, entry = fluent_stack(), ActiveRun(run)
        stack.append(entry)
        return stack, entry

    @staticmethod
    def _remove(stack: list[Any], entry: Any) -> list[Any]:
        """Take ``entry`` off its thread's stack; return the runs user code left open above it."""
        if entry not in stack:
            return []
        index = stack.index(entry)
        leftovers = stack[index + 1 :]
        del stack[index:]
        return leftovers

    def adopt_defaults(self, env: Mapping[str, str | None]) -> None:
        """A notebook kernel: ``env`` becomes the process's own setting, kept after runs end.

        Runs in progress (none, normally) restore these values when they end, not the old ones."""
        with self._lock:
            apply_environment(env)
            if self._baseline is not None:
                self._baseline.env.update(env)

    # -- request header providers ---------------------------------------------------------

    def add_header_provider(self, provider: Any) -> Callable[[], None]:
        """Have MLflow ask ``provider`` for headers on every request; returns what takes it out again."""
        from ..tracking._compat import header_providers

        with self._lock:
            header_providers().append(provider)

        def remove() -> None:
            with self._lock:
                providers = header_providers()
                if any(p is provider for p in providers):
                    del providers[next(i for i, p in enumerate(providers) if p is provider)]

        return remove

    def reinit_after_fork(self) -> None:
        """In a forked child: fresh locks (a parent thread may have held one at the fork)."""
        self._lock = threading.RLock()


@dataclass
class _Deferred:
    """A thread binding that waits for MLflow to be imported."""

    run: Callable[[], Any]
    tracking_uri: str


class _AfterImport:
    """A one-shot import hook: runs ``callback`` in the importing thread right after module ``name``
    has been executed (then leaves ``sys.meta_path``). A failing callback is logged, never raised
    into the user's ``import``."""

    def __init__(self, name: str, callback: Callable[[], None]) -> None:
        self.name = name
        self.callback = callback

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        import importlib.util

        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        execute, callback = loader.exec_module, self.callback

        def exec_module(module: Any) -> None:
            execute(module)
            try:
                callback()
            except Exception:
                logging.getLogger(__name__).warning("Could not make the Kedro run's MLflow run active in this "
                                                    "thread after importing mlflow", exc_info=True)

        loader.exec_module = exec_module
        return spec


def _kill(leftovers: list[Any], tracking_uri: str) -> None:
    """End (KILLED) nested runs a node started and never ended; best effort."""
    from ..tracking import Tracker

    for leftover in leftovers:
        try:
            Tracker(tracking_uri).set_terminated(leftover.info.run_id, "KILLED")
        except Exception:  # the parent's own end matters more
            continue


def _loaded() -> Mapping[str, Any]:
    import sys

    return sys.modules
