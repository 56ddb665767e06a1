"""One run, many steps: `kedro mlflow open-run`, attempts that retry and supersede failed or killed ones,
heartbeats that keep the sweeper away from a live step, a step whose run is ended under it, and
`close-run --status auto`. Every step is a real `kedro run` process attached with MLFLOW_RUN_ID to a
run in the project's sqlite store (the multi-machine variants are in test_machines_faults.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kedro_project import kedro_cmd, kedro_env, kedro_run, wait_until_started

pytestmark = pytest.mark.slow

NODES = '''
import os
import time
from pathlib import Path

from sklearn.linear_model import LinearRegression


def make_data(data):
    return [float(i) for i in range(int(data["n"]))]


def score(values):
    return float(sum(values))


def train(values, score, model):
    if model.get("started_marker"):
        Path(model["started_marker"]).write_text("started")
    if model.get("sleep"):
        time.sleep(float(model["sleep"]))
    while model.get("gate") and not Path(model["gate"]).exists():  # held until the test opens the gate
        time.sleep(0.1)
    if os.environ.get("FAIL_TRAIN"):  # a failure of the machine, not of the parameters: a retry repeats them
        raise ValueError("train failed on purpose: " + os.environ["FAIL_TRAIN"])
    return LinearRegression().fit([[v] for v in values], values)
'''

REGISTRY = '''
from kedro.pipeline import node, pipeline

from .nodes import make_data, score, train


def register_pipelines():
    return {"__default__": pipeline([
        node(make_data, "params:data", "values", name="make_data"),
        node(score, "values", "score", name="score"),
        node(train, ["values", "score", "params:model"], "model", name="train"),
    ])}
'''

#: a flavor whose log_model can be made to hang (SLOW_LOG_MARKER): a step killed during log_model
FLAVOR = '''
import os
import time
from pathlib import Path

import mlflow.sklearn

save_model = mlflow.sklearn.save_model
load_model = mlflow.sklearn.load_model


def log_model(sk_model, name, run_id=None, model_id=None, **kwargs):
    if os.environ.get("SLOW_LOG_MARKER"):
        Path(os.environ["SLOW_LOG_MARKER"]).write_text("logging")
        time.sleep(120)
    return mlflow.sklearn.log_model(sk_model, name=name, run_id=run_id, model_id=model_id, **kwargs)
'''

PARAMETERS = {"data": {"n": 4}, "model": {"sleep": 0, "started_marker": "", "gate": ""}}


@pytest.fixture
def steps_project(project_factory) -> Path:
    project = project_factory(nodes=NODES, registry=REGISTRY, parameters=PARAMETERS,
                              mlflow_yml={"tracking": {"experiment": {"name": "steps"}}})
    (project / "src" / project.name / "flavor.py").write_text(FLAVOR)
    catalog = {"score": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset"},
               "model": {"type": "kedro_mlflow_runs.io.models.MlflowModelLoggerDataset",
                         "flavor": f"{project.name}.flavor", "save_args": {"pip_requirements": ["scikit-learn"]}}}
    (project / "conf" / "base" / "catalog.yml").write_text(yaml.safe_dump(catalog))
    return project


def _mlflow(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(kedro_cmd("mlflow", *args), cwd=project, env=kedro_env(**env), capture_output=True,
                          text=True, timeout=180)


def _open(project: Path) -> str:
    opened = _mlflow(project, "open-run", "--run-name", "orchestrated")
    assert opened.returncode == 0, opened.stderr[-3000:]
    return opened.stdout.strip().splitlines()[-1]


def _step(project: Path, run_id: str, fail: str = "", **params: Any) -> subprocess.CompletedProcess[str]:
    args = ["--params", ",".join(f"model.{k}={v}" for k, v in params.items())] if params else []
    return kedro_run(project, *args, env=kedro_env(MLFLOW_RUN_ID=run_id, **({"FAIL_TRAIN": fail} if fail else {})))


def _attempts(client: Any, run_id: str) -> list[dict[str, Any]]:
    tags = client.get_run(run_id).data.tags
    found = [{"id": key.rpartition(".")[2], **json.loads(value)} for key, value in tags.items()
             if key.startswith("kedro.attempt.")]
    return sorted(found, key=lambda a: a["start"])


def _timeline(client: Any, run_id: str, tmp_path: Path) -> list[dict[str, Any]]:
    local = client.download_artifacts(run_id, "kedro/timeline.json", str(tmp_path / "timeline"))
    return json.loads(Path(local).read_text())


def _record(client: Any, run_id: str, attempt_id: str, tmp_path: Path) -> dict[str, Any]:
    local = client.download_artifacts(run_id, f"kedro/attempts/{attempt_id}.json", str(tmp_path))
    return json.loads(Path(local).read_text())


def test_open_run_prints_the_id_and_creates_the_experiment(steps_project, client_for):
    plain = _mlflow(steps_project, "open-run", "--experiment", "fresh-experiment", "--tag", "team=fraud")
    assert plain.returncode == 0, plain.stderr[-3000:]
    run_id = plain.stdout.strip().splitlines()[-1]
    assert len(run_id) == 32 and run_id.isalnum()
    assert run_id not in plain.stdout.strip().splitlines()[:-1]  # our one line is the last one
    as_json = _mlflow(steps_project, "open-run", "--json")
    assert as_json.returncode == 0, as_json.stderr[-3000:]
    other = json.loads(as_json.stdout.strip().splitlines()[-1])["run_id"]
    client = client_for(steps_project)
    run = client.get_run(run_id)
    assert run.info.status == "RUNNING"
    assert client.get_experiment(run.info.experiment_id).name == "fresh-experiment"
    assert run.data.tags["team"] == "fraud" and run.data.tags["kedro.opened_by"] == "kedro mlflow open-run"
    assert "kedro.pid" not in run.data.tags  # no process owns it: each step attaches, close-run ends it
    assert client.get_experiment(client.get_run(other).info.experiment_id).name == "steps"


def test_a_step_cannot_attach_to_a_run_that_has_ended(steps_project, client_for, tmp_path):
    run_id = _open(steps_project)
    closed = _mlflow(steps_project, "close-run", "--run-id", run_id, "--status", "FINISHED")
    assert closed.returncode == 0, closed.stderr[-3000:]
    marker = tmp_path / "started"
    step = _step(steps_project, run_id, started_marker=marker)
    assert step.returncode != 0
    assert f"MLflow run {run_id}" in step.stdout + step.stderr and "has ended" in step.stdout + step.stderr
    assert not marker.exists()  # stopped before its first node
    assert client_for(steps_project).get_run(run_id).info.status == "FINISHED"


def test_a_failed_step_retried_leaves_the_run_as_if_the_retry_were_the_only_attempt(
        steps_project, client_for, tmp_path):
    run_id = _open(steps_project)
    failed = _step(steps_project, run_id, fail="boom")
    assert failed.returncode != 0
    client = client_for(steps_project)
    (first,) = _attempts(client, run_id)
    assert first["state"] == "FAILED" and first["nodes"] == ["make_data", "score", "train"]
    tags = client.get_run(run_id).data.tags
    assert tags["kedro.error.node"] == "train" and tags["kedro.error.attempt"] == first["id"]
    retried = _step(steps_project, run_id)
    assert retried.returncode == 0, retried.stderr[-3000:]
    first, second = _attempts(client, run_id)
    assert second["state"] == "FINISHED" and first["superseded_by"] == second["id"]
    run = client.get_run(run_id)
    assert not [k for k in run.data.tags if k.startswith("kedro.error.")]  # the final outcome only
    assert run.info.status == "RUNNING"  # left to close-run
    record = _record(client, run_id, first["id"], tmp_path)
    assert record["outcome"] == "FAILED" and "boom" in record["error"]["kedro.error.message"]
    assert _record(client, run_id, second["id"], tmp_path)["retry_of"] == [first["id"]]
    assert [m.value for m in client.get_metric_history(run_id, "score")] == [6.0]  # not doubled by the retry
    closed = _mlflow(steps_project, "close-run", "--run-id", run_id, "--status", "auto")
    assert closed.returncode == 0, closed.stderr[-3000:]
    assert client.get_run(run_id).info.status == "FINISHED"


def test_close_run_auto_fails_a_run_whose_last_attempt_failed(steps_project, client_for):
    run_id = _open(steps_project)
    assert _step(steps_project, run_id, fail="boom").returncode != 0
    closed = _mlflow(steps_project, "close-run", "--run-id", run_id, "--status", "auto")
    assert closed.returncode == 0, closed.stderr[-3000:]
    assert client_for(steps_project).get_run(run_id).info.status == "FAILED"


def _killed_while_logging(project: Path, run_id: str, tmp_path: Path) -> None:
    """A step killed with kill -9 while log_model uploads (its LoggedModel stays PENDING)."""
    marker = tmp_path / "logging"
    proc = subprocess.Popen(kedro_cmd("run"), cwd=project, env=kedro_env(MLFLOW_RUN_ID=run_id,
                            SLOW_LOG_MARKER=str(marker)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        wait_until_started(marker, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_close_run_settles_a_killed_attempt_and_its_pending_model(steps_project, client_for, tmp_path):
    run_id = _open(steps_project)
    _killed_while_logging(steps_project, run_id, tmp_path)
    closed = _mlflow(steps_project, "close-run", "--run-id", run_id, "--status", "auto")
    assert closed.returncode == 0, closed.stderr[-3000:]
    assert "recorded as KILLED" in closed.stdout and "as FAILED" in closed.stdout
    client = client_for(steps_project)
    assert client.get_run(run_id).info.status == "FAILED"  # the last attempt of every node did not finish
    (killed,) = _attempts(client, run_id)
    assert killed["state"] == "KILLED"
    (entry,) = _timeline(client, run_id, tmp_path)  # the only attempt logged no part: it is still shown
    assert (entry["status"], entry["worker"]["attempt"], entry["end"]) == ("killed", killed["id"], killed["beat"])
    experiment = client.get_run(run_id).info.experiment_id
    (model,) = client.search_logged_models([experiment], filter_string=f"source_run_id = '{run_id}'")
    assert str(model.status).endswith("FAILED")


def test_the_sweeper_leaves_an_opened_run_no_step_attached_to_alone_for_older_than(steps_project, client_for):
    """`open-run` leaves no process behind: until a step attaches, only the run's age tells."""
    run_id = _open(steps_project)
    spared = _mlflow(steps_project, "close-run", "--stale", "--yes", "--older-than", "10m")
    assert spared.returncode == 0 and run_id in spared.stdout and "in progress" in spared.stdout, spared.stdout
    assert client_for(steps_project).get_run(run_id).info.status == "RUNNING"
    time.sleep(1.5)
    swept = _mlflow(steps_project, "close-run", "--stale", "--yes", "--older-than", "1s")
    assert swept.returncode == 0, swept.stderr[-3000:]
    assert client_for(steps_project).get_run(run_id).info.status == "KILLED"


def test_the_sweeper_and_close_run_leave_a_live_step_alone(steps_project, client_for, tmp_path):
    run_id = _open(steps_project)
    marker, gate = tmp_path / "started", tmp_path / "gate"
    proc = subprocess.Popen(kedro_cmd("run", "--params", f"model.gate={gate},model.started_marker={marker}"),
                            cwd=steps_project, env=kedro_env(MLFLOW_RUN_ID=run_id), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    closer = None
    try:
        wait_until_started(marker, proc)
        swept = _mlflow(steps_project, "close-run", "--stale", "--yes", "--older-than", "10m")
        assert swept.returncode == 0, swept.stderr[-3000:]
        assert run_id in swept.stdout and "in progress" in swept.stdout
        refused = _mlflow(steps_project, "close-run", "--run-id", run_id, "--wait", "0")
        said = refused.stdout + refused.stderr
        assert refused.returncode != 0 and "still being written into" in said
        # the attempt, its host and its last heartbeat are named
        assert re.search(rf"attempt\(s\) \S+ on {re.escape(socket.gethostname())} \(pid {proc.pid}, last heartbeat "
                         rf"\d+ s ago\)", " ".join(said.split())), said
        assert proc.poll() is None  # the step is still at work
        # the orchestrator's closer, started while the step runs: it waits for the step, then closes
        closer_err = tmp_path / "closer.err"
        with open(closer_err, "w") as err:
            closer = subprocess.Popen(kedro_cmd("mlflow", "close-run", "--run-id", run_id, "--status", "auto"),
                                      cwd=steps_project, env=kedro_env(), stdout=subprocess.DEVNULL, stderr=err,
                                      text=True)
        deadline = time.monotonic() + 120
        while "Waiting for attempt(s)" not in closer_err.read_text():
            assert closer.poll() is None, closer_err.read_text()[-3000:]
            assert time.monotonic() < deadline, "the closer did not wait for the step"
            time.sleep(0.2)
        assert proc.poll() is None  # the step was still at work while the closer waited
        gate.write_text("go")  # the step may end now
        output, _ = proc.communicate(timeout=180)
        closer.wait(timeout=240)
    finally:
        for running in (proc, closer):
            if running is not None and running.poll() is None:
                running.kill()
    assert proc.returncode == 0, output[-3000:]
    assert closer.returncode == 0, closer_err.read_text()[-3000:]
    client = client_for(steps_project)
    assert client.get_run(run_id).info.status == "FINISHED"
    (attempt,) = _attempts(client, run_id)
    assert attempt["state"] == "FINISHED"
    experiment = client.get_run(run_id).info.experiment_id
    (model,) = client.search_logged_models([experiment], filter_string=f"source_run_id = '{run_id}'")
    assert str(model.status).endswith("READY")  # logged by the step before the closer ended the run


def test_a_step_whose_run_is_ended_under_it_says_so_and_fails(steps_project, client_for, tmp_path):
    run_id = _open(steps_project)
    marker, gate = tmp_path / "started", tmp_path / "gate"
    # COLUMNS: rich wraps Kedro's log lines at the terminal width, 80 when unset
    proc = subprocess.Popen(kedro_cmd("run", "--params", f"model.gate={gate},model.started_marker={marker}"),
                            cwd=steps_project, env=kedro_env(MLFLOW_RUN_ID=run_id, KEDRO_MLFLOW_RUNS_HEARTBEAT_S="0.5",
                                                             COLUMNS="200"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_started(marker, proc)
        forced = _mlflow(steps_project, "close-run", "--run-id", run_id, "--status", "KILLED", "--force")
        assert forced.returncode == 0, forced.stderr[-3000:]
        assert proc.poll() is None  # ended under the step, mid-node
        time.sleep(1.5)  # three heartbeats: the step learns its run has ended
        gate.write_text("go")
        output, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert f"MLflow run '{run_id}' was ended (KILLED) by another process" in " ".join(output.split())
    client = client_for(steps_project)
    assert client.get_run(run_id).info.status == "KILLED"  # the step did not reopen or re-end it
    experiment = client.get_run(run_id).info.experiment_id
    assert client.search_logged_models([experiment], filter_string=f"source_run_id = '{run_id}'") == []


def test_a_run_the_plugin_opens_keeps_a_heartbeat(project, client_for):
    from conftest import all_runs

    ran = kedro_run(project, "--params", "model.sleep=2", env=kedro_env(KEDRO_MLFLOW_RUNS_HEARTBEAT_S="0.2"))
    assert ran.returncode == 0, ran.stderr[-3000:]
    (run,) = all_runs(client_for(project))
    beat = float(run.data.tags["kedro.heartbeat"])
    assert run.info.start_time / 1000 < beat <= run.info.end_time / 1000  # beaten while the run was in progress


def test_close_run_help_gives_the_documented_defaults():
    from click.testing import CliRunner

    from kedro_mlflow_runs.cli.close_run import close_run

    shown = " ".join(CliRunner().invoke(close_run, ["--help"]).output.split())
    assert "--wait TEXT How long to wait" in shown and "[default: 2m]" in shown  # docs/cli.md, docs/faults.md
    assert "[default: 15m]" in shown


def test_close_run_auto_fails_a_run_whose_expected_node_never_ran(steps_project, client_for):
    """A step that failed before it could attach (its container never started) leaves no attempt:
    --expect-pipeline names the pipeline whose every node must have been run."""
    run_id = _open(steps_project)
    ran = kedro_run(steps_project, "--nodes", "make_data,score", env=kedro_env(MLFLOW_RUN_ID=run_id))
    assert ran.returncode == 0, ran.stderr[-3000:]
    unknown = _mlflow(steps_project, "close-run", "--run-id", run_id, "--status", "auto", "--expect-pipeline", "nope")
    assert unknown.returncode != 0 and "no pipeline 'nope' (registered: __default__)" in unknown.stderr
    assert client_for(steps_project).get_run(run_id).info.status == "RUNNING"
    closed = _mlflow(steps_project, "close-run", "--run-id", run_id, "--status", "auto",
                     "--expect-pipeline", "__default__")
    assert closed.returncode == 0, closed.stderr[-3000:]
    assert "No attempt ran node(s) train of pipeline(s) __default__" in closed.stdout
    assert client_for(steps_project).get_run(run_id).info.status == "FAILED"
