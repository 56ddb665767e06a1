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

from ..compat.mlflow import autologging_configs, global_uris, header_providers, set_global_uris
from ..handle import RunHandle
from . import worker_env
from .bindings import ThreadBindings, end_leftovers

__all__ = ["ProcessState", "apply_environment"]

_URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
_RUN_ENV = (worker_env.HANDLE, "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
#: The logger whose INFO lines (where each run is) a tracked run shows, unless the project set its level.
_PACKAGE_LOGGER = "kedro_mlflow_runs"


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

    __slots__ = ("_baseline", "_lock", "_publications", "bindings")

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._publications: list[_Publication] = []
        self._baseline: _Baseline | None = None
        self.bindings = ThreadBindings(self._lock)

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
                publication.fluent = self.bindings.push(run)
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
                    leftovers = ThreadBindings.remove(*publication.fluent)
            finally:
                self._refresh()
        if leftovers and publication.handle is not None:
            end_leftovers(leftovers, publication.handle.tracking_uri)

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
                env[worker_env.HANDLE] = newest.handle.to_json()
                env["MLFLOW_TRACKING_URI"] = newest.handle.tracking_uri
                env["MLFLOW_EXPERIMENT_ID"] = newest.handle.experiment_id  # runs node code starts land beside it
                env["MLFLOW_EXPERIMENT_NAME"] = None  # a shell's other name would contradict the id
                env["MLFLOW_REGISTRY_URI"] = newest.handle.registry_uri
        if uris != baseline.uris or "mlflow" in sys.modules:
            set_global_uris(*uris)
        apply_environment(env)
        if not self._publications:
            self._baseline = None

    @staticmethod
    def _uris_if_loaded() -> tuple[str | None, str | None]:
        if "mlflow" not in sys.modules:  # nothing set yet, and no need to import MLflow to know it
            return (None, None)
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
        with self._lock:
            header_providers().append(provider)

        def remove() -> None:
            with self._lock:
                providers = header_providers()
                if any(p is provider for p in providers):
                    del providers[next(i for i, p in enumerate(providers) if p is provider)]

        return remove

    # -- autologging and the package's log lines --------------------------------------------

    def suspend_autologging(self) -> Callable[[], None]:
        """Turn MLflow's autologging off (every library); returns what turns back on exactly what was on
        (and off what was turned on meanwhile, e.g. ``tracking.autolog``)."""
        with self._lock:
            before = _enabled(autologging_configs())
            _all_off()

        def restore() -> None:
            with self._lock:
                _all_off()
                for name, config in before.items():
                    _autolog(name, config)

        return restore

    def show_package_info(self) -> None:
        """Let the package's INFO lines through (where each run is, like Kedro's own lines) from the first
        tracked run of the process on, unless the project set the level of its logger."""
        package = logging.getLogger(_PACKAGE_LOGGER)
        if package.level == logging.NOTSET:
            package.setLevel(logging.INFO)

    # -- the fluent active run of a thread (see ``bindings.py``) -------------------------------

    def bind(self, run: Callable[[], Any], tracking_uri: str) -> None:
        self.bindings.bind(run, tracking_uri)

    def unbind(self) -> None:
        self.bindings.unbind()

    def fluent_run_id(self) -> str | None:
        return self.bindings.fluent_run_id()

    def user_run(self) -> RunHandle | None:
        return self.bindings.user_run()

    def reinit_after_fork(self) -> None:
        """In a forked child: fresh locks (a parent thread may have held one at the fork)."""
        self._lock = threading.RLock()
        self.bindings.reinit_after_fork(self._lock)


def _enabled(configs: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The autologging integrations that are on, with their configuration."""
    return {name: config for name, config in configs.items() if config and config.get("disable") is False}


def _all_off() -> None:
    """Every autologging integration off: the universal one, and each one turned on by itself (turning
    the universal one off does not reach a library that was not imported when it was turned on)."""
    import mlflow

    mlflow.autolog(disable=True, silent=True)
    for name in _enabled(autologging_configs()):
        _autolog(name, {"disable": True, "silent": True})


def _autolog(name: str, config: Mapping[str, Any]) -> None:
    """Call the ``autolog`` of integration ``name`` with ``config`` (best effort)."""
    import importlib
    import inspect

    import mlflow

    try:
        autolog = mlflow.autolog if name == "mlflow" else importlib.import_module(f"mlflow.{name}").autolog
        accepted = inspect.signature(autolog).parameters  # the stored config has MLflow's own keys too
        autolog(**{key: value for key, value in config.items() if key in accepted})
    except Exception:  # an integration whose module is not mlflow.<name>: leave it as it is, and say so
        logging.getLogger(__name__).warning("Could not turn MLflow's %s autologging %s.", name,
                                            "off" if config.get("disable") else "back on", exc_info=True)
