"""A real `mlflow server` that errors, disappears and comes back: retries, clear errors, nothing lost."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from conftest import user_metrics
from flaky_proxy import FlakyProxy
from kedro_project import kedro_cmd, kedro_env, kedro_run, run_session, wait_until_started

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
    assert user_metrics(run.data.metrics) == {"user_metric": 0.5}


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
    assert f"http://127.0.0.1:{mlflow_server.port}" in message  # user and password went to MLFLOW_TRACKING_*
    assert "s3cret" not in message
    assert not marker.exists() and not (project / "data" / "result.json").exists()  # no node ran

    run_session(project)
    (run,) = _experiment_runs(MlflowClient(mlflow_server.url), exp)
    assert run.info.status == "FINISHED"


def _server_dies_during_a_node(project_factory, server, tmp_path, *, catalog, retries, backoff, back_at_once):
    """`kedro run` in a subprocess; the server stops while the `train` node sleeps.

    With ``back_at_once`` the server is restarted right away (within the retry window); else only
    after the run has ended. Returns (project, experiment name, return code, flattened output).
    """
    exp = f"dies-{uuid.uuid4().hex[:8]}"
    project = project_factory(
        catalog=catalog,
        mlflow_yml={"server": {"mlflow_tracking_uri": server.url, "http": {"max_retries": retries, "backoff_factor": backoff}},
                    "tracking": {"experiment": {"name": exp}}},
    )
    marker = tmp_path / "started"
    proc = subprocess.Popen(
        kedro_cmd("run", "--params", f"model.sleep=2,model.started_marker={marker}"),
        cwd=project, env=kedro_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_until_started(marker, proc)
        server.stop()
        if back_at_once:
            server.start()
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        if not back_at_once:
            server.start()
    return project, exp, proc.returncode, " ".join(output.split())


def test_server_back_within_the_retry_window_loses_nothing(project_factory, mlflow_server, tmp_path):
    from mlflow import MlflowClient

    project, exp, code, output = _server_dies_during_a_node(
        project_factory, mlflow_server, tmp_path, catalog=JSON_CATALOG, retries=8, backoff=1, back_at_once=True)

    assert code == 0, output[-3000:]
    (run,) = _experiment_runs(MlflowClient(mlflow_server.url), exp)
    assert run.info.status == "FINISHED"
    assert (project / "data" / "summary.json").exists()


def test_server_gone_for_good_keeps_local_outputs_and_names_the_failed_call(project_factory, mlflow_server, tmp_path):
    from mlflow import MlflowClient

    catalog = {**JSON_CATALOG, "result": {"type": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset",
                                          "dataset": {"type": "json.JSONDataset", "filepath": "data/result.json"}}}
    project, exp, code, output = _server_dies_during_a_node(
        project_factory, mlflow_server, tmp_path, catalog=catalog, retries=1, backoff=0, back_at_once=False)

    assert code != 0
    # the error names the dataset, the call that failed, the server, and where the output is kept
    assert "MlflowArtifactDataset" in output and "result" in output
    assert f"127.0.0.1:{mlflow_server.port}" in output
    assert "The local file is kept at" in output
    for name in ("values", "result"):  # every output a node produced is on disk
        assert (project / "data" / f"{name}.json").exists(), name
    assert not (project / "data" / "summary.json").exists()  # the run stopped at the failed logging
    (run,) = _experiment_runs(MlflowClient(mlflow_server.url), exp)
    assert run.data.params["model.C"] == "0.5"  # what was logged before the server died is there


def test_server_gone_at_the_end_names_the_failed_call(project_factory, mlflow_server, tmp_path):
    project, _, code, output = _server_dies_during_a_node(
        project_factory, mlflow_server, tmp_path, catalog=JSON_CATALOG, retries=1, backoff=0, back_at_once=False)

    assert code != 0
    assert "TrackingUnavailableError" in output and "Could not end run" in output
    assert "is left RUNNING" in output and "kedro mlflow close-run --run-id" in output  # and how to end it
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
