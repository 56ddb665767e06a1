"""kedro-mlflow-runs: the MLflow run of every ``kedro run``, opened, attached and closed right.

Importing this package does not import MLflow.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import MlflowConfig, build_config, load_config
from .context import (
    Ownership,
    RunContext,
    RunHandle,
    RunState,
    active_contexts,
    current_run_context,
)
from .errors import (
    ConfigError,
    DatasetRunNotFoundError,
    KedroMlflowRunsError,
    MlflowDatasetError,
    NoActiveRunError,
    ParameterError,
    RunConflictError,
    RunInterruptedError,
    RunNotFoundError,
    RunStateError,
    TrackingError,
    TrackingUnavailableError,
)

__all__ = [
    "ConfigError",
    "DatasetRunNotFoundError",
    "KedroMlflowRunsError",
    "MlflowConfig",
    "MlflowDatasetError",
    "NoActiveRunError",
    "Ownership",
    "ParameterError",
    "RunContext",
    "RunHandle",
    "RunConflictError",
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
