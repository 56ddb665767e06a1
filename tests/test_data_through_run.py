"""Data crosses machines through the run: a step whose `MlflowArtifactDataset` has no local file loads
the artifact another step saved into the same run, downloaded into the dataset's own path; lineage
records the artifact as the source, with the digest of the downloaded data.

On the multi-machine harness (real `mlflow server` on PostgreSQL, proxied artifacts, no shared disk),
and on one host with the project's sqlite store (a local file deleted between two attached steps).
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kedro.io.core import DatasetError
from kedro_project import kedro_cmd, kedro_env, kedro_run, make_project
from machines import cluster, machines  # noqa: F401 - fixtures

NODES = '''
def prep(data):
    n = int(data["n"])
    return {"rows": list(range(n))}, {f"part_{i}": {"value": i * n} for i in range(3)}


def train(prepared, shards):
    values = [load()["value"] for _, load in sorted(shards.items())]
    return float(sum(prepared["rows"])), float(sum(values))
'''

REGISTRY = '''
from kedro.pipeline import node, pipeline
from .nodes import prep, train


def register_pipelines():
    return {"__default__": pipeline([
        node(prep, "params:data", ["prepared", "shards"], name="prep"),
        node(train, ["prepared", "shards"], ["total", "shard_sum"], name="train"),
    ])}
'''

ARTIFACT = "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset"
METRIC = "kedro_mlflow_runs.io.metrics.MlflowMetricDataset"
PREPARED = "data/05_model_input/prepared.json"
SHARDS = "data/05_model_input/shards"


def _catalog(*, versioned: bool = False) -> dict[str, Any]:
    return {
        "prepared": {"type": ARTIFACT, "dataset": {"type": "json.JSONDataset", "filepath": PREPARED,
                                                   **({"versioned": True} if versioned else {})}},
        "shards": {"type": ARTIFACT, "dataset": {"type": "partitions.PartitionedDataset", "path": SHARDS,
                                                 "dataset": "json.JSONDataset", "filename_suffix": ".json"}},
        "total": {"type": METRIC},
        "shard_sum": {"type": METRIC},
    }


def _inputs(client: Any, run_id: str) -> dict[str, Any]:
    """The run's dataset inputs by name (the last one logged wins)."""
    return {i.dataset.name: i.dataset for i in client.get_run(run_id).inputs.dataset_inputs}


def _outputs(client: Any, run_id: str, folder: Path) -> dict[str, Any]:
    """The run's merged ``kedro/outputs.json`` by name."""
    path = Path(client.download_artifacts(run_id, "kedro/outputs.json", str(folder)))
    return {o["name"]: o for o in json.loads(path.read_text())}


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- across machines --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project every machine copies (a container image): no data/ of its own."""
    return make_project(tmp_path_factory.mktemp("image"), nodes=NODES, registry=REGISTRY, catalog=_catalog(),
                        parameters={"data": {"n": 5}})


@pytest.mark.slow
@pytest.mark.postgres
def test_a_step_on_another_machine_loads_what_the_first_saved_into_the_run(cluster, machines, image,  # noqa: F811
                                                                           tmp_path):
    a, b = machines.machine("machine-a", image), machines.machine("machine-b", image)
    run_id = cluster.new_run()

    a.run("run", "--nodes", "prep", run_id=run_id).check()
    assert not (b.project / PREPARED).exists() and not (b.project / SHARDS).exists()  # nothing shared
    trained = b.run("run", "--nodes", "train", run_id=run_id).check()

    # b loaded a's data from the run, and now holds it locally, as if it had saved it itself
    assert json.loads((b.project / PREPARED).read_text()) == {"rows": [0, 1, 2, 3, 4]}
    assert (b.project / PREPARED).read_bytes() == (a.project / PREPARED).read_bytes()
    assert sorted(p.name for p in (b.project / SHARDS).iterdir()) == ["part_0.json", "part_1.json", "part_2.json"]
    assert not [p for p in (b.project / PREPARED).parent.iterdir() if "kmr-download" in p.name]  # no leftovers
    said = _one_line(trained.output)  # (rich wraps long lines and puts its source column between them)
    assert f"Downloaded artifact 'prepared.json' of MLflow run {run_id} into" in said
    assert f"'{b.project / PREPARED}': the local file of MlflowArtifactDataset(catalog entry 'prepared'" in said
    record = cluster.read(run_id)
    assert record.user_metrics == {"total": 10.0, "shard_sum": 15.0}

    # lineage: the inputs of b's step came from the run's artifacts, with the digest of the bytes
    inputs = _inputs(cluster.client, run_id)
    prepared, shards = inputs["prepared"], inputs["shards"]
    assert (prepared.source_type, json.loads(prepared.source)) == ("runs", {"uri": f"runs:/{run_id}/prepared.json"})
    assert (shards.source_type, json.loads(shards.source)) == ("runs", {"uri": f"runs:/{run_id}/shards"})
    assert prepared.digest == hashlib.sha256((a.project / PREPARED).read_bytes()).hexdigest()[:16]
    saved_by_a = _outputs(cluster.client, run_id, tmp_path / "outputs")  # what a recorded when it saved them
    assert prepared.digest == saved_by_a["prepared"]["digest"]
    assert shards.digest == saved_by_a["shards"]["digest"] and shards.digest not in ("missing", "unknown")
    for dataset in (prepared, shards):
        assert str(b.root) not in dataset.source and str(a.root) not in dataset.source


@pytest.mark.slow
@pytest.mark.postgres
def test_a_step_whose_input_is_neither_local_nor_in_the_run_fails_naming_both(cluster, machines, image):  # noqa: F811
    b = machines.machine("machine-b", image)
    run_id = cluster.new_run()

    failed = b.run("run", "--nodes", "train", run_id=run_id)

    assert failed.returncode != 0
    said = _one_line(failed.output)
    assert "MlflowArtifactDataset(catalog entry 'prepared', wrapping JSONDataset" in said
    assert f"MLflow run '{run_id}' has no artifact 'prepared.json'" in said
    assert "Run the node that produces it first" in said and "set `run_id: <run id>`" in said
    assert not (b.project / PREPARED).exists()
    b.run("mlflow", "close-run", "--status", "auto", run_id=run_id).check()
    record = cluster.read(run_id)
    assert record.status == "FAILED"
    assert record.tags["kedro.error.node"] == "train" and "'prepared'" in record.tags["kedro.error.dataset"]
    assert "total" not in record.metrics


# --- one host, the project's sqlite store ------------------------------------------------------


def _open(project: Path) -> str:
    opened = subprocess.run(kedro_cmd("mlflow", "open-run"), cwd=project, env=kedro_env(), capture_output=True,
                            text=True, timeout=180)
    assert opened.returncode == 0, opened.stderr[-3000:]
    return opened.stdout.strip().splitlines()[-1]


def _step(project: Path, run_id: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = kedro_run(project, *args, env=kedro_env(MLFLOW_RUN_ID=run_id))
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_a_deleted_local_file_comes_back_from_the_run_and_a_local_one_wins(project_factory, client_for):
    project = project_factory(nodes=NODES, registry=REGISTRY, catalog=_catalog(versioned=True),
                              parameters={"data": {"n": 4}})
    client = client_for(project)
    run_id = _open(project)
    _step(project, run_id, "--nodes", "prep")
    (saved,) = (project / PREPARED).iterdir()  # the version prep saved

    # a local file is there: it wins, whatever the run holds (here: edited after the save)
    (saved / "prepared.json").write_text(json.dumps({"rows": [100]}))
    _step(project, run_id, "--nodes", "train")
    assert client.get_run(run_id).data.metrics["total"] == 100.0
    local = _inputs(client, run_id)["prepared"]
    assert local.source_type == "local" and json.loads(local.source)["uri"].endswith("prepared.json")

    # gone locally (another machine, a cleaned disk): downloaded from the run into a new version
    shutil.rmtree(project / PREPARED)
    shutil.rmtree(project / SHARDS)
    _step(project, run_id, "--nodes", "train")
    assert client.get_run(run_id).data.metrics["total"] == 6.0  # 0+1+2+3: what prep logged
    (version,) = (project / PREPARED).iterdir()
    assert json.loads((version / "prepared.json").read_text()) == {"rows": [0, 1, 2, 3]}
    assert len(list((project / SHARDS).glob("*.json"))) == 3
    fetched = [i.dataset for i in client.get_run(run_id).inputs.dataset_inputs
               if i.dataset.name == "prepared" and i.dataset.source_type == "runs"]
    assert [json.loads(d.source)["uri"] for d in fetched] == [f"runs:/{run_id}/prepared.json"]
    assert fetched[0].digest == hashlib.sha256((version / "prepared.json").read_bytes()).hexdigest()[:16]


def test_exists_sees_the_artifact_of_the_active_run_and_no_run_keeps_the_local_error(project_factory, tmp_path,
                                                                                      mocker):
    from io_support import active_run, project_store

    from kedro_mlflow_runs.io import MlflowArtifactDataset

    project = project_factory()
    local = tmp_path / "elsewhere" / "report.json"
    made = MlflowArtifactDataset(dataset={"type": "json.JSONDataset", "filepath": str(local)}, artifact_path="out")
    with active_run(project) as ctx:
        assert not made.exists()  # neither local nor in the run
        made.save({"k": 1})
        local.unlink()
        assert made.exists()  # in the run
        assert made.load() == {"k": 1} and local.exists()  # downloaded into its own path
        for call in ("list_artifacts", "download_artifact", "get_run"):  # from now on any request fails
            mocker.patch(f"kedro_mlflow_runs.tracking.Tracker.{call}", side_effect=AssertionError("a request"))
        assert made.exists() and made.load() == {"k": 1}  # the local file: MLflow is not asked
        mocker.stopall()
    assert made.exists()  # the local file
    local.unlink()
    assert not made.exists()  # no run to look in
    pinned = MlflowArtifactDataset(dataset={"type": "json.JSONDataset", "filepath": str(local)}, artifact_path="out",
                                   run_id=ctx.run_id)
    with project_store(project):
        assert pinned.exists()  # the run named by run_id holds it
    with pytest.raises(DatasetError, match=r"(?s)report\.json.*its local file is missing, and no MLflow run is "
                                           r"active.*set `run_id: <run id>`"):
        made.load()


def test_a_versioned_dataset_gets_the_artifact_in_the_version_it_would_load(project_factory, tmp_path):
    from io_support import active_run
    from kedro.io.core import Version
    from kedro_datasets.json import JSONDataset

    from kedro_mlflow_runs.io import MlflowArtifactDataset

    project = project_factory()
    folder = tmp_path / "data" / "model_input.json"

    def wrapped(load: str | None, save: str | None) -> MlflowArtifactDataset:
        return MlflowArtifactDataset(dataset=JSONDataset(filepath=str(folder), version=Version(load, save)))

    with active_run(project):
        wrapped(None, "2026-01-02T03.04.05.678Z").save({"v": 1})
        shutil.rmtree(folder)
        pinned = wrapped("2025-12-31T00.00.00.000Z", None)
        assert pinned.load() == {"v": 1}
        assert [p.relative_to(folder).as_posix() for p in folder.rglob("*.json")] == [
            "2025-12-31T00.00.00.000Z/model_input.json"]
        shutil.rmtree(folder)
        latest = wrapped(None, "2026-02-02T00.00.00.000Z")
        assert latest.load() == {"v": 1}  # no version pinned, none here: the version this run saves
        assert [p.relative_to(folder).as_posix() for p in folder.rglob("*.json")] == [
            "2026-02-02T00.00.00.000Z/model_input.json"]


def test_an_empty_partitions_folder_is_filled_from_the_run(project_factory, tmp_path):
    from io_support import active_run

    from kedro_mlflow_runs.io import MlflowArtifactDataset

    project = project_factory()
    folder = tmp_path / "data" / "shards"
    made = MlflowArtifactDataset(dataset={"type": "partitions.PartitionedDataset", "path": str(folder),
                                          "dataset": "json.JSONDataset", "filename_suffix": ".json"})
    with active_run(project):
        made.save({"a": {"v": 1}, "sub/b": {"v": 2}})
        shutil.rmtree(folder)
        folder.mkdir()  # there, but no partition in it
        loaded = made.load()
        assert {k: v() for k, v in loaded.items()} == {"a": {"v": 1}, "sub/b": {"v": 2}}
        assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json")) == ["a.json", "sub/b.json"]

        shutil.rmtree(folder)  # four loads at once (a ThreadRunner's nodes sharing an input) all get it
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda ds: {k: v() for k, v in ds.load().items()},
                                    [copy.deepcopy(made) for _ in range(4)]))
        assert results == [{"a": {"v": 1}, "sub/b": {"v": 2}}] * 4
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json")) == ["a.json", "sub/b.json"]
    assert [p.name for p in folder.parent.iterdir()] == ["shards"]  # no download folder left behind
