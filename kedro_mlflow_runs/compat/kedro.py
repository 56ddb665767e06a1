"""Every use of a Kedro private name, in one place.

What we touch, and why:

* ``OmegaConfigLoader._read_raw_config(key)``: the raw content of each file the loader reads for a key,
  per environment. mlflow.yml errors name the file that holds the bad key, which the merged mapping
  Kedro returns no longer tells (``config/loading.py``).
* ``KedroContext._package_name``: the project's package, the default experiment name. Kedro sets it
  on the context it creates, and offers no public accessor besides the process-wide ``PACKAGE_NAME``
  (wrong for a notebook that loaded another project).
* the ``runner`` local variable of ``KedroSession.run``: the runner this session is about to use, so
  that a ``SystemExit`` escaping it ends the run (``framework/runner_guard.py``).
* ``ParallelRunner._manager``: its multiprocessing manager, asked to shut down on a signal exit so
  that it removes its temporary folder (``framework/runner_guard.py``).

And where Kedro's config stack differs between the versions Kedro allows (no private name, a public
API that changed meaning):

* ``OmegaConf.register_resolver``: OmegaConf 2.4 deprecates ``register_new_resolver`` in its favour,
  but before 2.4 ``register_resolver`` is the legacy API (no ``use_cache``); Kedro accepts
  ``omegaconf>=2.1.1``. :func:`register_resolver` picks the one that works without a warning.

``tests/test_architecture.py::test_the_kedro_private_names_we_use_still_exist`` fails loudly when a
future Kedro moves any of them. Nothing else in the package may name a Kedro private attribute.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from omegaconf import OmegaConf

from . import run_checks

__all__ = ["package_name", "raw_config_files", "register_resolver", "runner_manager", "session_runner", "verify"]


def raw_config_files(config_loader: Any, key: str) -> dict[str, Any] | None:
    """``{file path: its raw content}`` of the files ``config_loader`` reads for ``key`` (base and run
    environment), or None when the loader has no such reader."""
    reader = getattr(config_loader, "_read_raw_config", None)
    if reader is None:
        return None
    base, env, *_ = reader(key)
    return {**base, **env}


def package_name(context: Any) -> str | None:
    """The package of the project a Kedro context belongs to."""
    name = getattr(context, "_package_name", None)
    return name if isinstance(name, str) else None


def register_resolver(name: str, resolver: Callable[..., Any]) -> None:
    """Register ``resolver`` with OmegaConf as ``${name:...}`` (not cached: each use calls it again),
    unless a resolver of that name is registered already."""
    if OmegaConf.has_resolver(name):
        return
    if "use_cache" in inspect.signature(OmegaConf.register_resolver).parameters:  # OmegaConf >= 2.4
        OmegaConf.register_resolver(name, resolver, use_cache=False)
    else:  # OmegaConf < 2.4: register_resolver is the legacy API
        OmegaConf.register_new_resolver(name, resolver, use_cache=False)


def session_runner(frame: FrameType | None) -> Any | None:
    """The runner the ``KedroSession.run`` call on ``frame``'s stack is about to use, if any."""
    from kedro.framework.session import KedroSession
    from kedro.runner import AbstractRunner

    while frame is not None:
        local = frame.f_locals if frame.f_code.co_name == "run" else None
        if local is not None and isinstance(local.get("self"), KedroSession):
            runner = local.get("runner")
            return runner if isinstance(runner, AbstractRunner) else None
        frame = frame.f_back
    return None


def runner_manager(runner: Any) -> Any | None:
    """The multiprocessing manager of Kedro's ParallelRunner (None for other runners)."""
    from multiprocessing.managers import BaseManager

    manager = getattr(runner, "_manager", None)
    return manager if isinstance(manager, BaseManager) else None


def _check_read_raw_config() -> str | None:
    from kedro.config import OmegaConfigLoader

    return None if callable(getattr(OmegaConfigLoader, "_read_raw_config", None)) else (
        "OmegaConfigLoader._read_raw_config")


def _check_package_name() -> str | None:
    from kedro.framework.context import KedroContext

    fields: Mapping[str, Any] = getattr(KedroContext, "__attrs_attrs__", None) or {}
    names = {getattr(f, "name", f) for f in fields} | set(inspect.signature(KedroContext).parameters)
    return None if "_package_name" in names or "package_name" in names else "KedroContext._package_name"


def _check_session_runner() -> str | None:
    from kedro.framework.session import KedroSession

    code = KedroSession.run.__code__
    return None if "runner" in code.co_varnames else "the runner local variable of KedroSession.run"


def _check_runner_manager() -> str | None:
    from kedro.runner import ParallelRunner

    runner = ParallelRunner()
    try:
        return None if runner_manager(runner) is not None else "ParallelRunner._manager"
    finally:
        manager = runner_manager(runner)
        if manager is not None:
            manager.shutdown()


_CHECKS = (_check_read_raw_config, _check_package_name, _check_session_runner, _check_runner_manager)


def verify() -> list[str]:
    """The private names above that this Kedro no longer has (empty when all are there)."""
    return run_checks(_CHECKS)

