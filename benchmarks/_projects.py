"""Real Kedro projects on disk for the benchmark workloads (no starter download).

Each project is what ``kedro new`` would leave, cut to what ``kedro run`` reads: ``pyproject.toml``,
``src/<package>/{settings,pipeline_registry,nodes}.py``, ``conf/base/{catalog,parameters}.yml``,
``conf/local/`` and, per contender, an ``mlflow.yml``:

- ``ours``: none when tracked (the plugin's default store is ``sqlite:///<project>/mlflow.db``);
  ``conf/base/mlflow.yml`` listing ``__default__`` in ``tracking.disable_tracking.pipelines`` when
  disabled.
- ``kedro-mlflow``: ``conf/local/mlflow.yml`` (where ``kedro mlflow init`` puts it) with
  ``server.mlflow_tracking_uri: sqlite:///<project>/mlflow.db`` and the experiment named after the
  package, as its template does. Its hooks are registered by its entry point, as are ours.

YAML is written as text (the driver uses the standard library only). Importing this module does
nothing.
"""

from __future__ import annotations

import json
import random
import textwrap
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Project", "w1_project", "w2_project", "w3_project", "WIDE_NODES"]

WIDE_NODES = 200
NARROW_NODES = 20
BRANCHES = 4

OURS_IO = "kedro_mlflow_runs.io"
KM_IO = "kedro_mlflow.io"


@dataclass(frozen=True)
class Project:
    """A generated project: where it is and which venv runs it."""

    path: Path
    venv: str
    label: str


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))


def _skeleton(root: Path, package: str, nodes: str, registry: str, catalog: str, parameters: str) -> Path:
    project = root / package
    src = project / "src" / package
    _write(project / "pyproject.toml", f"""
        [tool.kedro]
        package_name = "{package}"
        project_name = "{package}"
        kedro_init_version = "1.7.0"
        source_dir = "src"
        """)
    _write(src / "__init__.py", "")
    _write(src / "__main__.py", "")
    _write(src / "settings.py", '"""Project settings: Kedro defaults."""\n')
    _write(src / "nodes.py", nodes)
    _write(src / "pipeline_registry.py", registry)
    _write(project / "conf" / "base" / "catalog.yml", catalog)
    _write(project / "conf" / "base" / "parameters.yml", parameters)
    (project / "conf" / "local").mkdir(parents=True, exist_ok=True)
    (project / "data").mkdir(exist_ok=True)
    return project


def _store_uri(project: Path) -> str:
    return f"sqlite:///{(project / 'mlflow.db').resolve().as_posix()}"


def _mlflow_yml(project: Path, contender: str, tracked: bool) -> None:
    """The contender's ``mlflow.yml``, the way its docs say."""
    package = project.name
    if contender == "ours":
        if not tracked:
            _write(project / "conf" / "base" / "mlflow.yml", """
                tracking:
                  disable_tracking:
                    pipelines: [__default__]
                """)
        return
    if contender == "kedro-mlflow":
        disabled = "[__default__]" if not tracked else "[]"
        _write(project / "conf" / "local" / "mlflow.yml", f"""
            server:
              mlflow_tracking_uri: {_store_uri(project)}
            tracking:
              disable_tracking:
                pipelines: {disabled}
              experiment:
                name: {package}
            """)
        return
    if contender != "bare":
        raise ValueError(f"unknown contender {contender!r}")


# ---------------------------------------------------------------- w1: small training pipeline

W1_NODES = '''
"""A small training pipeline: split, scale, train, predict, metric, report."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def split(raw: pd.DataFrame, params: dict) -> tuple:
    rng = np.random.default_rng(int(params["seed"]))
    test = rng.random(len(raw)) < float(params["test_size"])
    x, y = raw.drop(columns="label"), raw["label"]
    return x[~test], x[test], y[~test], y[test]


def scale(x_train: pd.DataFrame, x_test: pd.DataFrame) -> tuple:
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_test)


def train(x_train: np.ndarray, y_train: pd.Series, params: dict) -> LogisticRegression:
    return LogisticRegression(C=float(params["C"]), max_iter=int(params["max_iter"])).fit(x_train, y_train)


def predict(model: LogisticRegression, x_test: np.ndarray) -> np.ndarray:
    return model.predict(x_test)


def metric(predictions: np.ndarray, y_test: pd.Series) -> float:
    return float((predictions == y_test.to_numpy()).mean())


def report(accuracy: float, predictions: np.ndarray) -> dict:
    return {"accuracy": float(accuracy), "n_test": int(len(predictions)),
            "positive_rate": float(np.mean(predictions))}
'''

W1_REGISTRY = '''
from kedro.pipeline import Pipeline, node, pipeline

from .nodes import metric, predict, report, scale, split, train


def register_pipelines() -> dict[str, Pipeline]:
    training = pipeline([
        node(split, ["raw", "params:split"], ["x_train", "x_test", "y_train", "y_test"], name="split"),
        node(scale, ["x_train", "x_test"], ["x_train_scaled", "x_test_scaled"], name="scale"),
        node(train, ["x_train_scaled", "y_train", "params:model"], "model", name="train"),
        node(predict, ["model", "x_test_scaled"], "predictions", name="predict"),
        node(metric, ["predictions", "y_test"], "accuracy", name="metric"),
        node(report, ["accuracy", "predictions"], "report", name="report"),
    ])
    return {"__default__": training, "training": training}
'''

W1_PARAMETERS = """
split:
  test_size: 0.25
  seed: 0
model:
  C: 1.0
  max_iter: 200
"""

_W1_RAW = """
raw:
  type: pandas.CSVDataset
  filepath: data/raw.csv
"""

_W1_BARE = """
model:
  type: pickle.PickleDataset
  filepath: data/model.pkl
accuracy:
  type: json.JSONDataset
  filepath: data/accuracy.json
report:
  type: json.JSONDataset
  filepath: data/report.json
"""


def _w1_tracked(io: str, prefix: str = "") -> str:
    """The model logger, metric and artifact datasets of ``io`` (ours or kedro-mlflow's)."""
    model = "models.MlflowModelLoggerDataset" if io == OURS_IO else "models.MlflowModelTrackingDataset"
    return f"""
{prefix}model:
  type: {io}.{model}
  flavor: mlflow.sklearn
  save_args:
    name: model
{prefix}accuracy:
  type: {io}.metrics.MlflowMetricDataset
  key: accuracy
{prefix}report:
  type: {io}.artifacts.MlflowArtifactDataset
  dataset:
    type: json.JSONDataset
    filepath: data/{prefix}report.json
"""


def _w1_data(project: Path, rows: int = 1000, features: int = 8) -> None:
    rng = random.Random(0)
    lines = [",".join([*(f"x{i}" for i in range(features)), "label"])]
    for _ in range(rows):
        xs = [rng.gauss(0.0, 1.0) for _ in range(features)]
        label = int(xs[0] + 0.5 * xs[1] + rng.gauss(0.0, 0.5) > 0)
        lines.append(",".join([*(f"{x:.6f}" for x in xs), str(label)]))
    (project / "data" / "raw.csv").write_text("\n".join(lines) + "\n")


def w1_project(root: Path, contender: str, tracked: bool) -> Project:
    """The 6-node training pipeline for ``contender`` (``bare``, ``ours``, ``kedro-mlflow``).

    Tracked: the model goes through the contender's model dataset (flavor ``mlflow.sklearn``,
    default requirements handling), the accuracy through its metric dataset, the report through
    its artifact dataset wrapping a ``json.JSONDataset``. Disabled (``tracked=False``): the
    pipeline is listed in ``disable_tracking.pipelines`` and its outputs are the bare
    pickle/json datasets, because a model dataset cannot save without a run in either plugin; the
    MLflow datasets stay declared in the catalog under ``mlflow_*`` names.
    """
    if contender == "bare":
        name, catalog = "kmr_bench_w1_bare", _W1_RAW + _W1_BARE
    else:
        io = OURS_IO if contender == "ours" else KM_IO
        slug = "ours" if contender == "ours" else "km"
        if tracked:
            name, catalog = f"kmr_bench_w1_{slug}_tracked", _W1_RAW + _w1_tracked(io)
        else:
            name, catalog = f"kmr_bench_w1_{slug}_disabled", _W1_RAW + _W1_BARE + _w1_tracked(io, "mlflow_")
    project = _skeleton(root, name, W1_NODES, W1_REGISTRY, catalog, W1_PARAMETERS)
    _w1_data(project)
    _mlflow_yml(project, contender, tracked)
    label = contender if contender == "bare" else f"{contender} {'tracked' if tracked else 'disabled'}"
    return Project(project, contender, label)


# ---------------------------------------------------------------- w2: wide pipeline

W2_NODES = '''
"""A trivial node: what a wide pipeline repeats."""


def bump(value: int) -> int:
    return value + 1
'''

W2_REGISTRY = '''
from kedro.pipeline import Pipeline, node, pipeline

from .nodes import bump


def register_pipelines() -> dict[str, Pipeline]:
    wide = pipeline([node(bump, f"params:p{i:03d}", f"out{i:03d}", name=f"bump_{i:03d}")
                     for i in range(NODES)])
    return {"__default__": wide}
'''


def w2_project(root: Path, contender: str, nodes: int = WIDE_NODES) -> Project:
    """``nodes`` trivial nodes, each reading its own ``params:p<i>``; tracked when a plugin."""
    slug = {"bare": "bare", "ours": "ours", "kedro-mlflow": "km"}[contender]
    parameters = "".join(f"p{i:03d}: {i}\n" for i in range(nodes))
    registry = W2_REGISTRY.replace("range(NODES)", f"range({nodes})")
    project = _skeleton(root, f"kmr_bench_w2_{slug}_{nodes}", W2_NODES, registry, "{}\n", parameters)
    _mlflow_yml(project, contender, tracked=True)
    label = contender if contender == "bare" else f"{contender} tracked"
    return Project(project, contender, f"{label}, {nodes} nodes")


# ---------------------------------------------------------------- w3: ParallelRunner

W3_NODES = '''
"""Independent branches for ParallelRunner: a little numpy work each, no logging."""
from __future__ import annotations

import numpy as np


def make(seed: int) -> np.ndarray:
    return np.random.default_rng(int(seed)).normal(size=(200, 50))


def gram(x: np.ndarray) -> float:
    return float(np.linalg.norm(x.T @ x))
'''

W3_REGISTRY = f'''
from kedro.pipeline import Pipeline, node, pipeline

from .nodes import gram, make


def register_pipelines() -> dict[str, Pipeline]:
    nodes = []
    for b in range({BRANCHES}):
        nodes.append(node(make, f"params:seed{{b}}", f"x{{b}}", name=f"make_{{b}}"))
        nodes.append(node(gram, f"x{{b}}", f"norm{{b}}", name=f"gram_{{b}}"))
    return {{"__default__": pipeline(nodes)}}
'''


def w3_project(root: Path, contender: str) -> Project:
    """``BRANCHES`` independent two-node branches (memory datasets), tracked when a plugin."""
    slug = {"bare": "bare", "ours": "ours", "kedro-mlflow": "km"}[contender]
    parameters = "".join(f"seed{b}: {b}\n" for b in range(BRANCHES))
    project = _skeleton(root, f"kmr_bench_w3_{slug}", W3_NODES, W3_REGISTRY, "{}\n", parameters)
    _mlflow_yml(project, contender, tracked=True)
    return Project(project, contender, contender if contender == "bare" else f"{contender} tracked")


def describe(project: Project) -> str:
    """One line: the project's folder and contender (for ``--keep`` listings)."""
    return json.dumps({"label": project.label, "venv": project.venv, "path": str(project.path)})
