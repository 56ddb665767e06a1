"""`kedro mlflow migrate` on kedro-mlflow projects as their authors wrote them (``migrate_projects.py``):
after ``migrate --write`` and ``kedro run``, MLflow holds the parameters, metric names and values,
artifact paths and model names that kedro-mlflow logged, with no hand edit."""

from __future__ import annotations

import contextlib
import stat
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from conftest import all_runs, user_metrics
from io_support import logged_models
from kedro_project import kedro_run, run_session, store_uri
from migrate_projects import V1_NODES, V1_PARAMETERS, V2_CATALOG, migrate, write_v1_project, write_v2_project

pytestmark = pytest.mark.slow

FEATURES = {"features": V1_PARAMETERS["model_options"]["features"]}


def artifacts(client: Any, run_id: str, folder: str | None = None) -> set[str]:
    """Every file of the run, the plugin's own kedro/ records left out."""
    found: set[str] = set()
    for item in client.list_artifacts(run_id, folder):
        if item.is_dir and item.path != "kedro":
            found |= artifacts(client, run_id, item.path)
        elif not item.is_dir:
            found.add(item.path)
    return found


def v1_nodes() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(V1_NODES, "nodes.py", "exec"), namespace)  # the project's own node functions
    return namespace


def legacy_run(project: Path) -> str:
    """A training run as kedro-mlflow 1.x logged it on MLflow 2: each model a folder of run artifacts."""
    import mlflow.sklearn
    from mlflow import MlflowClient

    nodes = v1_nodes()
    model_input = nodes["preprocess"](pd.read_csv(project / "data" / "01_raw" / "games.csv"))
    scaler = nodes["fit_scaler"](model_input, FEATURES)
    regressor = nodes["train"](model_input, scaler, FEATURES)
    client = MlflowClient(store_uri(project))
    experiment = client.create_experiment(project.name)  # kedro-mlflow's experiment: the package name
    run = client.create_run(experiment, run_name="__default__")
    with tempfile.TemporaryDirectory() as folder:
        for name, model in (("model", regressor), ("scaler", scaler)):
            mlflow.sklearn.save_model(model, f"{folder}/{name}", pip_requirements=["scikit-learn"])  # no inference
            client.log_artifacts(run.info.run_id, f"{folder}/{name}", name)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@pytest.fixture(scope="module")
def v1(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> SimpleNamespace:
    """A kedro-mlflow 1.x project: dry run, ``--write``, then ``kedro run``, its inference also reading
    the models of a training run kedro-mlflow 1.x logged before the migration."""
    project = write_v1_project(tmp_path_factory.mktemp("v1"), template_db)
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file() and p.name != "mlflow.db"}
    old_run = legacy_run(project)
    dry = migrate(project)
    unchanged_by_dry_run = all(p.read_bytes() == data for p, data in before.items())
    written = migrate(project, "--write")
    training = kedro_run(project, "--params", f"training_run_id={old_run}")
    from mlflow import MlflowClient

    client = MlflowClient(store_uri(project))
    runs = {r.info.run_name: r for r in all_runs(client) if r.info.run_id != old_run}
    return SimpleNamespace(project=project, dry=dry, unchanged_by_dry_run=unchanged_by_dry_run, written=written,
                           training=training, client=client, runs=runs, old_run=old_run)


def test_the_dry_run_shows_each_change_on_one_line_and_writes_nothing(v1):
    assert v1.dry.exit_code == 0, v1.dry.output  # Kedro's settings.py names the package in comments: no finding
    assert v1.unchanged_by_dry_run and "Dry run: nothing was written" in v1.dry.output
    changes = [line.strip() for line in v1.dry.output.splitlines() if line.startswith("  conf/")]
    where = "conf/base/catalog.yml"
    assert [c.split(" (")[0] for c in changes if ": type " not in c] == [
        f"{where}:15: regressor: save_args.name: model",
        f"{where}:21: scaler: artifact_path: scaler -> save_args.name: scaler",
        f"{where}:25: regressor_from_run: save_args.name: model",
        f"{where}:33: scaler_from_run: artifact_path: scaler -> save_args.name: scaler",
        f"{where}:36: model_metrics: prefix: model_metrics",
    ]
    assert sum(": type kedro_mlflow." in c for c in changes) == 8  # every kedro-mlflow entry, by its line
    assert f"{where}:8: model_input: type kedro_mlflow.io.artifacts.MlflowArtifactDataset -> " \
           "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset" in changes
    assert "src/" not in v1.dry.output  # the template settings.py is left alone


def test_write_then_kedro_run_logs_what_kedro_mlflow_logged(v1):
    assert v1.written.exit_code == 0, v1.written.output
    assert v1.training.returncode == 0, v1.training.stderr[-3000:]
    run = v1.runs["__default__"]  # kedro-mlflow names the run after the pipeline
    assert run.info.status == "FINISHED"
    # parameters: the node inputs params:<name>; kedro-mlflow's mlflow.yml says flatten: False -> str(dict)
    assert run.data.params == {"model_options": str(V1_PARAMETERS["model_options"])}
    nodes = v1_nodes()
    model_input = nodes["preprocess"](pd.read_csv(v1.project / "data" / "01_raw" / "games.csv"))
    scaler = nodes["fit_scaler"](model_input, FEATURES)
    metrics, r2 = nodes["evaluate"](nodes["train"](model_input, scaler, FEATURES), scaler, model_input, FEATURES)
    # a metrics dataset without prefix: <entry>.<name>; a metric dataset without key: <entry>
    assert user_metrics(run.data.metrics) == pytest.approx(
        {"model_metrics.mae": metrics["mae"]["value"], "model_metrics.r2": metrics["r2"]["value"], "r2_score": r2})
    # artifacts: <artifact_path>/<file name>, at the root without artifact_path
    assert artifacts(v1.client, run.info.run_id) == {"data/model_input.parquet", "predictions.csv"}
    # models: 'model' without artifact_path (kedro-mlflow 1.x's default), else artifact_path
    assert sorted(m.name for m in logged_models(v1.client, run.info.run_id)) == ["model", "scaler"]
    import mlflow.sklearn

    with _store(v1.project):
        loaded = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model")  # consumers of runs:/<id>/model
    assert type(loaded).__name__ == "LinearRegression"


def test_the_inference_reads_a_training_run_kedro_mlflow_logged_before_the_migration(v1):
    assert v1.training.returncode == 0, v1.training.stderr[-3000:]
    nodes = v1_nodes()
    model_input = nodes["preprocess"](pd.read_csv(v1.project / "data" / "01_raw" / "games.csv"))
    scaler = nodes["fit_scaler"](model_input, FEATURES)
    expected = nodes["predict"](nodes["train"](model_input, scaler, FEATURES), scaler, model_input, FEATURES)
    written = pd.read_csv(v1.project / "data" / "07_model_output" / "predictions_from_run.csv")
    assert written["predicted_rating"].tolist() == pytest.approx(expected["predicted_rating"].tolist())
    assert set(v1.runs) == {"__default__"}  # loading from another run logs nothing there


def test_kedro_mlflows_run_tags_have_their_counterparts(v1):
    tags = v1.runs["__default__"].data.tags
    assert tags["kedro.project_path"] == str(v1.project.resolve())  # kedro-mlflow's project_path
    assert tags["kedro.pipeline_names"] == "__default__" and tags["kedro.env"] == "local"
    assert tags["kedro.version"] and tags["kedro.run_id"] and tags["kedro.runner"] == "SequentialRunner"
    assert tags["kedro.command"] == f"kedro run --params training_run_id={v1.old_run}"  # its kedro_command
    # the other run parameters kedro-mlflow tagged (runtime_params here) are in the command line only
    assert [k for k, v in tags.items() if v1.old_run in v] == ["kedro.command"]
    assert not {"runtime_params", "project_path", "kedro_command", "pipeline_names"} & set(tags)


@contextlib.contextmanager
def _store(project: Path) -> Any:
    import mlflow

    mlflow.set_tracking_uri(store_uri(project))
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def v2(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> SimpleNamespace:
    """A kedro-mlflow 2.x project (Windows line endings, a 0640 catalog, kedro-mlflow's hook beside
    the project's own in HOOKS): ``--write``, then ``kedro run``."""
    project = write_v2_project(tmp_path_factory.mktemp("v2"), template_db)
    package = project.name
    originals = {name: path.read_bytes() for name, path in _v2_files(project).items()}
    written = migrate(project, "--write")
    result = kedro_run(project)
    from mlflow import MlflowClient

    client = MlflowClient(store_uri(project))
    return SimpleNamespace(project=project, package=package, originals=originals, written=written, result=result,
                           client=client, runs=all_runs(client))


def _v2_files(project: Path) -> dict[str, Path]:
    return {"catalog": project / "conf" / "base" / "catalog.yml",
            "settings": project / "src" / project.name / "settings.py"}


def test_a_2x_project_keeps_its_hooks_tuple_line_endings_modes_and_originals(v2):
    assert v2.written.exit_code == 0, v2.written.output
    files = _v2_files(v2.project)
    settings = files["settings"].read_bytes()
    assert b"\nHOOKS = (ProjectHooks(),)\r\n" in settings and b"MlflowHook" not in settings
    assert b"\n" not in settings.replace(b"\r\n", b"")  # CRLF kept
    assert (v2.project / "data" / "project_hooks_ran").read_text() == "yes"  # the project's hook still runs
    catalog = files["catalog"]
    assert stat.S_IMODE(catalog.stat().st_mode) == 0o640 and b"\n" not in catalog.read_bytes().replace(b"\r\n", b"")
    for name, path in files.items():
        backup = path.with_name(path.name + ".bak")
        assert backup.read_bytes() == v2.originals[name]
        assert stat.S_IMODE(backup.stat().st_mode) == stat.S_IMODE(path.stat().st_mode)


def test_a_2x_project_logs_the_names_kedro_mlflow_logged(v2):
    assert v2.result.returncode == 0, v2.result.stderr[-3000:]
    (run,) = v2.runs
    assert run.info.status == "FINISHED" and run.info.run_name == "__default__"
    assert run.data.params == {"data": "{'n': 6}", "model": "{'C': 1.0}"}
    metrics = user_metrics(run.data.metrics)
    assert metrics == {"accuracy": 1.0, "loss_history": pytest.approx(2 / 3), "eval.precision": 1.0}
    history = v2.client.get_metric_history(run.info.run_id, "loss_history")
    assert [(m.step, m.value) for m in history] == [(0, 0.0), (1, 0.5), (2, pytest.approx(2 / 3))]
    assert artifacts(v2.client, run.info.run_id) == {"reports/report.json"}
    assert [m.name for m in logged_models(v2.client, run.info.run_id)] == ["model"]


def test_a_second_migration_keeps_the_first_backup(v2):
    catalog = _v2_files(v2.project)["catalog"]
    edited = catalog.read_bytes() + b"late_metric:\r\n  type: kedro_mlflow.io.metrics.MlflowMetricDataset\r\n"
    catalog.write_bytes(edited)
    result = migrate(v2.project, "--write")
    assert result.exit_code == 0, result.output
    assert "conf/base/catalog.yml:24: late_metric: type kedro_mlflow.io.metrics.MlflowMetricDataset" in result.output
    assert catalog.with_name("catalog.yml.bak").read_bytes() == V2_CATALOG.replace("\n", "\r\n").encode()
    second = catalog.with_name("catalog.yml.bak.2")
    assert second.read_bytes() == edited and stat.S_IMODE(second.stat().st_mode) == 0o640
    assert "Wrote conf/base/catalog.yml (the original is in catalog.yml.bak.2)" in result.output
    assert catalog.read_bytes().endswith(b"type: kedro_mlflow_runs.io.metrics.MlflowMetricDataset\r\n")


def test_a_catalog_still_naming_kedro_mlflow_fails_before_any_run_is_created(project_factory, client_for):
    from kedro_mlflow_runs.errors import MlflowDatasetError

    project = project_factory(catalog={
        "my_model": {"type": "kedro_mlflow.io.models.MlflowModelTrackingDataset", "flavor": "mlflow.sklearn"},
        "values": {"type": "pickle.PickleDataset", "filepath": "data/values.pkl"}})
    with pytest.raises(MlflowDatasetError) as raised:
        run_session(project)
    message = str(raised.value)
    assert "'my_model' (kedro_mlflow.io.models.MlflowModelTrackingDataset)" in message
    assert "`kedro mlflow migrate`" in message and "No MLflow run was created" in message
    assert raised.value.dataset == "my_model" and all_runs(client_for(project)) == []
