"""Kedro datasets that put models, files and metrics into the MLflow run of a ``kedro run``.

Datasets never start or end a run: they ask the RunContext which run to use (see
``docs/datasets.md`` for the run-selection table). Importing this package does not import
MLflow; a flavor module is looked up (not imported) when a model dataset is created, and imported
when a tracked run starts or on the dataset's first save or load. The names below are imported on
first use (PEP 562): a Kedro run that needs one dataset module (or only ``io.naming``) loads only it.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # pragma: no cover
    from .artifacts import MlflowArtifactDataSet, MlflowArtifactDataset
    from .metrics import (
        MlflowMetricDataset,
        MlflowMetricHistoryDataset,
        MlflowMetricsDataset,
        MlflowMetricsHistoryDataset,
    )
    from .models import (
        MlflowModelLocalFileSystemDataset,
        MlflowModelLoggerDataSet,
        MlflowModelLoggerDataset,
        MlflowModelRegistryDataset,
        MlflowModelSaverDataSet,
        MlflowModelSaverDataset,
        MlflowModelTrackingDataset,
    )
    from .naming import DatasetNamingHooks, name_datasets

#: Where each public name lives.
_EXPORTS: Final = MappingProxyType({
    **dict.fromkeys(("MlflowArtifactDataSet", "MlflowArtifactDataset"), "artifacts"),
    **dict.fromkeys(("MlflowMetricDataset", "MlflowMetricHistoryDataset", "MlflowMetricsDataset",
                     "MlflowMetricsHistoryDataset"), "metrics"),
    **dict.fromkeys(("MlflowModelLocalFileSystemDataset", "MlflowModelLoggerDataSet", "MlflowModelLoggerDataset",
                     "MlflowModelRegistryDataset", "MlflowModelSaverDataSet", "MlflowModelSaverDataset",
                     "MlflowModelTrackingDataset"), "models"),
    **dict.fromkeys(("DatasetNamingHooks", "name_datasets"), "naming"),
})

__all__ = [
    "DatasetNamingHooks",
    "MlflowArtifactDataSet",
    "MlflowArtifactDataset",
    "MlflowMetricDataset",
    "MlflowMetricHistoryDataset",
    "MlflowMetricsDataset",
    "MlflowMetricsHistoryDataset",
    "MlflowModelLocalFileSystemDataset",
    "MlflowModelLoggerDataSet",
    "MlflowModelLoggerDataset",
    "MlflowModelRegistryDataset",
    "MlflowModelSaverDataSet",
    "MlflowModelSaverDataset",
    "MlflowModelTrackingDataset",
    "name_datasets",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kedro_mlflow_runs.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
