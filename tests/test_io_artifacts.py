"""MlflowArtifactDataset around CSV/JSON datasets and around the model saver."""

from __future__ import annotations

import json
import pickle
from copy import deepcopy

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import all_runs, user_artifacts
from io_support import (
    ARTIFACT,
    HISTORY,
    METRIC,
    METRICS,
    ML_NODES,
    ML_PARAMETERS,
    ML_REGISTRY,
    NAMING_SETTINGS,
    SAVER,
    active_run,
    new_run,
    project_store,
)
from kedro.io import DataCatalog
from kedro.io.core import DatasetError
from kedro_project import kedro_run

from kedro_mlflow_runs import NoActiveRunError, RunConflictError
from kedro_mlflow_runs.io import MlflowArtifactDataSet, MlflowArtifactDataset

X = np.array([[0.0], [1.0], [2.0], [3.0]])
FRAME = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})


def _csv(path, **extra):
    return {"type": ARTIFACT, "dataset": {"type": "kedro_datasets.pandas.CSVDataset", "filepath": str(path),
                                          "save_args": {"index": False}}, **extra}


def _artifacts(client, run_id, path=None):
    return sorted(f.path for f in user_artifacts(client.list_artifacts(run_id, path)))


def test_csv_saved_locally_and_logged_into_the_active_run(project, client_for, tmp_path):
    catalog = DataCatalog.from_config({"table": _csv(tmp_path / "table.csv", artifact_path="tables")})
    with active_run(project) as ctx:
        catalog.save("table", FRAME)
    assert pd.read_csv(tmp_path / "table.csv").equals(FRAME)
    client = client_for(project)
    assert _artifacts(client, ctx.run_id, "tables") == ["tables/table.csv"]
    (tmp_path / "table.csv").unlink()  # load with run_id downloads from the run, not from disk
    loaded = DataCatalog.from_config({"table": _csv(tmp_path / "table.csv", artifact_path="tables",
                                                    run_id=ctx.run_id)})
    with project_store(project):
        assert loaded.load("table").equals(FRAME)
    assert not (tmp_path / "table.csv").exists()  # the local path was not written by the download


def test_json_logged_into_an_explicit_finished_run(project, client_for, tmp_path):
    client = client_for(project)
    run_id = new_run(client)
    ds = MlflowArtifactDataset(
        dataset={"type": "kedro_datasets.json.JSONDataset", "filepath": str(tmp_path / "m.json")}, run_id=run_id
    )
    with project_store(project):
        ds.save({"k": 1})
        assert ds.load() == {"k": 1}
    assert _artifacts(client, run_id) == ["m.json"]
    assert client.get_run(run_id).info.status == "FINISHED"


def test_no_active_run_and_no_run_id_writes_nothing(project, client_for, tmp_path):
    ds = MlflowArtifactDataset(dataset={"type": "kedro_datasets.json.JSONDataset", "filepath": str(tmp_path / "m.json")})
    with project_store(project), pytest.raises(NoActiveRunError, match=r"MlflowArtifactDataset\(wrapping JSONDataset"):
        ds.save({"k": 1})
    assert not (tmp_path / "m.json").exists()
    assert all_runs(client_for(project)) == []


def test_conflicting_run_id_writes_nothing(project, client_for, tmp_path):
    client = client_for(project)
    earlier = new_run(client)
    ds = MlflowArtifactDataset(dataset={"type": "kedro_datasets.json.JSONDataset", "filepath": str(tmp_path / "m.json")},
                               run_id=earlier)
    with active_run(project) as ctx, pytest.raises(RunConflictError) as info:
        ds.save({"k": 1})
    assert earlier in str(info.value) and ctx.run_id in str(info.value)
    assert not (tmp_path / "m.json").exists()
    assert _artifacts(client, earlier) == [] and _artifacts(client, ctx.run_id) == []


def test_logging_failure_keeps_the_local_file_and_says_so(project, tmp_path, mocker):
    mocker.patch("mlflow.MlflowClient.log_artifact", side_effect=ConnectionError("server went away"))
    ds = MlflowArtifactDataset(dataset={"type": "kedro_datasets.json.JSONDataset", "filepath": str(tmp_path / "m.json")})
    with active_run(project) as ctx, pytest.raises(DatasetError) as info:
        ds.save({"k": 1})
    message = str(info.value)
    assert "server went away" in message and ctx.run_id in message
    assert f"local file is kept at '{tmp_path / 'm.json'}'" in message
    assert json.loads((tmp_path / "m.json").read_text()) == {"k": 1}


def test_wraps_the_versioned_model_saver(project, client_for, tmp_path):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X, [0, 0, 1, 1])
    config = {"sklearn_model": {"type": ARTIFACT, "dataset": {
        "type": SAVER, "flavor": "mlflow.sklearn", "filepath": str(tmp_path / "06_models" / "sklearn_model"),
        "versioned": True}}}
    with active_run(project) as ctx:
        DataCatalog.from_config(config).save("sklearn_model", model)
    client = client_for(project)
    logged = _artifacts(client, ctx.run_id, "sklearn_model")
    assert "sklearn_model/MLmodel" in logged and "sklearn_model/requirements.txt" in logged
    (version,) = list((tmp_path / "06_models" / "sklearn_model").iterdir())
    assert (version / "sklearn_model" / "MLmodel").exists()
    from_run = DataCatalog.from_config({"sklearn_model": {**config["sklearn_model"], "run_id": ctx.run_id}})
    with project_store(project):
        assert list(from_run.load("sklearn_model").predict(X)) == [0, 0, 1, 1]


def test_wraps_a_versioned_json_dataset_instance(project, client_for, tmp_path):
    from kedro.io import Version
    from kedro_datasets.json import JSONDataset

    inner = JSONDataset(filepath=str(tmp_path / "v.json"), version=Version(None, None))
    ds = MlflowArtifactDataset(dataset=inner, artifact_path="versions")
    with active_run(project) as ctx:
        ds.save({"v": 1})
    (version,) = list((tmp_path / "v.json").iterdir())
    assert json.loads((version / "v.json").read_text()) == {"v": 1}
    assert _artifacts(client_for(project), ctx.run_id, "versions") == ["versions/v.json"]
    assert ds.load() == {"v": 1}


def test_legacy_name_and_data_set_key(tmp_path):
    assert MlflowArtifactDataSet is MlflowArtifactDataset
    ds = DataCatalog.from_config({"x": {"type": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataSet",
                                        "data_set": {"type": "kedro_datasets.json.JSONDataset",
                                                     "filepath": str(tmp_path / "x.json")}}})
    assert type(ds.get("x")) is MlflowArtifactDataset
    with pytest.raises(DatasetError, match="not both"):
        MlflowArtifactDataset(dataset={"type": "kedro_datasets.json.JSONDataset", "filepath": "a.json"},
                              data_set={"type": "kedro_datasets.json.JSONDataset", "filepath": "a.json"})


def test_pickles_and_deep_copies_without_dynamic_classes(tmp_path):
    ds = MlflowArtifactDataset(dataset={"type": "kedro_datasets.pandas.CSVDataset", "filepath": str(tmp_path / "t.csv")},
                               artifact_path="a")
    for twin in (pickle.loads(pickle.dumps(ds)), deepcopy(ds)):
        assert type(twin) is MlflowArtifactDataset
        assert twin._describe() == ds._describe()


def test_not_a_file_dataset_is_refused():
    with pytest.raises(DatasetError, match="no local file path"):
        MlflowArtifactDataset(dataset={"type": "kedro.io.MemoryDataset"})


@pytest.mark.slow
def test_kedro_run_logs_artifacts_and_metrics_named_after_their_entries(project_factory, client_for):
    project = project_factory(
        nodes=ML_NODES, registry=ML_REGISTRY, parameters=ML_PARAMETERS, settings=NAMING_SETTINGS,
        catalog={
            "my_table": {"type": ARTIFACT, "artifact_path": "reports",
                         "dataset": {"type": "kedro_datasets.pandas.CSVDataset", "filepath": "data/08_reporting/t.csv"}},
            "accuracy": {"type": METRIC},
            "loss": {"type": HISTORY},
            "eval_metrics": {"type": METRICS, "prefix": "eval"},
        },
    )
    result = kedro_run(project, "--pipeline", "extras")
    assert result.returncode == 0, result.stderr[-3000:]
    client = client_for(project)
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED"
    assert _artifacts(client, run.info.run_id, "reports") == ["reports/t.csv"]
    assert (project / "data" / "08_reporting" / "t.csv").exists()
    assert run.data.metrics["accuracy"] == 0.75
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [1.0, 0.5, 1 / 3, 0.25]
    assert run.data.metrics["eval.precision"] == 0.5
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "eval.recall")] == [
        (0, 0.1), (1, 0.2), (2, 0.3)]


def test_session_yaml_round_trip(project_factory, client_for):
    """In-process twin of the kedro run test, through KedroSession."""
    from kedro_project import run_session

    project = project_factory(
        nodes=ML_NODES, registry=ML_REGISTRY, parameters=ML_PARAMETERS, settings=NAMING_SETTINGS,
        catalog={"my_table": {"type": ARTIFACT, "dataset": {"type": "kedro_datasets.pandas.CSVDataset",
                                                            "filepath": "data/t.csv"}},
                 "accuracy": {"type": METRIC}, "loss": {"type": HISTORY}, "eval_metrics": {"type": METRICS}},
    )
    run_session(project, pipeline_names=["extras"])
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FINISHED"
    assert _artifacts(client_for(project), run.info.run_id) == ["t.csv"]
    assert run.data.metrics["accuracy"] == 0.75 and run.data.metrics["precision"] == 0.5
    assert yaml.safe_load((project / "conf" / "base" / "catalog.yml").read_text())["accuracy"] == {"type": METRIC}


PARTS_NODES = '''
def split(data):
    return {"a": {"rows": 1}, "sub/b": {"rows": 2}}
'''

PARTS_REGISTRY = '''
from kedro.pipeline import node, pipeline

from .nodes import split


def register_pipelines():
    return {"__default__": pipeline([node(split, "params:data", "parts", name="split")])}
'''


def _parts(path, **extra):
    return {"type": ARTIFACT, **extra, "dataset": {
        "type": "partitions.PartitionedDataset", "path": str(path), "dataset": "json.JSONDataset",
        "filename_suffix": ".json"}}


def test_a_partitioned_dataset_logs_the_partitions_this_run_wrote(project_factory, client_for):
    from kedro_project import run_session

    project = project_factory(nodes=PARTS_NODES, registry=PARTS_REGISTRY,
                              catalog={"parts": _parts("data/parts", artifact_path="reports")})
    old = project / "data" / "parts" / "old.json"  # a partition an earlier run wrote
    old.parent.mkdir(parents=True)
    old.write_text('{"rows": 0}')
    run_session(project)

    client = client_for(project)
    (run,) = all_runs(client)
    run_id = run.info.run_id
    assert [a.path for a in client.list_artifacts(run_id, "reports")] == ["reports/a.json", "reports/sub"]
    assert [a.path for a in client.list_artifacts(run_id, "reports/sub")] == ["reports/sub/b.json"]
    assert old.exists() and (project / "data" / "parts" / "sub" / "b.json").exists()  # local partitions kept

    # loaded back from the run (not from the local folder, which has old.json too)
    with project_store(project):
        loaded = MlflowArtifactDataset(**{k: v for k, v in _parts(project / "elsewhere", artifact_path="reports",
                                                                   run_id=run_id).items() if k != "type"}).load()
    assert {k: v() for k, v in loaded.items()} == {"a": {"rows": 1}, "sub/b": {"rows": 2}}
    import gc
    from pathlib import Path

    download = Path(next(iter(loaded.values())).args[1].path)
    assert download.is_dir()
    del loaded
    gc.collect()
    assert not download.exists()  # the download goes with the loaders


def test_a_partition_that_cannot_be_logged_names_what_was_logged(project, client_for, tmp_path, mocker):
    from mlflow import MlflowClient

    real = MlflowClient.log_artifact
    calls = []

    def second_fails(self, run_id, local_path, artifact_path=None):
        calls.append(local_path)
        if len(calls) == 2:
            raise ConnectionError("server went away")
        return real(self, run_id, local_path, artifact_path)

    mocker.patch.object(MlflowClient, "log_artifact", second_fails)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "old.json").write_text("[0]")  # not this save's: the partitions are logged one by one
    ds = MlflowArtifactDataset(**{k: v for k, v in _parts(tmp_path / "p").items() if k != "type"})
    with active_run(project) as ctx, pytest.raises(DatasetError) as info:
        ds.save({"x": [1], "y": [2], "z": [3]})
    message = str(info.value)
    assert "partition 'y'" in message and "logged before the failure: x" in message and ctx.run_id in message
    assert f"kept in '{tmp_path / 'p'}'" in message
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["old.json", "x.json", "y.json", "z.json"]
    assert [a.path for a in client_for(project).list_artifacts(ctx.run_id, "p")] == ["p/x.json"]


def test_a_folder_of_only_this_saves_partitions_is_logged_in_one_call(project, client_for, tmp_path, mocker):
    """A fresh partitions folder goes to the run in one call (a local store copies it at once): the same
    artifacts as one by one, and a failure of that call names the folder and keeps every partition."""
    ds = MlflowArtifactDataset(**{k: v for k, v in _parts(tmp_path / "p").items() if k != "type"})
    with active_run(project) as ctx:
        ds.save({"x": [1], "sub/y": [2]})
    client = client_for(project)
    assert [a.path for a in client.list_artifacts(ctx.run_id, "p")] == ["p/sub", "p/x.json"]
    assert [a.path for a in client.list_artifacts(ctx.run_id, "p/sub")] == ["p/sub/y.json"]

    from mlflow import MlflowClient

    mocker.patch.object(MlflowClient, "log_artifacts", side_effect=ConnectionError("server went away"))
    again = MlflowArtifactDataset(**{k: v for k, v in _parts(tmp_path / "q").items() if k != "type"})
    with active_run(project) as ctx, pytest.raises(DatasetError) as info:
        again.save({"x": [1], "y": [2]})
    message = str(info.value)
    assert f"partitions folder '{tmp_path / 'q'}'" in message and "logged in one call" in message
    assert ctx.run_id in message and "re-run the node" in message
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == ["x.json", "y.json"]
