"""Custom runners and plain programs reuse the RunContext: open, hand the handle to worker processes, attach, close."""

from __future__ import annotations

import json
import os
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest
from conftest import all_runs, user_metrics
from kedro_project import run_session
from mlflow import MlflowClient

from kedro_mlflow_runs import RunContext, RunHandle, RunState, build_config

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))


def test_process_pool_runner_from_the_docs(project, client_for):
    from pool_runner import PoolRunner

    run_session(project, runner=PoolRunner(max_workers=2), runtime_params={"model": {"log_metric": True}})

    (run,) = all_runs(client_for(project))
    assert run.info.status == "FINISHED"
    assert user_metrics(run.data.metrics) == {"user_metric": 0.5}  # logged by node code in a worker process
    assert run.data.tags["kedro.runner"] == "PoolRunner"


def test_process_pool_runner_failure_marks_the_run_failed(project, client_for):
    from pool_runner import PoolRunner

    with pytest.raises(ValueError, match="on purpose"):
        run_session(project, runner=PoolRunner(max_workers=2), runtime_params={"model": {"fail": "pool"}})
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FAILED"


def test_dask_local_cluster_runner(project, client_for, tmp_path):
    pytest.importorskip("distributed")
    from dask_runner import DaskRunner

    runner = DaskRunner(client_args={"n_workers": 2, "threads_per_worker": 1, "processes": True,
                                     "dashboard_address": ":0"})
    run_session(project, runner=runner, runtime_params={"model": {"log_metric": True}})

    client = client_for(project)
    (run,) = all_runs(client)  # no stray run in any experiment
    assert run.info.status == "FINISHED"
    assert user_metrics(run.data.metrics) == {"user_metric": 0.5}  # node code in a worker process
    timeline = json.loads(Path(client.download_artifacts(run.info.run_id, "kedro/timeline.json",
                                                         str(tmp_path))).read_text())
    assert [e["node"] for e in timeline] == ["make_data", "train", "report"]
    assert {e["status"] for e in timeline} == {"completed"}
    assert all("dask_worker" in e["worker"] and e["worker"]["pid"] != os.getpid() for e in timeline)
    durations = {k.rpartition(".")[2]: v for k, v in run.data.metrics.items() if k.startswith("kedro.node_duration_s.")}
    assert durations == {e["node"]: pytest.approx(e["duration_s"]) for e in timeline}


# --- any Python program ----------------------------------------------------------------------


def worker_logs(handle: RunHandle, index: int) -> str:
    """What a worker process does: attach, log through the context and through MLflow's fluent API."""
    import os

    import mlflow

    with RunContext.attach(handle) as ctx:
        ctx.log_metrics({f"worker_{index}": float(index)})
        mlflow.log_metric(f"fluent_{index}", float(index))
        mlflow.log_param(f"pid_{index}", os.getpid())
    return ctx.state.value


def worker_fails(handle: RunHandle) -> None:
    with RunContext.attach(handle):
        raise RuntimeError("worker exploded")


@pytest.fixture
def store(tmp_path, template_db):
    shutil.copy(template_db, tmp_path / "mlflow.db")
    return tmp_path


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_program_opens_hands_out_the_handle_and_closes(store, method):
    config = build_config({"tracking": {"experiment": {"name": "program"}}}, project_path=store, environ={})
    with RunContext(config, kedro_run_id="program-1") as owner:
        with ProcessPoolExecutor(2, mp_context=get_context(method)) as pool:
            states = list(pool.map(worker_logs, [owner.handle] * 3, range(3)))
    assert states == ["FINISHED"] * 3
    assert owner.state is RunState.FINISHED

    client = MlflowClient(config.server.tracking_uri)
    (run,) = all_runs(client)
    assert run.info.run_id == owner.run_id
    assert run.info.status == "FINISHED"
    assert {k: v for k, v in run.data.metrics.items() if k.startswith("worker_")} == {
        "worker_0": 0.0, "worker_1": 1.0, "worker_2": 2.0}
    assert {k for k in run.data.metrics if k.startswith("fluent_")} == {"fluent_0", "fluent_1", "fluent_2"}


def test_program_whose_worker_fails_ends_failed_and_workers_never_end_the_run(store):
    config = build_config(None, project_path=store, environ={})
    with pytest.raises(RuntimeError, match="worker exploded"):
        with RunContext(config, kedro_run_id="program-2") as owner:
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                pool.submit(worker_fails, owner.handle).result()
    client = MlflowClient(config.server.tracking_uri)
    (run,) = all_runs(client)
    assert run.info.status == "FAILED"
    assert run.data.tags["kedro.error.type"] == "RuntimeError"
    assert run.data.tags["kedro.error.message"] == "worker exploded"
