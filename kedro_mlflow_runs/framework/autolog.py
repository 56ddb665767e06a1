"""``tracking.autolog``: MLflow autologging into the plugin's run, on every runner.

Turned on when a tracked run starts and off again when it ends. Worker threads log into the run
because it is their MLflow active run while a node runs; forked workers inherit the patched
libraries; spawned workers turn it on themselves from ``KEDRO_MLFLOW_RUNS_AUTOLOG``, which the run
publishes (``{"flavors": [...], "kwargs": {...}}``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from ..core import worker_env
from ..core.registry import REGISTRY
from ..errors import ConfigError

__all__ = ["autolog_env", "set_autolog", "worker_autolog"]


def autolog_env(flavors: Sequence[str], kwargs: Mapping[str, Any]) -> dict[str, str]:
    """What a run publishes so that spawned workers turn the same autologging on."""
    return worker_env.encode(worker_env.AUTOLOG, {"flavors": list(flavors), "kwargs": dict(kwargs)})


def set_autolog(flavors: Sequence[str], kwargs: Mapping[str, Any], *, on: bool) -> None:
    """``mlflow.autolog`` (no flavors) or ``mlflow.<flavor>.autolog`` for each flavor, on or off.

    Raises:
        ConfigError: a flavor MLflow has no autologging for, naming ``tracking.autolog.flavors``.
    """
    import mlflow

    options = {"silent": True, **kwargs} if on else {"disable": True, "silent": True}
    if not flavors:
        mlflow.autolog(**options)
        return
    for flavor in flavors:
        try:
            autolog = importlib.import_module(f"mlflow.{flavor}").autolog
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"'tracking.autolog.flavors' names '{flavor}', but mlflow.{flavor}.autolog does not exist "
                f"({type(exc).__name__}). Use MLflow flavor names such as sklearn, xgboost, pytorch.",
                key="tracking.autolog.flavors",
            ) from exc
        autolog(**options)


def worker_autolog() -> None:
    """In a runner's worker process: turn on what the parent's run published, once per process."""
    spec = worker_env.decode(worker_env.AUTOLOG)
    if spec is None or not REGISTRY.first_in_process("autolog"):
        return
    set_autolog(spec.get("flavors") or [], spec.get("kwargs") or {}, on=True)
