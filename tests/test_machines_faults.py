"""The faults of a fleet, on the multi-machine harness (tests/machines.py): a real `mlflow server` on
PostgreSQL with proxied artifacts, each step a `kedro run` on its own simulated machine (own project
copy, HOME, TMPDIR and hostname; its own PID namespace where the host allows it), no shared disk.

Rows of the fault matrix in docs/faults.md: a step killed during `log_model` and retried on another
machine, a step that fails and then succeeds elsewhere, the sweeper racing a live step, the server
restarted while a step runs and writes, and six concurrent 50-node runs on one server."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from flaky_proxy import FlakyProxy
from kedro_project import make_project
from machines import Cluster, Machine, StepResult, cluster, machines  # noqa: F401 - fixtures
from test_attempts import FLAVOR  # a flavor whose log_model can be made to hang (SLOW_LOG_MARKER)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: one second between heartbeats: an attempt killed without a word is known dead 5 s later
FAST_BEAT = {"KEDRO_MLFLOW_RUNS_HEARTBEAT_S": "1"}

NODES = '''
import os
import socket
import time
from pathlib import Path

import mlflow
from sklearn.linear_model import LinearRegression


def make_data(data):
    return [float(i) for i in range(int(data["n"]))]


def score(values):
    return float(sum(values))


def train(values, score):
    # the step's own settings, not parameters: a retry has the same parameters
    if os.environ.get("STEP_MARKER"):
        Path(os.environ["STEP_MARKER"]).write_text(socket.gethostname())
    gate = os.environ.get("STEP_GATE")
    while gate and not Path(gate).exists():
        time.sleep(0.1)
    time.sleep(float(os.environ.get("STEP_SLEEP", 0)))
    if os.environ.get("FAIL_TRAIN"):
        raise ValueError("train failed on purpose on " + os.environ["FAIL_TRAIN"])
    mlflow.log_metric("fluent_train", score)
    return LinearRegression().fit([[v] for v in values], values)
'''


REGISTRY = '''
from kedro.pipeline import node, pipeline

from .nodes import make_data, score, train


def register_pipelines():
    return {"__default__": pipeline([
        node(make_data, "params:data", "values", name="make_data"),
        node(score, "values", "score", name="score"),
        node(train, ["values", "score"], "model", name="train"),
    ])}
'''


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """The project every machine of a test copies, in an experiment of the test's own (so that the
    sweeper of one test never sees another's runs)."""
    experiment = f"fleet-{uuid.uuid4().hex[:8]}"
    project = make_project(tmp_path / "image", nodes=NODES, registry=REGISTRY, parameters={"data": {"n": 4}},
                           mlflow_yml={"tracking": {"experiment": {"name": experiment}}})
    (project / "src" / project.name / "flavor.py").write_text(FLAVOR)
    catalog = {"score": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset"},
               "model": {"type": "kedro_mlflow_runs.io.models.MlflowModelLoggerDataset",
                         "flavor": f"{project.name}.flavor", "save_args": {"pip_requirements": ["scikit-learn"]}}}
    (project / "conf" / "base" / "catalog.yml").write_text(yaml.safe_dump(catalog))
    return project


def _open(machine: Machine) -> str:
    """`kedro mlflow open-run --json` on ``machine``: the run id (the JSON is the last line of stdout)."""
    opened = machine.run("mlflow", "open-run", "--run-name", "fleet", "--json").check()
    return str(json.loads(opened.output.strip().splitlines()[-1])["run_id"])


def _attempts(record: Any) -> dict[str, dict[str, Any]]:
    """The run's attempts by host, from their tags (one attempt per host in these tests)."""
    found = [json.loads(v) | {"id": k.rpartition(".")[2]} for k, v in record.tags.items()
             if k.startswith("kedro.attempt.")]
    by_host = {a["host"]: a for a in found}
    assert len(by_host) == len(found), found
    return by_host


def _model_statuses(record: Any) -> list[str]:
    return sorted(str(m.status).rpartition(".")[2] for m in record.logged_models)


def _closed(machine: Machine, run_id: str, *args: str) -> StepResult:
    return machine.run("mlflow", "close-run", "--run-id", run_id, *args, run_id=run_id).check()


def test_a_step_killed_during_log_model_and_retried_on_another_machine(cluster, machines, image):  # noqa: F811
    """b is lost (kill -9 of its whole step) while its model uploads; the orchestrator retries on c."""
    a, b, c = (machines.machine(f"machine-{x}", image) for x in "abc")
    run_id = _open(a)
    lost = b.start("run", run_id=run_id, env={**FAST_BEAT, "SLOW_LOG_MARKER": str(b.marker("log_model"))})
    lost.wait_for(b.marker("log_model"))
    lost.kill()
    assert lost.wait().returncode == -signal.SIGKILL
    assert _model_statuses(cluster.read(run_id)) == ["PENDING"]  # b's LoggedModel, never finished
    c.run("run", run_id=run_id, env=FAST_BEAT).check()
    closed = _closed(a, run_id, "--status", "auto")

    run = cluster.read(run_id)
    assert run.status == "FINISHED", closed.output[-3000:]
    # b's model is FAILED (it never finished uploading), c's is the run's one READY model
    assert _model_statuses(run) == ["FAILED", "READY"]
    attempts = _attempts(run)
    assert attempts["machine-b"]["state"] == "KILLED"
    assert attempts["machine-b"]["superseded_by"] == attempts["machine-c"]["id"]
    assert attempts["machine-c"]["state"] == "FINISHED"
    # the plugin's metric dataset wrote its point once; a metric node code logs itself has a point per
    # attempt that ran the node (MLflow cannot withdraw b's)
    assert run.user_metrics == {"score": 6.0, "fluent_train": 6.0}
    histories = {key: [m.value for m in cluster.client.get_metric_history(run_id, key)]
                 for key in ("score", "fluent_train")}
    assert histories == {"score": [6.0], "fluent_train": [6.0, 6.0]}
    # the timeline: b's attempt on its own lane (start to last heartbeat), c's three nodes on c's
    assert run.timeline is not None
    (killed,) = [e for e in run.timeline if e["status"] == "killed"]
    assert killed["worker"]["host"] == "machine-b" and killed["worker"]["attempt"] == attempts["machine-b"]["id"]
    assert killed["nodes"] == ["make_data", "score", "train"]
    done = [e for e in run.timeline if e["status"] == "completed"]
    assert sorted(e["node"] for e in done) == ["make_data", "score", "train"]
    assert {e["worker"]["host"] for e in done} == {"machine-c"}
    # the record of b's attempt says KILLED, ending at its last heartbeat
    record = json.loads(cluster.download(run_id, f"kedro/attempts/{attempts['machine-b']['id']}.json").read_text())
    assert record["outcome"] == "KILLED" and record["host"] == "machine-b"


def test_a_step_that_fails_then_succeeds_on_another_machine_leaves_no_error(cluster, machines, image):  # noqa: F811
    a, b, c = (machines.machine(f"machine-{x}", image) for x in "abc")
    run_id = _open(a)
    failed = b.run("run", run_id=run_id, env={"FAIL_TRAIN": "machine-b"})
    assert failed.returncode != 0 and "train failed on purpose on machine-b" in failed.output
    tags = cluster.read(run_id).tags
    assert tags["kedro.error.node"] == "train" and cluster.read(run_id).status == "RUNNING"
    c.run("run", run_id=run_id, env={"POD_NAME": "nightly-train-c"}).check()  # Kubernetes' downward API
    _closed(a, run_id, "--status", "auto")

    run = cluster.read(run_id)
    assert run.status == "FINISHED"
    assert not [k for k in run.tags if k.startswith("kedro.error.")]  # the final outcome only
    attempts = _attempts(run)
    assert attempts["machine-b"]["state"] == "FAILED"
    assert attempts["machine-c"]["every"] == 30  # the default heartbeat interval, in seconds
    assert attempts["machine-b"]["superseded_by"] == attempts["machine-c"]["id"]
    # the superseded error lives on in b's attempt record
    record = json.loads(cluster.download(run_id, f"kedro/attempts/{attempts['machine-b']['id']}.json").read_text())
    assert record["outcome"] == "FAILED" and "train failed on purpose" in json.dumps(record)
    assert _model_statuses(run) == ["READY"]
    assert run.user_metrics == {"score": 6.0, "fluent_train": 6.0}
    retry = json.loads(cluster.download(run_id, f"kedro/attempts/{attempts['machine-c']['id']}.json").read_text())
    assert (retry["outcome"], retry["host"], retry["place"]) == ("FINISHED", "machine-c", "POD_NAME=nightly-train-c")


def test_the_sweeper_never_ends_a_run_a_step_on_another_machine_writes_into(cluster, machines, image):  # noqa: F811
    """The sweeper runs on a (as a cron job would) while b's step is mid-node; later c's step is lost
    and the sweeper, once c's heartbeat has stopped for three intervals, ends the run."""
    a, b, c = (machines.machine(f"machine-{x}", image) for x in "abc")
    run_id = _open(a)
    gate = b.tmp / "go"
    live = b.start("run", run_id=run_id, env={**FAST_BEAT, "STEP_MARKER": str(b.marker("train")),
                                             "STEP_GATE": str(gate)})
    live.wait_for(b.marker("train"))
    time.sleep(2.5)  # the run itself shows no sign of life for longer than --older-than
    swept = a.run("mlflow", "close-run", "--stale", "--yes", "--older-than", "1s").check()
    assert run_id in swept.output and "in progress" in swept.output
    assert cluster.read(run_id).status == "RUNNING"
    gate.write_text("go")
    live.wait().check()  # b logged everything into a run still RUNNING
    run = cluster.read(run_id)
    assert run.status == "RUNNING" and _model_statuses(run) == ["READY"]

    # c beats every 5 s: dead 17 s after its last heartbeat, longer than a sweep takes to start
    lost = c.start("run", run_id=run_id,
                   env={"KEDRO_MLFLOW_RUNS_HEARTBEAT_S": "5", "STEP_MARKER": str(c.marker("train")), "STEP_SLEEP": "300"})
    lost.wait_for(c.marker("train"))
    lost.kill()
    right_after = a.run("mlflow", "close-run", "--stale", "--yes", "--older-than", "1s").check()
    assert "in progress" in right_after.output  # c beat less than three intervals ago: maybe alive
    assert cluster.read(run_id).status == "RUNNING"
    # c's last heartbeat, as its tag says: three intervals (and 2 s) later it is dead
    (c_tag,) = [json.loads(v) for k, v in cluster.read(run_id).tags.items()
                if k.startswith("kedro.attempt.") and json.loads(v)["host"] == "machine-c"]
    time.sleep(max(0.0, c_tag["beat"] + 3 * c_tag["every"] + 2 - time.time()) + 1)
    swept = a.run("mlflow", "close-run", "--stale", "--yes", "--older-than", "1s").check()
    assert "Ended 1 run(s) as KILLED" in swept.output, swept.output[-3000:]
    run = cluster.read(run_id)
    assert run.status == "KILLED"
    attempts = _attempts(run)
    assert attempts["machine-b"]["state"] == "FINISHED" and attempts["machine-c"]["state"] == "KILLED"


def test_the_sweeper_never_ends_a_run_that_kedro_run_on_another_machine_opened_and_beats_into(
        cluster, machines, image):  # noqa: F811
    """A plain `kedro run` on b opened its run (no attempt, b's process cannot be probed from a); a sweeper
    on a with `--older-than` shorter than b's heartbeat interval must still leave it alone: the
    heartbeat, not `--older-than`, tells whether a process on another machine is alive."""
    a, b = (machines.machine(f"machine-{x}", image) for x in "ab")
    gate = b.tmp / "go"
    step = b.start("run", env={"KEDRO_MLFLOW_RUNS_HEARTBEAT_S": "30", "STEP_MARKER": str(b.marker("train")),
                               "STEP_GATE": str(gate)})
    step.wait_for(b.marker("train"))
    client = cluster.client
    experiments = [e.experiment_id for e in client.search_experiments()]
    (run,) = client.search_runs(experiments, "tags.`kedro.host` = 'machine-b' and attributes.status = 'RUNNING'")
    assert run.data.tags["kedro.heartbeat_every_s"] == "30"
    time.sleep(1.5)  # its last beat (with its start) is older than --older-than; far less than three intervals
    swept = a.run("mlflow", "close-run", "--stale", "--yes", "--older-than", "1s").check()
    assert run.info.run_id in swept.output and "in progress" in swept.output, swept.output[-3000:]
    assert cluster.read(run.info.run_id).status == "RUNNING"
    gate.write_text("go")
    step.wait().check()
    assert cluster.read(run.info.run_id).status == "FINISHED"  # b ended its own run


@pytest.fixture
def own_cluster(tmp_path: Path) -> Any:
    """A cluster with a server of its own (on a fresh PostgreSQL database) that a test may restart."""
    made = Cluster(tmp_path / "own-cluster")
    try:
        yield made
    finally:
        made.close()


def test_a_server_restart_while_a_step_runs_and_writes_loses_nothing(own_cluster, image, tmp_path):
    """The server goes down while b is mid-node; b's node ends during the outage (its metric, model and
    the end of the attempt wait for the server, retrying) and the server comes back on the same port."""
    fleet = own_cluster.fleet(tmp_path / "machines")
    try:
        a, b = (fleet.machine(f"machine-{x}", image) for x in "ab")
        run_id = _open(a)
        gate = b.tmp / "go"
        # MLflow's own retry setting: 8 retries back off for about 4 minutes in all
        env = {**FAST_BEAT, "STEP_MARKER": str(b.marker("train")), "STEP_GATE": str(gate),
               "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "8"}
        step = b.start("run", run_id=run_id, env=env)
        step.wait_for(b.marker("train"))
        own_cluster.server.stop()
        gate.write_text("go")  # the node ends, and writes, while the server is down
        time.sleep(3)
        assert step.running()  # waiting for the server, not failed
        own_cluster.server.start()
        step.wait().check()
        _closed(a, run_id, "--status", "auto")
    finally:
        fleet.reap()

    run = own_cluster.read(run_id)
    assert run.status == "FINISHED"
    assert run.user_metrics == {"score": 6.0, "fluent_train": 6.0}
    assert _model_statuses(run) == ["READY"]
    assert run.params == {"data.n": "4"}
    assert _attempts(run)["machine-b"]["state"] == "FINISHED"
    assert sorted(e["node"] for e in run.timeline or [] if e["status"] == "completed") == [
        "make_data", "score", "train"]


WIDE_NODES = '''
def step(value, scale):
    return value * scale["k"] + 1
'''

WIDE_REGISTRY = '''
from kedro.pipeline import node, pipeline

from .nodes import step


def register_pipelines():
    nodes = [node(step, ["params:start", "params:scale"], "v0", name="n0")]
    nodes += [node(step, [f"v{i - 1}", "params:scale"], f"v{i}", name=f"n{i}") for i in range(1, 50)]
    return {"__default__": pipeline(nodes)}
'''


def test_six_concurrent_fifty_node_runs_cost_at_most_25_requests_each(cluster, machines, tmp_path):  # noqa: F811
    """Six machines each run a 50-node pipeline at once, each in a run of its own, through a proxy
    that counts every request the server receives."""
    experiment = f"wide-{uuid.uuid4().hex[:8]}"
    image = make_project(tmp_path / "wide", nodes=WIDE_NODES, registry=WIDE_REGISTRY,
                         parameters={"start": 1, "scale": {"k": 1}},
                         mlflow_yml={"tracking": {"experiment": {"name": experiment}}})
    fleet = [machines.machine(f"worker-{i}", image) for i in range(6)]
    with FlakyProxy(cluster.url, fail_every=0, drop_every=0) as proxy:
        steps = [m.start("run", env={"MLFLOW_TRACKING_URI": proxy.url}) for m in fleet]
        for step in steps:
            step.wait().check()
        requests = list(proxy.seen)
    assert proxy.injected_503 == proxy.dropped == 0
    found = cluster.client.get_experiment_by_name(experiment)
    runs = cluster.client.search_runs([found.experiment_id])
    assert len(runs) == 6 and {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        durations = [k for k in run.data.metrics if k.startswith("kedro.node_duration_s.")]
        assert len(durations) == 50, sorted(run.data.metrics)
        assert run.data.params == {"start": "1", "scale.k": "1"}
    per_run = len(requests) / 6
    assert per_run <= 25, (per_run, sorted(requests))
