"""`kedro mlflow migrate`: a kedro-mlflow 2.x project moves over in one command, comments kept."""

from __future__ import annotations

import subprocess
import textwrap

import pytest
from conftest import all_runs, user_artifacts
from io_support import logged_models
from kedro_project import kedro_cmd, kedro_env, kedro_run

pytestmark = pytest.mark.slow

CATALOG = textwrap.dedent("""\
    # the model, tracked by kedro-mlflow
    my_model:
      type: kedro_mlflow.io.models.MlflowModelTrackingDataset  # logged into the run
      flavor: mlflow.sklearn
      save_args:
        registered_model_name: null
    accuracy:
      type: kedro_mlflow.io.metrics.MlflowMetricDataset
      key: accuracy
      save_args:
        mode: append
    predictions:
      type: kedro_mlflow.io.artifacts.MlflowArtifactDataset
      dataset:
        type: json.JSONDataset
        filepath: data/predictions.json
""")

SETTINGS = textwrap.dedent("""\
    from kedro_mlflow.framework.hooks import MlflowHook

    HOOKS = (MlflowHook(),)  # kedro-mlflow's hook
""")

REGISTRY = '''
from kedro.pipeline import Pipeline, node
from kedro_mlflow.pipeline import pipeline_ml_factory  # noqa: F401 (kedro-mlflow's import path)

from .nodes import evaluate, prepare, train


def register_pipelines():
    return {"__default__": Pipeline([
        node(prepare, "params:data", ["x", "y"], name="prepare"),
        node(train, ["x", "y", "params:model"], "my_model", name="train"),
        node(evaluate, ["my_model", "x", "y"], ["accuracy", "predictions"], name="evaluate"),
    ])}
'''

NODES = '''
from sklearn.linear_model import LogisticRegression


def prepare(data):
    x = [[float(i)] for i in range(int(data["n"]))]
    return x, [int(v[0] > 1) for v in x]


def train(x, y, model):
    return LogisticRegression(C=float(model["C"])).fit(x, y)


def evaluate(model, x, y):
    predictions = [int(p) for p in model.predict(x)]
    return sum(int(p == t) for p, t in zip(predictions, y)) / len(y), predictions
'''


def _migrate(project, *args):
    return subprocess.run(kedro_cmd("mlflow", "migrate", *args), cwd=project, env=kedro_env(),
                          capture_output=True, text=True, timeout=120)


def test_a_kedro_mlflow_project_runs_after_migrate_write(project_factory, client_for):
    project = project_factory(nodes=NODES, registry=REGISTRY, parameters={"data": {"n": 4}, "model": {"C": 1.0}})
    catalog = project / "conf" / "base" / "catalog.yml"
    catalog.write_text(CATALOG)
    settings = next((project / "src").iterdir()) / "settings.py"
    settings.write_text(SETTINGS)

    dry = _migrate(project)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "-  type: kedro_mlflow.io.models.MlflowModelTrackingDataset" in dry.stdout
    assert "+  type: kedro_mlflow_runs.io.models.MlflowModelLoggerDataset  # logged into the run" in dry.stdout
    assert catalog.read_text() == CATALOG and settings.read_text() == SETTINGS  # the dry run wrote nothing
    assert "+from kedro_mlflow_runs.pipeline import pipeline_ml_factory" in dry.stdout

    applied = _migrate(project, "--write")
    assert applied.returncode == 0, applied.stderr[-2000:]
    assert (catalog.with_name("catalog.yml.bak")).read_text() == CATALOG
    assert "# the model, tracked by kedro-mlflow" in catalog.read_text()  # comments kept
    assert "HOOKS = ()" in settings.read_text()
    assert "kedro_mlflow." not in catalog.read_text() and "MlflowHook" not in settings.read_text()

    result = kedro_run(project)
    assert result.returncode == 0, result.stderr[-3000:]
    client = client_for(project)
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED" and "accuracy" in run.data.metrics
    assert [m.name for m in logged_models(client, run.info.run_id)] == ["my_model"]
    assert [a.path for a in user_artifacts(client.list_artifacts(run.info.run_id))] == ["predictions.json"]


def test_what_cannot_be_migrated_is_named_and_fails_the_command(project_factory):
    project = project_factory()
    (project / "conf" / "base" / "catalog.yml").write_text(textwrap.dedent("""\
        parts:
          type: kedro_mlflow.io.artifacts.MlflowArtifactDataset
          dataset:
            type: partitions.PartitionedDataset
            path: data/parts
            dataset: json.JSONDataset
        odd:
          type: kedro_mlflow.io.something.Else
    """))
    nodes = next((project / "src").iterdir()) / "nodes.py"
    nodes.write_text(nodes.read_text() + "\n\ndef wrap(p, c):\n    return KedroPipelineModel(p, c, 'x')\n"
                     "\nfrom kedro_mlflow.pipeline.pipeline_ml_factory import pipeline_ml_factory\n")
    result = _migrate(project)
    assert result.returncode != 0
    assert f"src/{nodes.parent.name}/nodes.py:" in result.stderr and "KedroPipelineModel built by hand" in result.stderr
    # a module path that does not exist here is named, not rewritten into a broken import
    assert "'from kedro_mlflow.pipeline.pipeline_ml_factory import pipeline_ml_factory' uses kedro-mlflow" in result.stderr
    assert "PartitionedDataset" not in result.stderr and "catalog.yml:2" not in result.stderr  # that one migrates
    assert "conf/base/catalog.yml:8: 'kedro_mlflow.io.something.Else' has no counterpart" in result.stderr


def test_migrate_refuses_to_write_anything_when_part_cannot_be_migrated(project_factory):
    project = project_factory(catalog={"m": {"type": "kedro_mlflow.io.models.MlflowModelTrackingDataset",
                                             "flavor": "mlflow.sklearn"}})
    settings = next((project / "src").iterdir()) / "settings.py"
    settings.write_text("from kedro_mlflow.framework.hooks import MlflowHook\nhook = MlflowHook()  # mine\n")
    catalog_before = (project / "conf" / "base" / "catalog.yml").read_text()
    result = _migrate(project, "--write")
    assert result.returncode != 0
    assert "settings.py:2" in result.stderr and "Nothing was written" in result.stdout
    assert (project / "conf" / "base" / "catalog.yml").read_text() == catalog_before
    assert settings.read_text().endswith("hook = MlflowHook()  # mine\n")


def test_migrate_write_keeps_the_permissions_and_bytes_of_the_original(project_factory):
    """A 0600 catalog (it may hold credentials) gives a 0600 backup, even over a wider old backup."""
    import os
    import stat

    project = project_factory()
    catalog = project / "conf" / "base" / "catalog.yml"
    original = CATALOG.replace("\n", "\r\n").encode()  # Windows line endings are kept too
    catalog.write_bytes(original)
    catalog.chmod(0o600)
    backup = catalog.with_name("catalog.yml.bak")
    backup.write_text("left by an earlier run\n")
    backup.chmod(0o644)
    applied = _migrate(project, "--write")
    assert applied.returncode == 0, applied.stderr[-2000:]
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600 and stat.S_IMODE(os.stat(catalog).st_mode) == 0o600
    assert backup.read_bytes() == original
    assert b"type: kedro_mlflow_runs.io.models.MlflowModelLoggerDataset  # logged into the run\r\n" in catalog.read_bytes()


def test_a_file_that_is_not_text_in_its_encoding_is_named_and_nothing_is_written(project_factory):
    project = project_factory()
    package = next((project / "src").iterdir())
    catalog = project / "conf" / "base" / "catalog.yml"
    catalog.write_bytes(CATALOG.encode() + "# café\n".encode("latin-1"))
    result = _migrate(project, "--write")
    assert result.returncode != 0
    assert f"conf/base/catalog.yml: it is not utf-8 text (byte 0xe9 at offset {len(CATALOG) + 5}), and Kedro reads" in result.stderr
    assert "iconv" in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert not catalog.with_name("catalog.yml.bak").exists()

    catalog.write_text(CATALOG)
    nodes = package / "nodes.py"
    nodes.write_bytes(b"from kedro_mlflow.io.metrics import MlflowMetricDataset  # caf\xe9\n")
    result = _migrate(project, "--write")
    assert result.returncode != 0 and f"src/{package.name}/nodes.py: it is not utf-8 text" in result.stderr
    assert catalog.read_text() == CATALOG

    # a Python file that declares its encoding is read and written in it
    nodes.write_bytes(b"# -*- coding: latin-1 -*-\nfrom kedro_mlflow.io.metrics import MlflowMetricDataset  # caf\xe9\n")
    result = _migrate(project, "--write")
    assert result.returncode == 0, result.stderr[-2000:]
    assert nodes.read_bytes().endswith(b"from kedro_mlflow_runs.io.metrics import MlflowMetricDataset  # caf\xe9\n")
