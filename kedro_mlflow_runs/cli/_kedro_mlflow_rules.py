"""kedro-mlflow's catalog entries (0.11 to 2.x spellings) and what each becomes here.

A type is recognised by its class name under ``kedro_mlflow.``, whatever module path spells it
(``kedro_mlflow.io.models.MlflowModelTrackingDataset``,
``kedro_mlflow.io.models.mlflow_model_tracking_dataset.MlflowModelTrackingDataset``, the 0.11
``...DataSet`` names). The argument edits keep what kedro-mlflow logged:

* a model logged into the run without a name was logged as ``model`` by kedro-mlflow 1.x (its
  ``artifact_path`` default; 2.x left it to MLflow 3, which made up a name): ``save_args.name: model``
  is written, since this plugin's default is the catalog entry name. 1.x's ``artifact_path`` becomes
  ``save_args.name`` (a ``save_args.artifact_path`` beside it was ignored by 1.x, and is removed).
  ``run_id`` stays: it means the same here.
* kedro-mlflow's hook gave a metrics dataset without ``prefix`` the entry name as prefix:
  ``prefix: <entry>`` is written. A metric without ``key`` took the entry name: so does this plugin.
* ``log_args`` of the local model dataset, accepted and ignored by kedro-mlflow, is removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from .._version import docs_page
from ._catalog_edit import CatalogEntry, CatalogRule, RuleSet
from ._python_edit import PythonRules, SettingsRule

__all__ = ["KEDRO_MLFLOW", "KEDRO_MLFLOW_PYTHON", "KEDRO_MLFLOW_SETTINGS"]

DEFAULT_MODEL_NAME: Final = "model"  # kedro-mlflow 1.x's artifact_path default


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _model(entry: CatalogEntry) -> None:
    config = entry.config
    save_args = _mapping(config.get("save_args"))
    load_args = _mapping(config.get("load_args"))
    if "artifact_path" in config:  # kedro-mlflow 1.x: the model's path in the run, i.e. its name here
        if save_args.get("name") is not None:
            entry.problem("has both artifact_path and save_args.name; keep one (the name the model is logged as).")
            return
        if "artifact_path" in save_args:
            entry.remove(("save_args", "artifact_path"), "kedro-mlflow 1.x ignored it: artifact_path named the model")
        if config["artifact_path"] is None:
            entry.remove(("artifact_path",), "null: kedro-mlflow 1.x then logged the model as 'model'")
            entry.set(("save_args", "name"), DEFAULT_MODEL_NAME, "kedro-mlflow's name for it")
        else:
            entry.move(("artifact_path",), ("save_args", "name"), "kedro-mlflow 1.x's artifact_path: the model's name")
    elif save_args.get("name") is None and save_args.get("artifact_path") is None and not load_args.get("model_uri"):
        entry.set(("save_args", "name"), DEFAULT_MODEL_NAME,
                  "kedro-mlflow logged it as 'model'; without a name it would be logged as the entry name here")


def _local_model(entry: CatalogEntry) -> None:
    if "log_args" in entry.config:
        entry.remove(("log_args",), "kedro-mlflow accepted and ignored it")


def _metrics(entry: CatalogEntry) -> None:
    if entry.config.get("prefix") is None and not entry.is_pattern:
        entry.set(("prefix",), entry.name, "kedro-mlflow's hook prefixed these metrics with the entry name")


_ARTIFACT = CatalogRule("kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset")
_METRIC = CatalogRule("kedro_mlflow_runs.io.metrics.MlflowMetricDataset")
_METRIC_HISTORY = CatalogRule("kedro_mlflow_runs.io.metrics.MlflowMetricHistoryDataset")
_METRICS = CatalogRule("kedro_mlflow_runs.io.metrics.MlflowMetricsHistoryDataset", _metrics)
_MODEL = CatalogRule("kedro_mlflow_runs.io.models.MlflowModelLoggerDataset", _model)
_LOCAL_MODEL = CatalogRule("kedro_mlflow_runs.io.models.MlflowModelSaverDataset", _local_model)
_REGISTRY = CatalogRule("kedro_mlflow_runs.io.models.MlflowModelRegistryDataset")

RULES: Final = MappingProxyType({
    "MlflowArtifactDataset": _ARTIFACT, "MlflowArtifactDataSet": _ARTIFACT,
    "MlflowMetricDataset": _METRIC, "MlflowMetricDataSet": _METRIC,
    "MlflowMetricHistoryDataset": _METRIC_HISTORY, "MlflowMetricHistoryDataSet": _METRIC_HISTORY,
    "MlflowMetricsHistoryDataset": _METRICS, "MlflowMetricsDataSet": _METRICS,
    "MlflowModelTrackingDataset": _MODEL, "MlflowModelLoggerDataSet": _MODEL, "MlflowModelLoggerDataset": _MODEL,
    "MlflowModelLocalFileSystemDataset": _LOCAL_MODEL, "MlflowModelSaverDataSet": _LOCAL_MODEL,
    "MlflowModelRegistryDataset": _REGISTRY, "MlflowModelRegistryDataSet": _REGISTRY,
})


def _key_of(dataset_type: str) -> str | None:
    """The class name of a kedro-mlflow type (``kedro_mlflow.io.<...>.<Class>``); None for any other type."""
    if not dataset_type.startswith("kedro_mlflow."):
        return None
    return dataset_type.rpartition(".")[2]


KEDRO_MLFLOW: Final = RuleSet(
    name="kedro-mlflow",
    key_of=_key_of,
    rules=RULES,
    hint=f"Replace it by hand (see {docs_page('migrating-from-kedro-mlflow')}).",
)


KEDRO_MLFLOW_SETTINGS: Final = SettingsRule(
    modules=("kedro_mlflow.framework.hooks",),
    hooks=frozenset({"MlflowHook"}),
    why="kedro-mlflow's hook: this plugin registers its own hooks",
)

KEDRO_MLFLOW_PYTHON: Final = PythonRules(
    modules=MappingProxyType({
        "kedro_mlflow.io": "kedro_mlflow_runs.io",
        "kedro_mlflow.io.artifacts": "kedro_mlflow_runs.io.artifacts",
        "kedro_mlflow.io.metrics": "kedro_mlflow_runs.io.metrics",
        "kedro_mlflow.io.models": "kedro_mlflow_runs.io.models",
        "kedro_mlflow.pipeline": "kedro_mlflow_runs.pipeline",
        "kedro_mlflow.mlflow": "kedro_mlflow_runs.pipeline",
    }),
    owned=("kedro_mlflow",),
    by_hand=MappingProxyType({"KedroPipelineModel": (
        "builds a KedroPipelineModel by hand: its constructor differs here (no catalog; artifacts are "
        f"bundled when the model is logged). Use pipeline_ml_factory or `kedro mlflow modelify` (see "
        f"{docs_page('pipeline-models')}).")}),
    hint=f"replace it by hand (see {docs_page('migrating-from-kedro-mlflow')}).",
)
