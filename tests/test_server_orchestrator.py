"""Many `kedro run --nodes` processes, one MLflow run, on a real `mlflow server` with PostgreSQL."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from conftest import user_artifacts, user_metrics
from kedro_project import kedro_cmd, kedro_env, kedro_run

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

NODES = '''
import mlflow
import numpy as np
from sklearn.linear_model import LogisticRegression


def prep(data):
    return [float(i) for i in range(int(data["n"]))]


def fit_a(values, model, a_only):
    mlflow.log_metric("score_a", sum(values) * model["C"])
    x = np.array(values).reshape(-1, 1)
    classifier = LogisticRegression(C=model["C"]).fit(x, [int(v > 2) for v in values])
    return {"a": sum(values) * a_only}, classifier


def evaluate(classifier, values):
    return [int(p) for p in classifier.predict(np.array(values).reshape(-1, 1))]


def fit_b(values, model, b_only):
    mlflow.log_metric("score_b", len(values) * model["C"])
    return {"b": len(values) * b_only}
'''

REGISTRY = '''
from kedro.pipeline import node, pipeline
from .nodes import evaluate, fit_a, fit_b, prep


def register_pipelines():
    return {"__default__": pipeline([
        node(prep, "params:data", "values", name="prep"),
        node(fit_a, ["values", "params:model", "params:a_only"], ["result_a", "classifier"], name="fit_a"),
        node(fit_b, ["values", "params:model", "params:b_only"], "result_b", name="fit_b"),
        node(evaluate, ["classifier", "values"], "predictions", name="evaluate"),
    ])}
'''

CATALOG = {
    "values": {"type": "json.JSONDataset", "filepath": "data/values.json"},
    "result_a": {"type": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset",
                 "dataset": {"type": "json.JSONDataset", "filepath": "data/result_a.json"}},
    "result_b": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricsDataset"},
    "classifier": {"type": "kedro_mlflow_runs.io.models.MlflowModelLoggerDataset", "flavor": "mlflow.sklearn"},
    "predictions": {"type": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset",
                    "dataset": {"type": "json.JSONDataset", "filepath": "data/predictions.json"}},
}

PARAMETERS = {"data": {"n": 5}, "model": {"C": 2.0}, "a_only": 3, "b_only": 4}


@pytest.fixture
def orchestrated(project_factory, mlflow_server):
    """A project whose nodes run as separate processes, and an orchestrator-owned run."""
    from mlflow import MlflowClient

    project = project_factory(nodes=NODES, registry=REGISTRY, catalog=CATALOG, parameters=PARAMETERS)
    client = MlflowClient(mlflow_server.url)
    exp_id = client.create_experiment(f"orchestrated-{uuid.uuid4().hex[:8]}")
    run = client.create_run(exp_id, run_name="airflow-dag-run")
    env = kedro_env(MLFLOW_TRACKING_URI=mlflow_server.url, MLFLOW_RUN_ID=run.info.run_id)
    return project, client, run.info.run_id, env


def test_three_processes_two_concurrent_log_into_one_open_run(orchestrated):
    import json

    project, client, run_id, env = orchestrated

    first = kedro_run(project, "--nodes", "prep", env=env)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    procs = [
        subprocess.Popen(kedro_cmd("run", "--nodes", node), cwd=project, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for node in ("fit_a", "fit_b")
    ]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    # a fourth process loads the model another process logged, through the server's artifact proxy
    last = kedro_run(project, "--nodes", "evaluate", env=env)
    assert last.returncode == 0, last.stdout[-2000:] + last.stderr[-3000:]
    assert json.loads((project / "data" / "predictions.json").read_text()) == [0, 0, 0, 1, 1]

    run = client.get_run(run_id)
    assert run.info.status == "RUNNING"  # left open for the orchestrator
    assert run.data.params == {"data.n": "5", "model.C": "2.0", "a_only": "3", "b_only": "4"}
    assert user_metrics(run.data.metrics) == {"score_a": 20.0, "score_b": 10.0, "b": 20.0}
    assert sorted(a.path for a in user_artifacts(client.list_artifacts(run_id))) == ["predictions.json", "result_a.json"]
    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    assert [(m.name, m.source_run_id) for m in models] == [("classifier", run_id)]
    # no process created a run of its own
    runs = client.search_runs([run.info.experiment_id])
    assert [r.info.run_id for r in runs] == [run_id]
    default_exp = client.get_experiment_by_name(project.name)
    assert default_exp is None or not client.search_runs([default_exp.experiment_id])

    closed = subprocess.run(kedro_cmd("mlflow", "close-run", "--status", "FINISHED"), cwd=project, env=env,
                            capture_output=True, text=True, timeout=120)
    assert closed.returncode == 0, closed.stderr[-3000:]
    assert f"Ended MLflow run {run_id} as FINISHED" in closed.stdout
    assert client.get_run(run_id).info.status == "FINISHED"
    # each process added its part of the node timeline; the closer merged every part
    assert "Merged the node timelines of 4 Kedro run(s)" in closed.stdout
    assert len(client.list_artifacts(run_id, "kedro/parts")) == 4
    timeline = json.loads(client.download_artifacts(run_id, "kedro/timeline.json", str(project)) and
                          (project / "timeline.json").read_text())
    assert sorted(e["node"] for e in timeline) == ["evaluate", "fit_a", "fit_b", "prep"]
    assert len({e["worker"]["pid"] for e in timeline}) == 4  # one process each
    assert {e["status"] for e in timeline} == {"completed"}
    assert {i.dataset.name for i in client.get_run(run_id).inputs.dataset_inputs} == {"values"}


def test_different_param_value_from_another_process_is_a_clear_error(orchestrated):
    project, client, run_id, env = orchestrated

    assert kedro_run(project, "--nodes", "prep", env=env).returncode == 0
    assert kedro_run(project, "--nodes", "fit_a", env=env).returncode == 0
    clash = kedro_run(project, "--nodes", "fit_b", "--params", "model.C=9.0", env=env)

    assert clash.returncode != 0
    output = clash.stdout + clash.stderr
    assert "ParameterError" in output and "'model.C'" in output.replace("\n", " ").replace("  ", " ")
    run = client.get_run(run_id)
    assert run.data.params["model.C"] == "2.0"
    assert "score_b" not in run.data.metrics  # the node never ran
    assert "b_only" not in run.data.params  # nothing of the clashing process was logged
    client.set_terminated(run_id)


def test_close_run_with_failed_status_and_unknown_run(orchestrated):
    project, client, run_id, env = orchestrated

    failed = subprocess.run(kedro_cmd("mlflow", "close-run", "--status", "failed"), cwd=project, env=env,
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 0, failed.stderr[-3000:]
    assert client.get_run(run_id).info.status == "FAILED"

    missing = subprocess.run(kedro_cmd("mlflow", "close-run", "--run-id", "f" * 32), cwd=project, env=env,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0
    assert "ffffffff" in missing.stderr and "does not exist" in missing.stderr
