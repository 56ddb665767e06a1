"""Kedro datasets that put models, files and metrics into the MLflow run of a ``kedro run``.

Datasets never start or end a run: they ask the RunContext which run to use (see
``docs/datasets.md`` for the run-selection table). Importing this package does not import
MLflow; a flavor module is looked up (not imported) when a model dataset is created, and imported
when a tracked run starts or on the dataset's first save or load.
"""

from __future__ import annotations

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
