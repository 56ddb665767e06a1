"""Kedro projects on disk as kedro-mlflow users wrote them, for ``test_migrate.py``.

* ``write_v1_project``: a kedro-mlflow 1.x project (a BoardGameGeek-style regression): the package
  is named ``kedro_mlflow_<something>``, ``settings.py`` is Kedro's own template (its comments
  name the package), ``mlflow.yml`` has the keys ``kedro mlflow init`` writes, and the catalog uses
  1.x arguments: ``MlflowArtifactDataset`` over parquet and csv, ``MlflowModelTrackingDataset``
  with and without ``artifact_path`` and with ``run_id``, ``MlflowMetricsHistoryDataset`` and
  ``MlflowMetricDataset`` without prefix / key; a training and an inference pipeline (the default
  pipeline also runs the inference on the models of the training run ``--params training_run_id=``).
* ``write_v2_project``: a kedro-mlflow 2.x project, Windows line endings, kedro-mlflow's hook listed
  in ``settings.py`` beside the project's own, a model without ``save_args.name``.

``EXPECTED_V1`` / ``EXPECTED_V2``: what kedro-mlflow logs for them, from its documented behaviour
and source: a model without ``artifact_path`` is logged as ``model`` (1.x's default), metrics of a
metrics dataset without prefix are named ``<entry>.<metric>`` (its ``after_catalog_created``
hook), a metric dataset without key logs ``<entry>``, an artifact lands at
``<artifact_path>/<file name>``, parameters are the node inputs ``params:<name>`` (with
``flatten: False``, a dict is one parameter, its ``str()``), the run is named after the pipeline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import textwrap
from pathlib import Path
from typing import Any

import kedro
import yaml

V1_NODES = '''
"""A BoardGameGeek-style rating regression."""
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import StandardScaler


def preprocess(games: pd.DataFrame) -> pd.DataFrame:
    out = games.dropna().copy()
    out["age"] = 2025 - out["year"]
    return out


def fit_scaler(model_input: pd.DataFrame, options: dict) -> StandardScaler:
    return StandardScaler().fit(model_input[options["features"]])


def train(model_input: pd.DataFrame, scaler: StandardScaler, options: dict) -> LinearRegression:
    return LinearRegression().fit(scaler.transform(model_input[options["features"]]), model_input["rating"])


def evaluate(regressor, scaler, model_input: pd.DataFrame, options: dict):
    errors = regressor.predict(scaler.transform(model_input[options["features"]])) - model_input["rating"]
    mae = float(errors.abs().mean())
    total = float(((model_input["rating"] - model_input["rating"].mean()) ** 2).sum())
    r2 = 1.0 - float((errors ** 2).sum()) / total
    return {"mae": {"value": mae, "step": 0}, "r2": {"value": r2, "step": 0}}, r2


def predict(regressor, scaler, model_input: pd.DataFrame, options: dict) -> pd.DataFrame:
    rating = regressor.predict(scaler.transform(model_input[options["features"]]))
    return pd.DataFrame({"game_id": model_input["game_id"], "predicted_rating": rating})
'''

V1_REGISTRY = '''
from kedro.pipeline import Pipeline, node, pipeline

from .nodes import evaluate, fit_scaler, predict, preprocess, train


def register_pipelines():
    training = pipeline([
        node(preprocess, "games", "model_input", name="preprocess"),
        node(fit_scaler, ["model_input", "params:model_options"], "scaler", name="fit_scaler"),
        node(train, ["model_input", "scaler", "params:model_options"], "regressor", name="train"),
        node(evaluate, ["regressor", "scaler", "model_input", "params:model_options"],
             ["model_metrics", "r2_score"], name="evaluate"),
    ])
    inference = pipeline([node(predict, ["regressor", "scaler", "model_input", "params:model_options"],
                               "predictions", name="predict")])
    from_run = pipeline([node(predict, ["regressor_from_run", "scaler_from_run", "model_input", "params:model_options"],
                              "predictions_from_run", name="predict_from_run")])
    return {"__default__": training + inference + from_run, "training": training, "inference": from_run}
'''

V1_CATALOG = """\
# Raw data: board games and their ratings
games:
  type: pandas.CSVDataset
  filepath: data/01_raw/games.csv

# kept in the run, under data/ (kedro-mlflow 1.x: artifact_path is the folder in the run)
model_input:
  type: kedro_mlflow.io.artifacts.MlflowArtifactDataset
  dataset:
    type: pandas.ParquetDataset
    filepath: data/05_model_input/model_input.parquet
  artifact_path: data

regressor:
  type: kedro_mlflow.io.models.MlflowModelTrackingDataset  # logged into the run
  flavor: mlflow.sklearn

scaler:
  type: kedro_mlflow.io.models.MlflowModelTrackingDataset
  flavor: mlflow.sklearn
  artifact_path: scaler

# the inference pipeline reads the models of the training run given with --params training_run_id=...
regressor_from_run:
  type: kedro_mlflow.io.models.MlflowModelTrackingDataset
  flavor: mlflow.sklearn
  run_id: ${runtime_params:training_run_id, null}

scaler_from_run:
  type: kedro_mlflow.io.models.MlflowModelTrackingDataset
  flavor: mlflow.sklearn
  run_id: ${runtime_params:training_run_id, null}
  artifact_path: scaler

model_metrics:
  type: kedro_mlflow.io.metrics.MlflowMetricsHistoryDataset

r2_score:
  type: kedro_mlflow.io.metrics.MlflowMetricDataset

predictions:
  type: kedro_mlflow.io.artifacts.MlflowArtifactDataset
  dataset:
    type: pandas.CSVDataset
    filepath: data/07_model_output/predictions.csv

predictions_from_run:
  type: pandas.CSVDataset
  filepath: data/07_model_output/predictions_from_run.csv
"""

V1_PARAMETERS = {"model_options": {"features": ["age", "min_players", "max_players", "playing_time"],
                                   "target": "rating"}}

V2_NODES = '''
from sklearn.linear_model import LogisticRegression


def prepare(data):
    x = [[float(i)] for i in range(int(data["n"]))]
    return x, [int(v[0] > 2) for v in x]


def train(x, y, model):
    return LogisticRegression(C=float(model["C"])).fit(x, y)


def evaluate(model, x, y):
    right = [int(p == t) for p, t in zip(model.predict(x), y)]
    accuracy = sum(right) / len(y)
    return accuracy, [1.0 - accuracy / (step + 1) for step in range(3)], {"precision": accuracy}, {"n": len(y)}
'''

V2_REGISTRY = '''
from kedro.pipeline import Pipeline, node
from kedro_mlflow.pipeline import pipeline_ml_factory  # noqa: F401 (kedro-mlflow's import path)

from .nodes import evaluate, prepare, train


def register_pipelines():
    return {"__default__": Pipeline([
        node(prepare, "params:data", ["x", "y"], name="prepare"),
        node(train, ["x", "y", "params:model"], "classifier", name="train"),
        node(evaluate, ["classifier", "x", "y"], ["accuracy", "loss_history", "scores", "report"], name="evaluate"),
    ])}
'''

V2_CATALOG = """\
# the model, tracked by kedro-mlflow 2.x (no save_args.name: MLflow 3 made a name up)
classifier:
  type: kedro_mlflow.io.models.MlflowModelTrackingDataset
  flavor: mlflow.sklearn
  save_args:
    registered_model_name: null
accuracy:
  type: kedro_mlflow.io.metrics.MlflowMetricDataset
  save_args:
    mode: append
loss_history:
  type: kedro_mlflow.io.metrics.MlflowMetricHistoryDataset
scores:
  type: kedro_mlflow.io.metrics.MlflowMetricsHistoryDataset
  prefix: eval
report:
  type: kedro_mlflow.io.artifacts.MlflowArtifactDataset
  dataset:
    type: json.JSONDataset
    filepath: data/08_reporting/report.json
  artifact_path: reports
"""

V2_SETTINGS = '''"""Project settings."""
from kedro_mlflow.framework.hooks import MlflowHook

from {package}.hooks import ProjectHooks

HOOKS = (MlflowHook(), ProjectHooks())
'''

V2_HOOKS = '''
from pathlib import Path

from kedro.framework.hooks import hook_impl


class ProjectHooks:
    @hook_impl
    def before_pipeline_run(self, run_params):
        Path(run_params["project_path"], "data", "project_hooks_ran").write_text("yes")
'''

V2_PARAMETERS = {"data": {"n": 6}, "model": {"C": 1.0}}


def kedro_mlflow_yml(experiment: str) -> str:
    """mlflow.yml with the keys and values ``kedro mlflow init`` writes (its comments left out)."""
    return yaml.safe_dump({
        "server": {"mlflow_tracking_uri": None, "mlflow_registry_uri": None, "credentials": None,
                   "request_header_provider": {"type": None, "pass_context": False, "init_kwargs": {}}},
        "tracking": {
            "disable_tracking": {"disable_autologging": True, "pipelines": []},
            "experiment": {"name": experiment, "create_experiment_kwargs": {"artifact_location": None, "tags": None},
                           "restore_if_deleted": True},
            "run": {"id": None, "name": None, "nested": True},
            "params": {"dict_params": {"flatten": False, "recursive": True, "sep": "."},
                       "long_params_strategy": "fail"},
        },
        "ui": {"port": "5000", "host": "127.0.0.1"},
    }, sort_keys=False)


def kedro_template_settings(package: str) -> str:
    """``settings.py`` as ``kedro new`` writes it (Kedro's own template, rendered)."""
    template = Path(kedro.__file__).parent / "templates" / "project" / "{{ cookiecutter.repo_name }}" / "src"
    text = (template / "{{ cookiecutter.python_package }}" / "settings.py").read_text()
    return text.replace("{{cookiecutter.python_package}}", package).replace("{{ cookiecutter.python_package }}", package)


def games_csv() -> str:
    rows = ["game_id,name,year,min_players,max_players,playing_time,rating"]
    for i in range(40):
        year, low, high, minutes = 1990 + i % 30, 1 + i % 3, 2 + i % 5, 20 + (i * 7) % 120
        rating = 5.0 + 0.02 * minutes - 0.03 * (2025 - year) + 0.1 * high + ((i * 37) % 11) / 20
        rows.append(f"{i},Game {i},{year},{low},{high},{minutes},{rating:.3f}")
    return "\n".join(rows) + "\n"


def _skeleton(root: Path, package: str, template_db: Path, parameters: dict[str, Any]) -> tuple[Path, Path]:
    project = root / package
    src = project / "src" / package
    src.mkdir(parents=True)
    for env in ("base", "local"):
        (project / "conf" / env).mkdir(parents=True)
    (project / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [tool.kedro]
        package_name = "{package}"
        project_name = "{package}"
        kedro_init_version = "{kedro.__version__}"
        source_dir = "src"
        """))
    (src / "__init__.py").write_text('"""A project that used kedro-mlflow."""\n__version__ = "0.1"\n')
    (src / "__main__.py").write_text("")
    (project / "conf" / "base" / "parameters.yml").write_text(yaml.safe_dump(parameters))
    (project / "conf" / "base" / "mlflow.yml").write_text(kedro_mlflow_yml(package))
    shutil.copy(template_db, project / "mlflow.db")
    return project, src


def write_v1_project(root: Path, template_db: Path) -> Path:
    package = f"kedro_mlflow_bgg_{os.getpid()}"
    project, src = _skeleton(root, package, template_db, V1_PARAMETERS)
    (src / "settings.py").write_text(kedro_template_settings(package))
    (src / "nodes.py").write_text(V1_NODES)
    (src / "pipeline_registry.py").write_text(V1_REGISTRY)
    (project / "conf" / "base" / "catalog.yml").write_text(V1_CATALOG)
    (project / "data" / "01_raw").mkdir(parents=True)
    (project / "data" / "01_raw" / "games.csv").write_text(games_csv())
    return project


def write_v2_project(root: Path, template_db: Path) -> Path:
    package = f"churn_{os.getpid()}"
    project, src = _skeleton(root, package, template_db, V2_PARAMETERS)
    crlf = {"settings.py": V2_SETTINGS.format(package=package), "hooks.py": V2_HOOKS}
    for name, text in crlf.items():
        (src / name).write_bytes(text.replace("\n", "\r\n").encode())
    (src / "nodes.py").write_text(V2_NODES)
    (src / "pipeline_registry.py").write_text(V2_REGISTRY)
    catalog = project / "conf" / "base" / "catalog.yml"
    catalog.write_bytes(V2_CATALOG.replace("\n", "\r\n").encode())
    catalog.chmod(0o640)
    (project / "data" / "08_reporting").mkdir(parents=True)
    return project


def migrate(project: Path, *args: str) -> Any:
    """``kedro mlflow migrate [args]`` from the project folder (in this process: it starts no run)."""
    from click.testing import CliRunner

    from kedro_mlflow_runs.cli import commands

    with contextlib.chdir(project):
        return CliRunner().invoke(commands, ["mlflow", "migrate", *args])
