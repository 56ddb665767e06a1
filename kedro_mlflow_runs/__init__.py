"""kedro-mlflow-runs: the MLflow run of every ``kedro run``, opened, attached and closed right.

Importing this package does not import MLflow and changes nothing in the process.

Public API: :class:`MlflowRunsHooks` (for ``settings.HOOKS``), the run state machine
(:class:`RunContext`, :class:`RunHandle`, :class:`RunState`, :class:`Ownership`,
:func:`current_run_context`, :func:`active_contexts`) for custom runners and programs, the
configuration (:func:`build_config`, :func:`load_config`, :class:`MlflowConfig`) and the errors.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._version import __version__

#: Where each public name lives. They are imported on first use (PEP 562), so that Kedro loading the
#: plugin's hooks and commands for every ``kedro`` command pays for those two modules only.
_EXPORTS = MappingProxyType({
    **dict.fromkeys(("MlflowConfig", "build_config", "load_config"), "config"),
    "RunContext": "core.context",
    **dict.fromkeys((
        "ConfigError", "DatasetRunNotFoundError", "KedroMlflowRunsError", "MissingDependencyError",
        "MlflowDatasetError", "NoActiveRunError", "ParameterError", "PipelineModelError", "RunConflictError",
        "RunInterruptedError", "RunNotFoundError", "RunStateError", "TrackingError", "TrackingUnavailableError",
    ), "errors"),
    **dict.fromkeys(("Outcome", "Ownership", "RunHandle", "RunState"), "handle"),
    "MlflowRunsHooks": "framework.hooks",
    **dict.fromkeys(("active_contexts", "current_run_context"), "core.current"),
})

if TYPE_CHECKING:  # pragma: no cover
    from .config import MlflowConfig, build_config, load_config
    from .core.context import RunContext
    from .core.current import active_contexts, current_run_context
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
    from .framework.hooks import MlflowRunsHooks
    from .handle import Outcome, Ownership, RunHandle, RunState


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
    "MissingDependencyError",
    "MlflowConfig",
    "MlflowDatasetError",
    "MlflowRunsHooks",
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
