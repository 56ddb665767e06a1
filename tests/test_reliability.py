"""Reliability, as a hostile new user finds it: parallel first runs on a fresh store, stores that do
not open, outputs bound to another run, parameters that collide, nested runs, bad metric steps,
odd mlflow.yml files, a ParallelRunner killed mid-node, runs left RUNNING by kill -9."""

from __future__ import annotations

import signal
import subprocess
import textwrap
import time

import numpy as np
import pytest
from conftest import all_runs, user_metrics
from io_support import new_run
from kedro.io.core import DatasetError
from kedro_project import kedro_cmd, kedro_env, kedro_run, run_session, signal_mid_node, wait_until_started

from kedro_mlflow_runs import ConfigError, ParameterError, RunConflictError, TrackingError, TrackingUnavailableError


@pytest.mark.slow
def test_three_first_runs_at_once_create_the_default_store_cleanly(project_factory, client_for):
    project = project_factory(template_db=None)
    assert not (project / "mlflow.db").exists()
    procs = [subprocess.Popen(kedro_cmd("run"), cwd=project, env=kedro_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
    later = kedro_run(project)
    assert later.returncode == 0, later.stderr[-3000:]
    runs = all_runs(client_for(project))
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 4


def test_a_store_that_cannot_open_is_our_error_naming_the_uri_and_the_key(project_factory):
    project = project_factory(mlflow_yml={"server": {"mlflow_tracking_uri": "nosuch://foo"}})
    with pytest.raises(TrackingError) as info:
        run_session(project)
    assert "nosuch://foo" in str(info.value) and "server.mlflow_tracking_uri" in str(info.value)
    assert info.value.key == "server.mlflow_tracking_uri"


@pytest.mark.postgres
def test_a_database_that_is_down_is_our_error_naming_the_uri_and_the_key(project_factory):
    """No MLflow retries to wait for: the database server's port is probed first (see test_storage_faults)."""
    uri = "postgresql://postgres:pw@127.0.0.1:9/mlflow"  # nothing listens on port 9
    project = project_factory(mlflow_yml={"server": {"mlflow_tracking_uri": uri}})
    with pytest.raises(TrackingUnavailableError) as info:
        run_session(project)
    message = str(info.value)
    assert "postgresql://postgres@127.0.0.1:9/mlflow" in message and "server.mlflow_tracking_uri" in message
    assert info.value.key == "server.mlflow_tracking_uri"
    assert "pw" not in message.replace("postgres", "")
    assert "sqlite" not in message


def test_an_output_bound_to_another_run_fails_before_any_node(project_factory, client_for, tmp_path):
    other_project = project_factory()
    other = new_run(client_for(other_project))
    catalog = {"summary": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricsDataset", "run_id": other},
               "values": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricHistoryDataset", "run_id": other}}
    project = project_factory(catalog=catalog)
    marker = tmp_path / "started"
    with pytest.raises(RunConflictError) as info:
        run_session(project, runtime_params={"model": {"started_marker": str(marker)}})
    assert not marker.exists()  # no node ran: nothing was thrown away
    assert info.value.run_id == other
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FAILED"
    assert run.data.tags["kedro.error.type"] == "kedro_mlflow_runs.errors.RunConflictError"
    assert "catalog entry 'summary'" in run.data.tags["kedro.error.message"]
    assert "MlflowMetricsDataset" in run.data.tags["kedro.error.dataset"]


def test_parameters_that_sanitise_to_one_key_are_an_error_naming_both(project_factory, client_for):
    project = project_factory(parameters={"data": {"n": 2}, "model": {"C": 1.0, "a!": 1, "a?": 2}, "seed": 1})
    with pytest.raises(ParameterError, match=r"'model\.a!' and 'model\.a\?' both become the MLflow parameter 'model\.a_'"):
        run_session(project)
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FAILED"


def test_an_empty_dict_parameter_is_logged_as_an_empty_dict(project_factory, client_for):
    project = project_factory(parameters={"data": {"n": 2}, "model": {"C": 1.0, "extra": {}}, "seed": 1})
    run_session(project)
    (run,) = all_runs(client_for(project))
    assert run.data.params["model.extra"] == "{}"


NESTED_NODES = '''
import mlflow


def make_data(data):
    return [1.0, 2.0]


def train(values, model):
    with mlflow.start_run(nested=True, run_name="trial") as child:
        mlflow.log_metric("trial_score", 0.9)
    return {"coef": child.info.run_id}


def report(result, parameters):
    return result
'''


@pytest.mark.parametrize("runner", ["SequentialRunner", "ThreadRunner", "ParallelRunner"])
def test_a_nested_run_started_by_node_code_is_a_child_in_the_same_experiment(project_factory, client_for, runner):
    import kedro.runner

    project = project_factory(nodes=NESTED_NODES)
    run_session(project, runner=getattr(kedro.runner, runner)())
    runs = all_runs(client_for(project))
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    (child,) = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.info.experiment_id == parent.info.experiment_id
    assert child.info.status == "FINISHED" and user_metrics(child.data.metrics) == {"trial_score": 0.9}


def test_a_top_level_run_started_by_node_code_is_mlflows_clear_error_and_no_stray_run(project_factory,
                                                                                       client_for):
    project = project_factory(nodes=NESTED_NODES.replace("nested=True, ", ""))
    with pytest.raises(Exception, match="is already active"):
        run_session(project)
    (run,) = all_runs(client_for(project))  # no second, stray run
    assert run.info.status == "FAILED" and "nested=True" in run.data.tags["kedro.error.message"]


def test_metric_steps_must_be_whole_and_numpy_histories_are_accepted(project, client_for):
    from io_support import active_run

    from kedro_mlflow_runs.io import MlflowMetricDataset, MlflowMetricHistoryDataset

    with pytest.raises(DatasetError, match=r"step 1\.7 of metric 'm' is not a whole number"):
        MlflowMetricDataset(key="m", step=1.7)
    with active_run(project) as ctx:
        with pytest.raises(DatasetError, match="not a whole number"):
            MlflowMetricDataset(key="m").save({"value": 1.0, "step": 1.7})
        MlflowMetricHistoryDataset(key="loss").save(np.array([0.5, 0.25, 0.125]))
        with pytest.raises(DatasetError, match="must be 1-D"):
            MlflowMetricHistoryDataset(key="bad").save(np.zeros((2, 2)))
        assert MlflowMetricHistoryDataset(key="loss").load() == [0.5, 0.25, 0.125]
    (run,) = all_runs(client_for(project))
    assert run.info.run_id == ctx.run_id and "m" not in run.data.metrics and "bad" not in run.data.metrics


def test_a_top_level_list_in_mlflow_yml_is_a_config_error(project_factory):
    project = project_factory(mlflow_yml="- a\n- b\n")
    with pytest.raises(ConfigError, match="mlflow.yml"):
        run_session(project)


def test_oc_env_in_mlflow_yml_says_how_to_enable_it_and_works_once_enabled(project_factory, client_for, monkeypatch):
    monkeypatch.setenv("KMR_TEST_EXPERIMENT", "from-env")
    yml = "tracking:\n  experiment:\n    name: ${oc.env:KMR_TEST_EXPERIMENT}\n"
    plain = project_factory(mlflow_yml=yml)
    with pytest.raises(ConfigError, match=r"custom_resolvers.*oc\.env"):
        run_session(plain)
    enabled = project_factory(mlflow_yml=yml, settings=textwrap.dedent("""
        from omegaconf.resolvers import oc
        CONFIG_LOADER_ARGS = {"custom_resolvers": {"oc.env": oc.env}}
    """))
    run_session(enabled)
    client = client_for(enabled)
    (run,) = all_runs(client)
    assert client.get_experiment(run.info.experiment_id).name == "from-env"


@pytest.mark.slow
def test_sigterm_to_a_parallel_run_stops_its_workers_and_nothing_is_written_after(project_factory, client_for,
                                                                                  tmp_path):
    catalog = {"result": {"type": "json.JSONDataset", "filepath": "data/result.json"}}
    project = project_factory(catalog=catalog)
    proc, output = signal_mid_node(project, tmp_path / "started", signal.SIGTERM, "--runner", "ParallelRunner", sleep=3)
    assert proc.returncode == -signal.SIGTERM, output[-3000:]
    time.sleep(6)  # the node (3 s) would have finished and saved by now, had its worker survived
    assert not (project / "data" / "result.json").exists()
    (run,) = all_runs(client_for(project))
    assert run.info.status == "KILLED"


@pytest.mark.slow
def test_close_run_stale_lists_and_ends_runs_left_running(project, client_for, tmp_path):
    marker = tmp_path / "started"
    proc = subprocess.Popen(kedro_cmd("run", "--params", f"model.sleep=60,model.started_marker={marker}"),
                            cwd=project, env=kedro_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_started(marker, proc)
        (live,) = all_runs(client_for(project))
        spared = subprocess.run(kedro_cmd("mlflow", "close-run", "--stale", "--yes"), cwd=project, env=kedro_env(),
                                capture_output=True, text=True, timeout=120)
        assert spared.returncode == 0, spared.stderr[-2000:]
        assert f"process {proc.pid} on this host is alive; left alone" in spared.stdout  # a live run is not stale
        assert client_for(project).get_run(live.info.run_id).info.status == "RUNNING"
        proc.kill()  # kill -9: nothing can end the run
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    (left,) = all_runs(client_for(project))
    assert left.info.status == "RUNNING"
    listing = subprocess.run(kedro_cmd("mlflow", "close-run", "--stale"), cwd=project, env=kedro_env(),
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert left.info.run_id in listing.stdout and left.data.tags["kedro.run_id"] in listing.stdout
    assert "its process is gone" in listing.stdout
    assert client_for(project).get_run(left.info.run_id).info.status == "RUNNING"  # listing ends nothing
    ended = subprocess.run(kedro_cmd("mlflow", "close-run", "--stale", "--yes"), cwd=project, env=kedro_env(),
                           capture_output=True, text=True, timeout=120)
    assert ended.returncode == 0, ended.stderr[-2000:]
    assert client_for(project).get_run(left.info.run_id).info.status == "KILLED"


SLOW_METRIC_NODES = '''
import time
from pathlib import Path


def make_data(data):
    return [1.0]


def train(values, model):
    Path(model["started_marker"]).write_text("started")
    time.sleep(float(model["sleep"]))
    return 0.5


def report(result, parameters):
    return {"coef": result}
'''


@pytest.mark.slow
def test_a_parallel_worker_that_outlives_a_killed_run_writes_nothing_into_it(project_factory, client_for, tmp_path):
    """SIGINT: Kedro waits for the running node; when it saves, the run has ended KILLED."""
    project = project_factory(nodes=SLOW_METRIC_NODES,
                              catalog={"result": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset"}})
    proc, output = signal_mid_node(project, tmp_path / "started", signal.SIGINT, "--runner", "ParallelRunner", sleep=4)
    assert proc.returncode != 0
    (run,) = all_runs(client_for(project))
    assert run.info.status == "KILLED", output[-3000:]
    assert "result" not in run.data.metrics


def test_ctrl_c_during_the_last_request_still_ends_the_run(project, client_for, mocker):
    """A KeyboardInterrupt inside set_terminated (the run's very last request) would leave it RUNNING:
    the registry ends it once more, then lets the interruption go on."""
    from mlflow import MlflowClient

    from kedro_mlflow_runs import RunContext, RunState, build_config

    ctx = RunContext(build_config({}, project_path=project), kedro_run_id="interrupted-end")
    ctx.start()
    real = MlflowClient.set_terminated
    calls = []

    def interrupted_once(self, run_id, status=None, end_time=None):
        calls.append(status)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(self, run_id, status, end_time)

    mocker.patch.object(MlflowClient, "set_terminated", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        ctx.end(RunState.FINISHED)
    assert calls == ["FINISHED", "FINISHED"]
    assert ctx.state is RunState.FINISHED
    assert client_for(project).get_run(ctx.run_id).info.status == "FINISHED"


def test_the_sweeper_reads_each_run_again_before_ending_it(project, client_for, mocker, monkeypatch):
    """A run of another machine, silent for longer than --older-than when the sweeper lists it, beats
    again (its process was only slow) before the sweeper ends it: the second read leaves it alone."""
    import time

    from click.testing import CliRunner

    from kedro_mlflow_runs.cli import commands
    from kedro_mlflow_runs.tracking import Tracker

    client = client_for(project)
    experiment = client.get_experiment_by_name(project.name) or client.get_experiment(
        client.create_experiment(project.name))
    quiet = client.create_run(experiment.experiment_id, start_time=int((time.time() - 600) * 1000),
                              tags={"kedro.run_id": "k-1", "kedro.host": "another-machine", "kedro.pid": "4242"})
    real = Tracker.running_kedro_runs

    def listed_then_beats(self, name):  # the injected moment: it beats right after being listed
        runs = real(self, name)
        client.set_tag(quiet.info.run_id, "kedro.heartbeat", f"{time.time():.3f}")
        return runs

    mocker.patch.object(Tracker, "running_kedro_runs", listed_then_beats)
    monkeypatch.chdir(project)
    swept = CliRunner().invoke(commands, ["mlflow", "close-run", "--stale", "--yes", "--older-than", "5m"],
                               catch_exceptions=False)
    assert swept.exit_code == 0, swept.output
    import re

    assert re.search(rf"{quiet.info.run_id} .*\(no sign of life for 6\d\d s\)", swept.output)  # listed as stale
    assert f"{quiet.info.run_id} came back to life (or ended) since it was listed: left alone." in swept.output
    assert "Ended 0 run(s)" in swept.output
    assert client.get_run(quiet.info.run_id).info.status == "RUNNING"
    client.set_terminated(quiet.info.run_id, "KILLED")
