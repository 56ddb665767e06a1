"""MlflowModelLoggerDataset: every row of the run-selection table, on a real sqlite store,
through a catalog built from YAML and through real Kedro runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import all_runs
from io_support import (
    LOGGER,
    ML_NODES,
    ML_PARAMETERS,
    ML_REGISTRY,
    NAMING_SETTINGS,
    active_run,
    logged_models,
    new_run,
    project_store,
)
from kedro.io import DataCatalog
from kedro.io.core import DatasetError
from kedro_project import kedro_env, kedro_run, run_session, store_uri

from kedro_mlflow_runs import NoActiveRunError, RunConflictError

X = np.array([[0.0], [1.0], [2.0], [3.0]])


@pytest.fixture(scope="module")
def model():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(X, [0, 0, 1, 1])


def _catalog(**entry):
    return DataCatalog.from_config(yaml.safe_load(yaml.safe_dump({"my_model": {"type": LOGGER, "flavor": "mlflow.sklearn", **entry}})))


def _ml_project(project_factory, catalog=None, mlflow_yml=None):
    return project_factory(
        nodes=ML_NODES,
        registry=ML_REGISTRY,
        parameters=ML_PARAMETERS,
        settings=NAMING_SETTINGS,
        catalog=catalog or {"my_model": {"type": LOGGER, "flavor": "mlflow.sklearn"}},
        mlflow_yml=mlflow_yml,
    )


# -- the table through a catalog built from YAML ---------------------------------------------


def test_yaml_not_set_active_saves_and_loads_from_the_active_run(project, client_for, model):
    catalog = _catalog(save_args={"name": "clf"})
    with active_run(project) as ctx:
        assert not catalog.exists("my_model")
        catalog.save("my_model", model)
        assert catalog.exists("my_model")
        loaded = catalog.load("my_model")
    client = client_for(project)
    (logged,) = logged_models(client)
    assert logged.source_run_id == ctx.run_id and logged.name == "clf"
    assert str(logged.experiment_id) == ctx.handle.experiment_id  # the run's experiment, not "0"
    assert str(logged.status).endswith("READY")
    assert list(loaded.predict(X)) == [0, 0, 1, 1]
    assert [r.info.run_id for r in all_runs(client)] == [ctx.run_id]


def test_yaml_not_set_no_active_run_errors_and_creates_no_run(project, client_for, model):
    catalog = _catalog()
    with project_store(project):
        with pytest.raises(DatasetError, match=r"MlflowModelLoggerDataset.*no MLflow run is active.*set `run_id") as saving:
            catalog.save("my_model", model)
        with pytest.raises(DatasetError, match="cannot load") as loading:
            catalog.load("my_model")
    assert isinstance(saving.value.__cause__, NoActiveRunError)
    assert isinstance(loading.value.__cause__, NoActiveRunError)
    client = client_for(project)
    assert all_runs(client) == [] and logged_models(client) == []


def test_yaml_set_no_active_run_saves_into_that_run_which_stays_finished(project, client_for, model):
    client = client_for(project)
    run_id = new_run(client, status="FINISHED")
    catalog = _catalog(run_id=run_id)
    with project_store(project):
        catalog.save("my_model", model)
        loaded = catalog.load("my_model")
    assert [m.source_run_id for m in logged_models(client)] == [run_id]
    assert client.get_run(run_id).info.status == "FINISHED"
    assert len(all_runs(client)) == 1
    assert list(loaded.predict(X)) == [0, 0, 1, 1]


def test_yaml_set_unknown_run_errors_and_writes_nothing(project, client_for, model):
    catalog = _catalog(run_id="0" * 32)
    with project_store(project), pytest.raises(DatasetError, match=f"run_id '{'0' * 32}' does not exist"):
        catalog.save("my_model", model)
    assert logged_models(client_for(project)) == []


def test_yaml_set_different_while_active_conflicts_on_save_and_loads_from_run_id(project, client_for, model):
    client = client_for(project)
    earlier = new_run(client)
    with project_store(project):
        _catalog(run_id=earlier).save("my_model", model)
    catalog = _catalog(run_id=earlier)
    with active_run(project) as ctx:
        with pytest.raises(DatasetError) as info:
            catalog.save("my_model", model)
        loaded = catalog.load("my_model")
    assert isinstance(info.value.__cause__, RunConflictError)
    message = str(info.value)
    assert earlier in message and ctx.run_id in message and "Nothing was written" in message
    assert [m.source_run_id for m in logged_models(client)] == [earlier]  # still only the first one
    assert list(loaded.predict(X)) == [0, 0, 1, 1]


def test_yaml_set_same_as_active_saves_into_it(project, client_for, model):
    client = client_for(project)
    run_id = new_run(client, status=None)
    catalog = _catalog(run_id=run_id)
    with active_run(project, run_id=run_id) as ctx:
        assert ctx.run_id == run_id
        catalog.save("my_model", model)
        assert list(catalog.load("my_model").predict(X)) == [0, 0, 1, 1]
    assert [m.source_run_id for m in logged_models(client)] == [run_id]


def test_save_does_not_change_the_global_tracking_uri(project, model, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    before = mlflow.get_tracking_uri()
    with active_run(project):
        _catalog().save("my_model", model)
    assert mlflow.get_tracking_uri() == before
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///elsewhere.db"
    assert not Path("elsewhere.db").exists()


def test_failed_log_marks_the_model_failed_and_names_dataset_and_run(project, client_for, model, mocker):
    mocker.patch("mlflow.MlflowClient.log_model_artifacts", side_effect=OSError("disk full"))
    with active_run(project) as ctx:
        with pytest.raises(DatasetError, match=rf"MlflowModelLoggerDataset.*flavor 'mlflow.sklearn'.*{ctx.run_id}.*disk full"):
            _catalog().save("my_model", model)
    (logged,) = logged_models(client_for(project))
    assert str(logged.status).endswith("FAILED")


# -- through Kedro runs ----------------------------------------------------------------------


def test_session_logs_into_the_active_run_named_after_the_entry_and_registers(project_factory, client_for):
    project = _ml_project(
        project_factory,
        catalog={"my_model": {"type": LOGGER, "flavor": "mlflow.sklearn",
                              "save_args": {"registered_model_name": "kmr_clf"}}},
    )
    run_session(project, pipeline_names=["__default__"])
    client = client_for(project)
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED"
    (logged,) = logged_models(client, run.info.run_id)
    assert logged.name == "my_model"
    assert [str(v.version) for v in client.search_model_versions("name='kmr_clf'")] == ["1"]
    import mlflow.pyfunc
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(store_uri(project)):
        pyfunc_model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/my_model")
    assert list(pyfunc_model.predict(X)) == [0, 0, 1, 1]


def test_session_tracking_disabled_without_run_id_fails_and_creates_no_run(project_factory, client_for):
    project = _ml_project(project_factory, mlflow_yml={"tracking": {"disable_tracking": {"pipelines": ["train"]}}})
    with pytest.raises(DatasetError, match="no MLflow run is active"):
        run_session(project, pipeline_names=["train"])
    assert all_runs(client_for(project)) == []


def test_session_tracking_disabled_with_run_id_logs_into_that_run(project_factory, client_for):
    project = _ml_project(project_factory, mlflow_yml={"tracking": {"disable_tracking": {"pipelines": ["train"]}}})
    client = client_for(project)
    earlier = new_run(client)
    (project / "conf" / "base" / "catalog.yml").write_text(
        yaml.safe_dump({"my_model": {"type": LOGGER, "flavor": "mlflow.sklearn", "run_id": earlier}})
    )
    run_session(project, pipeline_names=["train"])
    assert [r.info.run_id for r in all_runs(client)] == [earlier]
    assert client.get_run(earlier).info.status == "FINISHED"
    assert [m.name for m in logged_models(client, earlier)] == ["my_model"]


def test_session_conflicting_run_id_fails_the_run_and_writes_nothing(project_factory, client_for):
    project = _ml_project(project_factory)
    client = client_for(project)
    earlier = new_run(client)
    (project / "conf" / "base" / "catalog.yml").write_text(
        yaml.safe_dump({"my_model": {"type": LOGGER, "flavor": "mlflow.sklearn", "run_id": earlier}})
    )
    with pytest.raises(DatasetError, match=rf"run_id '{earlier}' differs from the active MLflow run '[0-9a-f]{{32}}'"):
        run_session(project, pipeline_names=["train"])
    kedro_runs = [r for r in all_runs(client) if r.info.run_id != earlier]
    assert [r.info.status for r in kedro_runs] == ["FAILED"]
    assert logged_models(client) == []


def test_session_loads_from_another_run_while_a_run_is_active(project_factory, client_for, model):
    project = _ml_project(project_factory)
    client = client_for(project)
    earlier = new_run(client)
    with project_store(project):  # outside a run the entry name is unknown: name it
        _catalog(run_id=earlier, save_args={"name": "my_model"}).save("my_model", model)
    (project / "conf" / "base" / "catalog.yml").write_text(yaml.safe_dump({
        "my_model": {"type": LOGGER, "flavor": "mlflow.sklearn", "run_id": earlier},
        "predictions": {"type": "kedro_datasets.json.JSONDataset", "filepath": "data/predictions.json"},
    }))
    run_session(project, pipeline_names=["use"])
    assert json.loads((project / "data" / "predictions.json").read_text()) == [0, 1]
    assert {r.info.status for r in all_runs(client)} == {"FINISHED"} and len(all_runs(client)) == 2


def test_session_attached_run_with_same_run_id_logs_into_it(project_factory, client_for):
    project = _ml_project(project_factory)
    client = client_for(project)
    run_id = new_run(client, status=None)
    (project / "conf" / "base" / "catalog.yml").write_text(
        yaml.safe_dump({"my_model": {"type": LOGGER, "flavor": "mlflow.sklearn", "run_id": run_id}})
    )
    (project / "conf" / "base" / "mlflow.yml").write_text(yaml.safe_dump({"tracking": {"run": {"id": run_id}}}))
    run_session(project, pipeline_names=["train"])
    assert [r.info.run_id for r in all_runs(client)] == [run_id]
    assert [m.name for m in logged_models(client, run_id)] == ["my_model"]


# -- kedro run, end to end, and serving --------------------------------------------------------


@pytest.mark.slow
def test_kedro_run_logs_a_model_that_mlflow_models_predict_serves(project_factory, client_for, tmp_path):
    project = _ml_project(project_factory)
    result = kedro_run(project, "--pipeline", "train")
    assert result.returncode == 0, result.stderr[-3000:]
    client = client_for(project)
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED"
    (logged,) = logged_models(client, run.info.run_id)
    assert logged.name == "my_model"

    payload = tmp_path / "input.json"
    payload.write_text(json.dumps({"inputs": [[0.0], [3.0]]}))
    out = tmp_path / "out.json"
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    served = subprocess.run(
        [str(mlflow_cli), "models", "predict", "-m", f"runs:/{run.info.run_id}/my_model", "-i", str(payload),
         "-t", "json", "-o", str(out), "--env-manager", "local"],
        env={**kedro_env(), "MLFLOW_TRACKING_URI": store_uri(project)},
        capture_output=True, text=True, timeout=180, cwd=project,
    )
    assert served.returncode == 0, served.stderr[-3000:]
    assert json.loads(out.read_text())["predictions"] == [0, 1]


TWO_MODELS_REGISTRY = '''
from kedro.pipeline import node, pipeline

from .nodes import train


def register_pipelines():
    return {"__default__": pipeline([
        node(train, "params:data", "first_model", name="train_first"),
        node(train, "params:other", "second_model", name="train_second"),
    ])}
'''


@pytest.mark.parametrize("runner", ["ThreadRunner", "ParallelRunner"])
def test_concurrent_runners_log_every_model_into_the_run(project_factory, client_for, runner):
    from kedro import runner as kedro_runners

    project = project_factory(
        nodes=ML_NODES, registry=TWO_MODELS_REGISTRY, settings=NAMING_SETTINGS,
        parameters={"data": {"n": 1}, "other": {"n": 2}},
        catalog={name: {"type": LOGGER, "flavor": "mlflow.sklearn"} for name in ("first_model", "second_model")},
    )
    run_session(project, runner=getattr(kedro_runners, runner)())
    client = client_for(project)
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED"
    models = logged_models(client, run.info.run_id)
    assert sorted(m.name for m in models) == ["first_model", "second_model"]
    assert {str(m.experiment_id) for m in models} == {run.info.experiment_id}
    assert all(str(m.status).endswith("READY") for m in models)


@pytest.mark.slow
@pytest.mark.parametrize("row", ["no_active_run", "conflict"])
def test_kedro_run_shows_the_run_selection_errors(project_factory, client_for, row):
    disabled = {"tracking": {"disable_tracking": {"pipelines": ["train"]}}}
    project = _ml_project(project_factory, mlflow_yml=disabled if row == "no_active_run" else None)
    client = client_for(project)
    earlier = new_run(client) if row == "conflict" else None
    if earlier:
        (project / "conf" / "base" / "catalog.yml").write_text(
            yaml.safe_dump({"my_model": {"type": LOGGER, "flavor": "mlflow.sklearn", "run_id": earlier}})
        )
    result = kedro_run(project, "--pipeline", "train")
    assert result.returncode != 0
    output = " ".join((result.stdout + result.stderr).split())
    label = "MlflowModelLoggerDataset(catalog entry 'my_model', flavor 'mlflow.sklearn')"
    if row == "no_active_run":
        assert f"{label} cannot save" in output
        assert "no MLflow run is active" in output and "No run was created" in output
        assert all_runs(client) == []
    else:
        (kedro_run_record,) = [r for r in all_runs(client) if r.info.run_id != earlier]
        assert f"{label} is written by this pipeline" in output and "No node ran" in output
        assert f"its run_id '{earlier}' differs from the active MLflow run '{kedro_run_record.info.run_id}'" in output
        assert kedro_run_record.info.status == "FAILED"
        assert client.get_run(earlier).info.status == "FINISHED"
    assert logged_models(client) == []


def test_each_save_logs_a_new_model_and_load_returns_the_latest(project, client_for):
    from sklearn.linear_model import LogisticRegression

    catalog = _catalog()
    with active_run(project) as ctx:
        for c in (1.0, 2.0, 3.0):
            catalog.save("my_model", LogisticRegression(C=c).fit(X, [0, 0, 1, 1]))
        assert catalog.load("my_model").C == 3.0
    models = logged_models(client_for(project), ctx.run_id)
    assert [m.name for m in models] == ["model"] * 3  # outside `kedro run` the default name


@pytest.mark.slow
def test_kedro_run_parallel_spawn_workers_log_into_the_run(project_factory, client_for):
    """Datasets are pickled into spawned workers, where they find the run through the plugin."""
    project = project_factory(
        nodes=ML_NODES, registry=TWO_MODELS_REGISTRY, settings=NAMING_SETTINGS,
        parameters={"data": {"n": 1}, "other": {"n": 2}},
        catalog={name: {"type": LOGGER, "flavor": "mlflow.sklearn"} for name in ("first_model", "second_model")},
    )
    result = kedro_run(project, "--runner", "ParallelRunner", env=kedro_env(KEDRO_MP_CONTEXT="spawn"))
    assert result.returncode == 0, result.stderr[-3000:]
    client = client_for(project)
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED"
    assert sorted(m.name for m in logged_models(client, run.info.run_id)) == ["first_model", "second_model"]
