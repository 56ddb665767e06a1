"""A real `mlflow server` that errors, disappears and comes back: retries, clear errors, nothing lost."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from flaky_proxy import FlakyProxy
from kedro_project import kedro_cmd, kedro_env, kedro_run, run_session

from kedro_mlflow_runs import TrackingUnavailableError

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

JSON_CATALOG = {
    name: {"type": "json.JSONDataset", "filepath": f"data/{name}.json"} for name in ("values", "result", "summary")
}


def _experiment_runs(client, name):
    exp = client.get_experiment_by_name(name)
    return client.search_runs([exp.experiment_id]) if exp else []


def test_transient_503s_and_dropped_connections_are_retried(project_factory, mlflow_server, monkeypatch):
    from mlflow import MlflowClient

    exp = f"flaky-{uuid.uuid4().hex[:8]}"
    with FlakyProxy(mlflow_server.url) as proxy:
        project = project_factory(
            mlflow_yml={"server": {"mlflow_tracking_uri": proxy.url, "http": {"max_retries": 5, "backoff_factor": 0}},
                        "tracking": {"experiment": {"name": exp}}},
        )
        run_session(project, runtime_params={"model": {"log_metric": True}})
        assert proxy.injected_503 >= 3 and proxy.dropped >= 1  # faults really happened

    client = MlflowClient(mlflow_server.url)
    (run,) = _experiment_runs(client, exp)  # retried requests did not create duplicate runs
    assert run.info.status == "FINISHED"
    assert run.data.params["model.C"] == "0.5"
    assert run.data.metrics == {"user_metric": 0.5}


def test_unreachable_server_fails_before_any_node_then_works_after_restart(project_factory, mlflow_server, tmp_path):
    from mlflow import MlflowClient

    exp = f"restart-{uuid.uuid4().hex[:8]}"
    url_with_password = mlflow_server.url.replace("http://", "http://ci:s3cret@")
    project = project_factory(
        catalog=JSON_CATALOG,
        mlflow_yml={"server": {"mlflow_tracking_uri": url_with_password, "http": {"max_retries": 2, "backoff_factor": 0}},
                    "tracking": {"experiment": {"name": exp}}},
    )
    marker = tmp_path / "started"
    mlflow_server.stop()
    try:
        with pytest.raises(TrackingUnavailableError) as err:
            run_session(project, runtime_params={"model": {"started_marker": str(marker)}})
    finally:
        mlflow_server.start()
    message = str(err.value)
    assert f"http://ci:***@127.0.0.1:{mlflow_server.port}" in message
    assert "s3cret" not in message
    assert not marker.exists() and not (project / "data" / "result.json").exists()  # no node ran

    run_session(project)
    (run,) = _experiment_runs(MlflowClient(mlflow_server.url), exp)
    assert run.info.status == "FINISHED"


def _start_sleeping_run(project, marker, sleep):
    return subprocess.Popen(
        kedro_cmd("run", "--params", f"model.sleep={sleep},model.started_marker={marker}"),
        cwd=project, env=kedro_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait_for(path, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "the node never started"
        time.sleep(0.1)


def test_server_back_within_the_retry_window_loses_nothing(project_factory, mlflow_server, tmp_path):
    from mlflow import MlflowClient

    exp = f"blip-{uuid.uuid4().hex[:8]}"
    project = project_factory(
        catalog=JSON_CATALOG,
        mlflow_yml={"server": {"mlflow_tracking_uri": mlflow_server.url, "http": {"max_retries": 8, "backoff_factor": 1}},
                    "tracking": {"experiment": {"name": exp}}},
    )
    marker = tmp_path / "started"
    proc = _start_sleeping_run(project, marker, sleep=2)
    try:
        _wait_for(marker, proc)
        mlflow_server.stop()  # dies while the node runs ...
        mlflow_server.start()  # ... and is back before the retries run out
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output[-3000:]
    (run,) = _experiment_runs(MlflowClient(mlflow_server.url), exp)
    assert run.info.status == "FINISHED"
    assert (project / "data" / "summary.json").exists()


def test_server_gone_for_good_keeps_local_outputs_and_names_the_failed_call(project_factory, mlflow_server, tmp_path):
    from mlflow import MlflowClient

    exp = f"gone-{uuid.uuid4().hex[:8]}"
    catalog = {**JSON_CATALOG, "result": {"type": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset",
                                          "dataset": {"type": "json.JSONDataset", "filepath": "data/result.json"}}}
    project = project_factory(
        catalog=catalog,
        mlflow_yml={"server": {"mlflow_tracking_uri": mlflow_server.url, "http": {"max_retries": 1, "backoff_factor": 0}},
                    "tracking": {"experiment": {"name": exp}}},
    )
    marker = tmp_path / "started"
    proc = _start_sleeping_run(project, marker, sleep=2)
    try:
        _wait_for(marker, proc)
        mlflow_server.stop()
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        mlflow_server.start()

    assert proc.returncode != 0
    flat = " ".join(output.split())
    # the error names the dataset, the call that failed, the server, and where the output is kept
    assert "MlflowArtifactDataset" in flat and "result" in flat
    assert f"127.0.0.1:{mlflow_server.port}" in flat
    assert "The local file is kept at" in flat
    for name in ("values", "result"):  # every output a node produced is on disk
        assert (project / "data" / f"{name}.json").exists(), name
    assert not (project / "data" / "summary.json").exists()  # the run stopped at the failed logging
    (run,) = _experiment_runs(MlflowClient(mlflow_server.url), exp)
    assert run.data.params["model.C"] == "0.5"  # what was logged before the server died is there


def test_server_gone_at_the_end_names_the_failed_call(project_factory, mlflow_server, tmp_path):
    exp = f"gone-end-{uuid.uuid4().hex[:8]}"
    project = project_factory(
        catalog=JSON_CATALOG,
        mlflow_yml={"server": {"mlflow_tracking_uri": mlflow_server.url, "http": {"max_retries": 1, "backoff_factor": 0}},
                    "tracking": {"experiment": {"name": exp}}},
    )
    marker = tmp_path / "started"
    proc = _start_sleeping_run(project, marker, sleep=2)
    try:
        _wait_for(marker, proc)
        mlflow_server.stop()
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        mlflow_server.start()
    assert proc.returncode != 0
    flat = " ".join(output.split())
    assert "TrackingUnavailableError" in flat and "Could not end run" in flat
    for name in ("values", "result", "summary"):  # every node output is on disk
        assert (project / "data" / f"{name}.json").exists(), name


def test_kedro_run_cli_against_unreachable_port_is_quick_and_clear(project_factory):
    from mlflow_server import free_port

    project = project_factory(
        mlflow_yml={"server": {"mlflow_tracking_uri": f"http://127.0.0.1:{free_port()}", "http": {"max_retries": 0}}},
    )
    result = kedro_run(project, env=kedro_env())
    assert result.returncode != 0
    flat = " ".join((result.stdout + result.stderr).split())
    assert "TrackingUnavailableError" in flat and "did not answer" in flat
