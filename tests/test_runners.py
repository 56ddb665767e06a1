"""Every Kedro runner: one run per `kedro run`, everything nodes log lands in it, failures mark it FAILED."""

from __future__ import annotations

import pytest
from conftest import all_runs, user_artifacts, user_metrics
from kedro_project import run_session

pytestmark = pytest.mark.slow

RUNNERS = [
    pytest.param("SequentialRunner", None, False, id="sequential"),
    pytest.param("SequentialRunner", None, True, id="sequential-async"),
    pytest.param("ThreadRunner", None, False, id="thread"),
    pytest.param("ThreadRunner", None, True, id="thread-async"),
    pytest.param("ParallelRunner", "fork", False, id="parallel-fork"),
    pytest.param("ParallelRunner", "spawn", False, id="parallel-spawn"),
]


def _runner(name: str, is_async: bool):
    import kedro.runner

    cls = getattr(kedro.runner, name)
    return cls(is_async=is_async) if name != "ParallelRunner" else cls(max_workers=2)


@pytest.mark.parametrize(("runner", "mp_context", "is_async"), RUNNERS)
def test_one_finished_run_holds_what_every_worker_logged(project, client_for, monkeypatch, runner, mp_context, is_async):
    if mp_context:
        monkeypatch.setenv("KEDRO_MP_CONTEXT", mp_context)
    run_session(project, runner=_runner(runner, is_async), runtime_params={"model": {"log_metric": True}})

    runs = all_runs(client_for(project))
    assert len(runs) == 1, [(r.info.run_name, r.info.status) for r in runs]
    (run,) = runs
    assert run.info.status == "FINISHED"
    assert run.data.tags["kedro.runner"] == runner
    assert user_metrics(run.data.metrics) == {"user_metric": 0.5}  # logged by node code in a worker
    assert run.data.params["model.C"] == "0.5"


@pytest.mark.parametrize(("runner", "mp_context", "is_async"), RUNNERS)
def test_a_failing_worker_marks_the_run_failed(project, client_for, monkeypatch, runner, mp_context, is_async):
    if mp_context:
        monkeypatch.setenv("KEDRO_MP_CONTEXT", mp_context)
    with pytest.raises(Exception, match="on purpose"):
        run_session(project, runner=_runner(runner, is_async), runtime_params={"model": {"fail": "worker"}})

    runs = all_runs(client_for(project))
    assert len(runs) == 1
    assert runs[0].info.status == "FAILED"
    assert "on purpose" in runs[0].data.tags["kedro.error.message"]
    assert runs[0].data.tags["kedro.error.node"] == "train"  # recorded even from a worker process


DATASET_REGISTRY = '''
from kedro.pipeline import node, pipeline
from .nodes import predict, scores, table, train


def register_pipelines():
    return {"__default__": pipeline([
        node(train, "params:data", "my_model", name="train"),
        node(predict, "my_model", "predictions", name="predict"),
        node(scores, "params:data", "score", name="scores"),
        node(table, "params:data", "table", name="table"),
    ])}
'''

DATASET_CATALOG = {
    "my_model": {"type": "kedro_mlflow_runs.io.models.MlflowModelLoggerDataset", "flavor": "mlflow.sklearn"},
    "predictions": {"type": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset",
                    "dataset": {"type": "json.JSONDataset", "filepath": "data/predictions.json"}},
    "score": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset"},
    "table": {"type": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset",
              "dataset": {"type": "pandas.CSVDataset", "filepath": "data/table.csv"}},
}


@pytest.mark.parametrize(("runner", "mp_context", "is_async"), RUNNERS)
def test_datasets_in_workers_log_into_the_one_run_and_models_load_across_workers(
    project_factory, client_for, monkeypatch, runner, mp_context, is_async
):
    import json

    from io_support import ML_NODES, logged_models

    if mp_context:
        monkeypatch.setenv("KEDRO_MP_CONTEXT", mp_context)
    project = project_factory(nodes=ML_NODES, registry=DATASET_REGISTRY, catalog=DATASET_CATALOG)
    run_session(project, runner=_runner(runner, is_async))

    client = client_for(project)
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED"
    assert [m.name for m in logged_models(client, run.info.run_id)] == ["my_model"]
    assert user_metrics(run.data.metrics) == {"score": 0.75}
    assert sorted(a.path for a in user_artifacts(client.list_artifacts(run.info.run_id))) == ["predictions.json", "table.csv"]
    # `predict` loaded the model that `train` logged (in another worker, for ParallelRunner)
    assert json.loads((project / "data" / "predictions.json").read_text()) == [0, 1]


def test_disabled_tracking_spawned_worker_dataset_with_run_id_uses_the_project_store(
    project_factory, client_for, monkeypatch
):
    from io_support import ML_NODES, new_run, write_catalog

    registry = (
        "from kedro.pipeline import node, pipeline\n"
        "from .nodes import scores\n"
        "def register_pipelines():\n"
        "    return {'__default__': pipeline([node(scores, 'params:data', 'score', name='scores')])}\n"
    )
    project = project_factory(nodes=ML_NODES, registry=registry,
                              mlflow_yml={"tracking": {"disable_tracking": {"pipelines": ["__default__"]}}})
    client = client_for(project)
    earlier = new_run(client)
    write_catalog(project, {"score": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset", "run_id": earlier}})
    monkeypatch.setenv("KEDRO_MP_CONTEXT", "spawn")

    run_session(project, runner=_runner("ParallelRunner", False))

    assert user_metrics(client.get_run(earlier).data.metrics) == {"score": 0.75}  # saved from a spawned worker
    assert [r.info.run_id for r in all_runs(client)] == [earlier]  # tracking disabled: no new run


PROBE_NODES = '''
import sys


def probe(data):
    return {"mlflow_imported": "mlflow" in sys.modules}


def log_late(seen):
    import mlflow  # the first import of MLflow in this worker

    mlflow.log_metric("late", 1.0)
    return seen
'''

PROBE_REGISTRY = '''
from kedro.pipeline import node, pipeline

from .nodes import log_late, probe


def register_pipelines():
    return {"__default__": pipeline([node(probe, "params:data", "seen", name="probe"),
                                     node(log_late, "seen", "logged", name="log_late")])}
'''


def test_a_spawned_worker_imports_mlflow_only_when_its_code_does(project_factory, client_for, monkeypatch):
    """Workers do not pay `import mlflow` for nodes that do not use it; node code that imports it
    later still logs into the run."""
    import json

    import kedro.runner

    project = project_factory(nodes=PROBE_NODES, registry=PROBE_REGISTRY,
                              catalog={"seen": {"type": "json.JSONDataset", "filepath": "data/seen.json"}})
    monkeypatch.setenv("KEDRO_MP_CONTEXT", "spawn")
    run_session(project, runner=kedro.runner.ParallelRunner(max_workers=1))

    assert json.loads((project / "data" / "seen.json").read_text()) == {"mlflow_imported": False}
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FINISHED" and user_metrics(run.data.metrics) == {"late": 1.0}
