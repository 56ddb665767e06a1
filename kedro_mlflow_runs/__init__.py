"""kedro-mlflow-runs: the MLflow run of every ``kedro run``, opened, attached and closed right.

Importing this package does not import MLflow and changes nothing in the process.

Public API: :class:`MlflowRunsHooks` (for ``settings.HOOKS``), the run state machine
(:class:`RunContext`, :class:`RunHandle`, :class:`RunState`, :class:`Ownership`,
:func:`current_run_context`, :func:`active_contexts`) for custom runners and programs, the
configuration (:func:`build_config`, :func:`load_config`, :class:`MlflowConfig`) and the errors.
"""

from __future__ import annotations

from ._version import __version__

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

#: Where each public name lives. They are imported on first use (PEP 562), so that Kedro loading the
#: plugin's hooks and commands for every ``kedro`` command pays for those two modules only.
_EXPORTS = MappingProxyType({
    **{name: "config" for name in ("MlflowConfig", "build_config", "load_config")},
    "RunContext": "core.context",
    **{name: "errors" for name in (
        "ConfigError", "DatasetRunNotFoundError", "KedroMlflowRunsError", "MissingDependencyError",
        "MlflowDatasetError", "NoActiveRunError", "ParameterError", "PipelineModelError", "RunConflictError",
        "RunInterruptedError", "RunNotFoundError", "RunStateError", "TrackingError", "TrackingUnavailableError")},
    **{name: "handle" for name in ("Outcome", "Ownership", "RunHandle", "RunState")},
    "MlflowRunsHooks": "framework.hooks",
    **{name: "core.current" for name in ("active_contexts", "current_run_context")},
})

if TYPE_CHECKING:  # pragma: no cover
    from .config import MlflowConfig, build_config, load_config
    from .core.context import RunContext
    from .errors import (
        ConfigError,
        DatasetRunNotFoundError,
        KedroMlflowRunsError,
        MissingDependencyError,
        MlflowDatasetError,
        NoActiveRunError,
        ParameterError,
        PipelineModelError,
        RunConflictError,
        RunInterruptedError,
        RunNotFoundError,
        RunStateError,
        TrackingError,
        TrackingUnavailableError,
    )
    from .handle import Outcome, Ownership, RunHandle, RunState
    from .framework.hooks import MlflowRunsHooks
    from .core.current import active_contexts, current_run_context


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kedro_mlflow_runs' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "ConfigError",
    "DatasetRunNotFoundError",
    "KedroMlflowRunsError",
    "MlflowConfig",
    "MlflowDatasetError",
    "MlflowRunsHooks",
    "MissingDependencyError",
    "NoActiveRunError",
    "Outcome",
    "Ownership",
    "ParameterError",
    "PipelineModelError",
    "RunConflictError",
    "RunContext",
    "RunHandle",
    "RunInterruptedError",
    "RunNotFoundError",
    "RunState",
    "RunStateError",
    "TrackingError",
    "TrackingUnavailableError",
    "__version__",
    "active_contexts",
    "build_config",
    "current_run_context",
    "load_config",
]
