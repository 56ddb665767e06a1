"""Child runs per pipeline or namespace (`tracking.child_runs.by`): one parent, a child per group, and
what each node made in its group's child, on the sequential and the parallel runner; a failure ends
them all FAILED; `none` changes nothing."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from kedro_project import kedro_run, run_session, store_uri

pytestmark = pytest.mark.slow

#: `values` is made by the `data` pipeline and read by `training`: it lives in the data child run
CATALOG = {
    "values": {"type": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset",
               "dataset": {"type": "pickle.PickleDataset", "filepath": "data/values.pkl"}},
    "result": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricsDataset"},
}


def _runs(uri: str, name: str) -> dict[str, Any]:
    """``{"parent": run, <group>: child run}`` of the only parent in experiment ``name``."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    found = client.search_runs([experiment.experiment_id])
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in found]
    (parent,) = parents
    out = {"parent": parent}
    for run in found:
        if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id:
            assert run.data.tags["kedro.child_group"] not in out  # one child per group
            out[run.data.tags["kedro.child_group"]] = run
    return out


def _check_pipeline_children(runs: dict[str, Any], client: Any) -> None:
    assert set(runs) == {"parent", "data", "training"}
    parent, data, training = runs["parent"], runs["data"], runs["training"]
    assert data.info.run_name == "data" and training.info.run_name == "training"
    # parameters where the nodes that read them are (the parent has them all, as before)
    assert data.data.params == {"data.n": "4"}
    assert training.data.params["model.C"] == "0.5"  # (and all of `parameters`, which `report` reads)
    assert {"data.n", "model.C"} <= set(parent.data.params)
    # node code's mlflow.log_metric and the metrics dataset: the training child
    assert training.data.metrics["user_metric"] == 0.5 and training.data.metrics["coef"] == 3.0
    assert "user_metric" not in parent.data.metrics and "coef" not in parent.data.metrics
    # the artifact `make_data` saved: in the data child (and `train` loaded it from there)
    assert [a.path for a in client.list_artifacts(data.info.run_id)] == ["values.pkl"]
    assert "values.pkl" not in [a.path for a in client.list_artifacts(parent.info.run_id)]
    # the parent keeps the summary: timeline over all nodes
    assert {"kedro.node_duration_s.make_data", "kedro.node_duration_s.train"} <= set(parent.data.metrics)
    assert {r.info.status for r in runs.values()} == {"FINISHED"}


def test_by_pipeline_each_group_gets_a_child_holding_what_its_nodes_made(project_factory, mlflow_store):
    from mlflow import MlflowClient

    project = project_factory(catalog=CATALOG, mlflow_yml={"tracking": {"child_runs": {"by": "pipeline"}}})
    run_session(project, runtime_params={"model": {"log_metric": True}})
    _check_pipeline_children(_runs(mlflow_store.uri, project.name), MlflowClient(mlflow_store.uri))


def test_parallel_workers_log_into_their_nodes_child_runs(project_factory):
    from mlflow import MlflowClient

    project = project_factory(catalog=CATALOG, mlflow_yml={"tracking": {"child_runs": {"by": "pipeline"}}})
    result = kedro_run(project, "--runner", "ParallelRunner", "--params", "model.log_metric=true")
    assert result.returncode == 0, result.stderr[-3000:]
    _check_pipeline_children(_runs(store_uri(project), project.name), MlflowClient(store_uri(project)))


def test_thread_runner_workers_log_into_their_nodes_child_runs(project_factory, mlflow_store):
    from kedro.runner import ThreadRunner
    from mlflow import MlflowClient

    project = project_factory(catalog=CATALOG, mlflow_yml={"tracking": {"child_runs": {"by": "pipeline"}}})
    run_session(project, runner=ThreadRunner(max_workers=2), runtime_params={"model": {"log_metric": True}})
    runs = _runs(mlflow_store.uri, project.name)
    _check_pipeline_children(runs, MlflowClient(mlflow_store.uri))
    # the trace, on the thread runner too: one span per node, in the parent's trace
    (trace,) = MlflowClient(mlflow_store.uri).search_traces(locations=[runs["parent"].info.experiment_id])
    assert trace.info.trace_metadata["mlflow.sourceRun"] == runs["parent"].info.run_id
    spans = {span.name for span in trace.data.spans}
    assert spans == {"kedro run", "make_data", "train", "report"}


def test_sigterm_ends_the_parent_and_every_child_killed(project_factory, tmp_path):
    import signal
    import subprocess

    from kedro_project import kedro_cmd, kedro_env, wait_until_started

    project = project_factory(catalog=CATALOG, mlflow_yml={"tracking": {"child_runs": {"by": "pipeline"}}})
    marker, gate = tmp_path / "started", tmp_path / "gate"
    proc = subprocess.Popen(kedro_cmd("run", "--params", f"model.gate={gate},model.started_marker={marker}"),
                            cwd=project, env=kedro_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_started(marker, proc)  # `train` (the training child's node) is running
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, output[-3000:]
    runs = _runs(store_uri(project), project.name)
    assert {name: r.info.status for name, r in runs.items()} == {"parent": "KILLED", "data": "KILLED",
                                                                  "training": "KILLED"}


def test_a_failed_node_ends_the_parent_and_every_child_failed(project_factory, mlflow_store):
    project = project_factory(catalog=CATALOG, mlflow_yml={"tracking": {"child_runs": {"by": "pipeline"}}})
    with pytest.raises(Exception, match="train failed on purpose"):
        run_session(project, runtime_params={"model": {"fail": "x"}})
    runs = _runs(mlflow_store.uri, project.name)
    assert set(runs) == {"parent", "data", "training"}
    assert {name: r.info.status for name, r in runs.items()} == {"parent": "FAILED", "data": "FAILED",
                                                                  "training": "FAILED"}


NAMESPACED = textwrap.dedent("""\
    from kedro.pipeline import node, pipeline

    from .nodes import make_data, report, train


    def register_pipelines():
        prep = pipeline([node(make_data, "params:data", "values", name="make_data")], namespace="prep",
                        parameters={"params:data"})
        fit = pipeline([node(train, ["prep.values", "params:model"], "result", name="train")], namespace="fit",
                       inputs={"prep.values"}, parameters={"params:model"})
        return {"__default__": prep + fit + pipeline([node(report, ["fit.result", "parameters"], "summary",
                                                                 name="report")])}
    """)


def test_by_namespace_nodes_without_one_stay_in_the_parent(project_factory, mlflow_store):
    project = project_factory(registry=NAMESPACED, mlflow_yml={"tracking": {"child_runs": {"by": "namespace"}}})
    run_session(project, runtime_params={"model": {"log_metric": True}})
    runs = _runs(mlflow_store.uri, project.name)
    assert set(runs) == {"parent", "prep", "fit"}
    assert runs["fit"].data.metrics == {"user_metric": 0.5}
    assert runs["prep"].data.params == {"data.n": "4"}
    assert "user_metric" not in runs["parent"].data.metrics


def test_none_creates_no_child_run(project_factory, mlflow_store):
    project = project_factory(catalog=CATALOG)
    run_session(project)
    run = mlflow_store.assert_one_run(status="FINISHED")
    assert "values.pkl" in [a.path for a in mlflow_store.client.list_artifacts(run.run_id)]
    assert Path(project / "data" / "values.pkl").exists()


def test_steps_of_one_run_share_each_groups_child_and_close_run_ends_them(project_factory, client_for):
    import json
    import subprocess

    from kedro_project import kedro_cmd, kedro_env

    project = project_factory(catalog=CATALOG, mlflow_yml={"tracking": {"child_runs": {"by": "pipeline"}}})
    opened = subprocess.run(kedro_cmd("mlflow", "open-run", "--json"), cwd=project, env=kedro_env(),
                            capture_output=True, text=True, timeout=300)
    assert opened.returncode == 0, opened.stderr[-3000:]
    run_id = json.loads(opened.stdout.strip().splitlines()[-1])["run_id"]
    for nodes in ("make_data", "train,report", "make_data"):  # the data step twice: a retry
        step = kedro_run(project, "--nodes", nodes, env=kedro_env(MLFLOW_RUN_ID=run_id))
        assert step.returncode == 0, step.stderr[-3000:]
    runs = _runs(store_uri(project), project.name)
    assert set(runs) == {"parent", "data", "training"}  # the retry found the data child, made no other
    assert {r.info.status for name, r in runs.items() if name != "parent"} == {"RUNNING"}  # left to the closer
    closed = subprocess.run(kedro_cmd("mlflow", "close-run", "--run-id", run_id, "--status", "auto"), cwd=project,
                            env=kedro_env(), capture_output=True, text=True, timeout=300)
    assert closed.returncode == 0, closed.stderr[-3000:]
    assert f"Ended 2 child run(s) of MLflow run {run_id} as FINISHED." in closed.stdout
    runs = _runs(store_uri(project), project.name)
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    assert runs["training"].data.metrics["coef"] == 3.0


def test_two_processes_creating_one_groups_child_at_once_leave_one(project, mlflow_store, mocker):
    """The race, injected: this process's first search misses the child another process has just
    created, so it creates a second; its second search sees both, keeps the oldest, deletes its own."""
    from kedro_mlflow_runs.core.children import ensure_children
    from kedro_mlflow_runs.handle import RunHandle
    from kedro_mlflow_runs.tracking import Tracker

    client = mlflow_store.client
    experiment = client.create_experiment("race")
    parent = client.create_run(experiment).info.run_id
    other = client.create_run(experiment, run_name="data", tags={"mlflow.parentRunId": parent,
                                                                 "kedro.child_group": "data"}).info.run_id
    tracker = Tracker(mlflow_store.uri)
    real = Tracker.child_runs
    searches = iter([lambda *_: [], real])  # the first search is stale; the second sees the store as it is
    mocker.patch.object(Tracker, "child_runs", autospec=True, side_effect=lambda *args: next(searches)(*args))
    handle = RunHandle(parent, mlflow_store.uri, experiment, kedro_run_id="k")
    assert ensure_children(tracker, handle, ["data"]) == {"data": other}
    from mlflow.entities import ViewType

    children = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent}'",
                                  run_view_type=ViewType.ACTIVE_ONLY)
    assert [r.info.run_id for r in children] == [other]
