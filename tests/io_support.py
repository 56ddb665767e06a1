"""Shared pieces of the dataset tests: project sources, a custom flavor, store helpers."""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

LOGGER = "kedro_mlflow_runs.io.models.MlflowModelLoggerDataset"
SAVER = "kedro_mlflow_runs.io.models.MlflowModelSaverDataset"
REGISTRY_DS = "kedro_mlflow_runs.io.models.MlflowModelRegistryDataset"
ARTIFACT = "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset"
METRIC = "kedro_mlflow_runs.io.metrics.MlflowMetricDataset"
HISTORY = "kedro_mlflow_runs.io.metrics.MlflowMetricHistoryDataset"
METRICS = "kedro_mlflow_runs.io.metrics.MlflowMetricsDataset"

#: settings.py registering the hook that binds catalog names to our datasets.
NAMING_SETTINGS = ""  # the plugin's own hooks name the datasets

ML_NODES = '''
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

X = np.array([[0.0], [1.0], [2.0], [3.0]])
Y = [0, 0, 1, 1]


def train(data):
    return LogisticRegression(C=float(data["n"])).fit(X, Y)


def predict(model):
    return [int(v) for v in model.predict(np.array([[0.0], [3.0]]))]


def table(data):
    return pd.DataFrame({"a": [1, 2, int(data["n"])], "b": ["x", "y", "z"]})


def scores(data):
    return 0.75


def curve(data):
    return [1.0 / (i + 1) for i in range(int(data["n"]))]


def report(data):
    return {"precision": 0.5, "recall": [0.1, 0.2, 0.3]}
'''

ML_REGISTRY = '''
from kedro.pipeline import Pipeline, node, pipeline

from .nodes import curve, predict, report, scores, table, train


def register_pipelines():
    training = pipeline([node(train, "params:data", "my_model", name="train")])
    use = pipeline([node(predict, "my_model", "predictions", name="predict")])
    extras = pipeline([
        node(table, "params:data", "my_table", name="table"),
        node(scores, "params:data", "accuracy", name="scores"),
        node(curve, "params:data", "loss", name="curve"),
        node(report, "params:data", "eval_metrics", name="report"),
    ])
    return {
        "__default__": training + use,
        "train": training,
        "use": use,
        "extras": extras,
        "everything": training + use + extras,
    }
'''

ML_PARAMETERS = {"data": {"n": 4}}

#: A custom flavor: JSON "models" ({"coef": c} -> predict(x) = c * x), usable with both
#: pyfunc workflows. ``log_model`` wraps mlflow.pyfunc for the python_model workflow.
CUSTOM_FLAVOR = '''
"""A tiny custom MLflow flavor used by the tests."""
import json
import os
import sys

import mlflow.pyfunc
from mlflow.models import Model
from mlflow.utils.model_utils import _get_flavor_configuration

FLAVOR_NAME = "kmr_custom"


class CoefModel(mlflow.pyfunc.PythonModel):
    def __init__(self, coef):
        self.coef = coef

    def predict(self, context, model_input, params=None):
        return [self.coef * float(v) for v in list(model_input["x"])]


class _Pyfunc:
    def __init__(self, coef):
        self.coef = coef

    def predict(self, data, params=None):
        return [self.coef * float(v) for v in list(data["x"])]


def save_model(model=None, path=None, mlflow_model=None, python_model=None, **kwargs):
    if python_model is not None:
        return mlflow.pyfunc.save_model(path=path, python_model=python_model, mlflow_model=mlflow_model, **kwargs)
    os.makedirs(path)
    with open(os.path.join(path, "model.json"), "w") as handle:
        json.dump(model, handle)
    mlflow_model = mlflow_model or Model()
    mlflow_model.add_flavor(FLAVOR_NAME, data="model.json")
    mlflow_model.save(os.path.join(path, "MLmodel"))


def log_model(model=None, name=None, python_model=None, **kwargs):
    if python_model is not None:
        return Model.log(artifact_path=None, name=name, flavor=mlflow.pyfunc, python_model=python_model, **kwargs)
    return Model.log(artifact_path=None, name=name, flavor=sys.modules[__name__], model=model, **kwargs)


def load_model(model_uri, dst_path=None):
    from mlflow.tracking.artifact_utils import _download_artifact_from_uri

    local = _download_artifact_from_uri(model_uri, output_path=dst_path)
    if not os.path.exists(os.path.join(local, "model.json")):
        return mlflow.pyfunc.load_model(local)
    with open(os.path.join(local, "model.json")) as handle:
        return json.load(handle)


def _load_pyfunc(data_path):
    import cloudpickle

    with open(data_path, "rb") as handle:
        model = cloudpickle.load(handle)
    return _Pyfunc(model["coef"])
'''


def write_catalog(project: Path, catalog: dict[str, Any]) -> None:
    (project / "conf" / "base" / "catalog.yml").write_text(yaml.safe_dump(catalog))


def write_mlflow_yml(project: Path, config: dict[str, Any]) -> None:
    (project / "conf" / "base" / "mlflow.yml").write_text(yaml.safe_dump(config))


def write_module(root: Path, name: str, source: str) -> Path:
    path = root / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


@contextlib.contextmanager
def project_store(project: Path) -> Iterator[None]:
    """Make ``project``'s store the one datasets use outside a run (as the hooks do), then forget it."""
    from kedro_mlflow_runs import build_config
    from kedro_mlflow_runs.core.registry import registry

    registry().configs.remember(None, build_config({}, project_path=project), {})
    try:
        yield
    finally:
        registry().configs.forget()


@contextlib.contextmanager
def active_run(project: Path, run_id: str | None = None) -> Iterator[Any]:
    """An ACTIVE RunContext on ``project``'s store (attached to ``run_id`` when given)."""
    from kedro_mlflow_runs import RunContext, RunState, build_config

    raw: dict[str, Any] = {"tracking": {"run": {"id": run_id}}} if run_id else {}
    ctx = RunContext(build_config(raw, project_path=project), kedro_run_id="test")
    ctx.start()
    try:
        yield ctx
    finally:
        ctx.end(RunState.FINISHED)


def new_run(client: Any, status: str | None = "FINISHED") -> str:
    """A run created directly in the store (as an earlier `kedro run` would have), optionally ended."""
    exp = client.get_experiment_by_name("earlier")
    uri = client._tracking_client.tracking_uri  # keep its artifacts beside the store, not in the cwd
    location = (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").as_uri() if uri.startswith("sqlite:///") else None
    exp_id = exp.experiment_id if exp else client.create_experiment("earlier", artifact_location=location)
    run = client.create_run(exp_id)
    if status:
        client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def logged_models(client: Any, run_id: str | None = None) -> list[Any]:
    """Every LoggedModel in the store (of ``run_id`` when given)."""
    from mlflow.entities import ViewType

    exps = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    models = client.search_logged_models(experiment_ids=exps) if exps else []
    return [m for m in models if run_id is None or m.source_run_id == run_id]
