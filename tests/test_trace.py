"""The node timeline as one MLflow trace linked to the run (`tracking.timeline.trace`): a span per node
with its worker, attempt, load / compute / save seconds and datasets, failed nodes marked; on the
sequential and the parallel runner, for a run opened by `open-run` and closed by `close-run` after two
steps; off when switched off; a store that refuses it leaves the run as it was."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import records
from kedro_project import kedro_cmd, kedro_env, kedro_run, run_session, store_uri

pytestmark = pytest.mark.slow


def _traces(uri: str, run: Any) -> list[Any]:
    """The traces of ``run``'s experiment in store ``uri``; each must be linked to ``run``."""
    from mlflow import MlflowClient

    found = list(MlflowClient(uri).search_traces(locations=[run.info.experiment_id]))
    assert all(t.info.trace_metadata.get("mlflow.sourceRun") == run.info.run_id for t in found)
    return found


def _spans(trace: Any) -> dict[str, Any]:
    return {span.name: span for span in trace.data.spans}


def test_a_run_writes_its_nodes_as_one_trace_linked_to_it(project, mlflow_store, mocker):
    from mlflow.tracing.client import TracingClient

    calls = [mocker.spy(TracingClient, "log_spans"), mocker.spy(TracingClient, "start_trace")]
    run_session(project)
    assert [spy.call_count for spy in calls] == [1, 1]  # the whole trace in two requests
    run = mlflow_store.assert_one_run(status="FINISHED").run
    (trace,) = _traces(mlflow_store.uri, run)
    assert trace.info.trace_metadata["mlflow.sourceRun"] == run.info.run_id
    assert str(trace.info.state).endswith("OK")
    spans = _spans(trace)
    assert set(spans) == {"kedro run", "make_data", "train", "report"}
    root = spans["kedro run"]
    assert all(spans[n].parent_id == root.span_id for n in ("make_data", "train", "report"))
    train = spans["train"]
    assert train.attributes["kedro.inputs"] == ["values", "params:model"]
    assert train.attributes["kedro.outputs"] == ["result"]
    assert train.attributes["kedro.status"] == "completed" and str(train.status.status_code).endswith("OK")
    assert {"kedro.load_s", "kedro.compute_s", "kedro.save_s", "kedro.worker.pid"} <= set(train.attributes)
    assert train.attributes["kedro.duration_s"] == pytest.approx(run.data.metrics["kedro.node_duration_s.train"])
    assert root.start_time_ns <= spans["make_data"].start_time_ns < train.start_time_ns < spans["report"].start_time_ns


def test_a_failed_node_is_an_error_span_of_an_error_trace(project, mlflow_store):
    with pytest.raises(Exception, match="train failed on purpose"):
        run_session(project, runtime_params={"model": {"fail": "x"}})
    run = mlflow_store.assert_one_run(status="FAILED").run
    (trace,) = _traces(mlflow_store.uri, run)
    assert str(trace.info.state).endswith("ERROR")
    spans = _spans(trace)
    assert set(spans) == {"kedro run", "make_data", "train"}  # report never ran
    assert str(spans["train"].status.status_code).endswith("ERROR")
    assert "failed" in spans["train"].status.description and spans["train"].attributes["kedro.status"] == "failed"
    assert str(spans["make_data"].status.status_code).endswith("OK")


def test_parallel_workers_are_named_in_one_trace(project, client_for):
    result = kedro_run(project, "--runner", "ParallelRunner")
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = client_for(project).search_runs([client_for(project).get_experiment_by_name(project.name).experiment_id])
    (trace,) = _traces(store_uri(project), run)
    spans = _spans(trace)
    assert set(spans) == {"kedro run", "make_data", "train", "report"}
    import os
    assert all(spans[n].attributes["kedro.worker.pid"] != os.getpid() for n in ("make_data", "train", "report"))


def test_switched_off_there_is_no_trace(project_factory, mlflow_store):
    project = project_factory(mlflow_yml={"tracking": {"timeline": {"trace": False}}})
    run_session(project)
    run = mlflow_store.assert_one_run(status="FINISHED").run
    assert _traces(mlflow_store.uri, run) == []
    assert "kedro.node_duration_s.train" in run.data.metrics  # the rest of the timeline as before


def test_a_store_refusing_the_trace_leaves_the_run_as_it_was(project, mlflow_store, mocker):
    mocker.patch("kedro_mlflow_runs.compat.mlflow.write_trace", side_effect=RuntimeError("traces not supported"))
    with records("kedro_mlflow_runs.recording.trace") as logged:
        run_session(project)
    run = mlflow_store.assert_one_run(status="FINISHED")
    assert _traces(mlflow_store.uri, run.run) == []
    assert "kedro/timeline.html" in {a.path for a in mlflow_store.client.list_artifacts(run.run_id, "kedro")}
    (warning,) = [r.getMessage() for r in logged if r.levelno == logging.WARNING]
    assert "as an MLflow trace (" in warning and "traces not supported" in warning


def _mlflow(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(kedro_cmd("mlflow", *args), cwd=project, env=kedro_env(**env), capture_output=True,
                          text=True, timeout=300)


def test_a_run_of_two_steps_gets_one_trace_from_its_closer(project_factory, client_for):
    # the steps hand `values` over on disk
    project = project_factory(catalog={"values": {"type": "pickle.PickleDataset", "filepath": "data/values.pkl"}})
    opened = _mlflow(project, "open-run", "--json")
    assert opened.returncode == 0, opened.stderr[-3000:]
    import json

    run_id = json.loads(opened.stdout.strip().splitlines()[-1])["run_id"]
    for nodes in ("make_data", "train,report"):
        step = kedro_run(project, "--nodes", nodes, env=kedro_env(MLFLOW_RUN_ID=run_id))
        assert step.returncode == 0, step.stderr[-3000:]
    client = client_for(project)
    assert _traces(store_uri(project), client.get_run(run_id)) == []  # the steps leave it to the closer
    closed = _mlflow(project, "close-run", "--run-id", run_id, "--status", "auto")
    assert closed.returncode == 0, closed.stderr[-3000:]
    run = client.get_run(run_id)
    (trace,) = _traces(store_uri(project), run)
    assert set(_spans(trace)) == {"kedro run", "make_data", "train", "report"}
    pids = {_spans(trace)[n].attributes["kedro.worker.pid"] for n in ("make_data", "train")}
    assert len(pids) == 2  # two steps, two processes, one trace
