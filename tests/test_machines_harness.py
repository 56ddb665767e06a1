"""The multi-machine harness (tests/machines.py): machines are isolated, steps are reaped, and a
pipeline split over three machines logs into one run on the `mlflow server`."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kedro_project import make_project
from machines import Cluster, Fleet, cluster, machines  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# --- the machines themselves -----------------------------------------------------------------

PROBE = r'''
import json, os, socket, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
others = sys.argv[1:]
print(json.dumps({
    "pid": os.getpid(), "child": child.pid, "hostname": socket.gethostname(), "env_host": os.environ["HOSTNAME"],
    "home": os.environ["HOME"], "tmpdir": os.environ["TMPDIR"], "cwd": os.getcwd(),
    "uri": os.environ["MLFLOW_TRACKING_URI"], "run_id": os.environ.get("MLFLOW_RUN_ID"),
    "others": {path: sorted(os.listdir(path)) for path in others},
}), flush=True)
open(os.path.join(os.environ["TMPDIR"], "probe.started"), "w").close()
time.sleep(300)
'''


@pytest.fixture(params=["namespaces", "plain"])
def fleet(request: pytest.FixtureRequest, cluster: Cluster, tmp_path: Path) -> Iterator[Fleet]:  # noqa: F811
    """Machines isolated with namespaces (when the host allows it) and as plain process groups."""
    if request.param == "plain":
        chosen = Cluster(tmp_path / "plain-cluster", cluster.server, namespaces=False)
    elif not cluster.isolation.namespaces:
        pytest.skip(f"no namespaces here: {cluster.isolation.reason}")
    else:
        chosen = cluster
    made = chosen.fleet(tmp_path / "machines")
    try:
        yield made
    finally:
        made.reap()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")


def test_a_machine_has_its_own_host_home_and_disk_and_kill_takes_its_whole_step(fleet, tmp_path):
    template = tmp_path / "image"
    (template / "data").mkdir(parents=True)
    (template / "data" / "baked.txt").write_text("in the image")
    a, b = fleet.machine("node-a", template), fleet.machine("node-b", template)

    step = a.exec([sys.executable, "-c", PROBE, str(b.root), str(fleet.cluster.server.workdir)], run_id="r1")
    step.wait_for(a.tmp / "probe.started", timeout=30)
    seen = json.loads(step.output.splitlines()[0])

    assert (seen["env_host"], seen["home"], seen["tmpdir"]) == ("node-a", str(a.home), str(a.tmp))
    assert (seen["cwd"], seen["uri"], seen["run_id"]) == (str(a.project), fleet.cluster.url, "r1")
    assert (a.project / "data" / "baked.txt").read_text() == "in the image"  # a copy of the image
    assert not (a.project / "data").samefile(b.project / "data")
    if fleet.cluster.isolation.namespaces:
        assert (seen["pid"], seen["hostname"]) == (1, "node-a")  # PID 1 of its own namespace, its own host
        assert seen["others"] == {str(b.root): [], str(fleet.cluster.server.workdir): []}  # hidden
    else:
        assert (seen["pid"], seen["hostname"]) == (step.pid, socket.gethostname())
        assert sorted(seen["others"][str(b.root)]) == ["cache", "home", "logs", "project", "tmp"]
    kedro_like, child = step.pid, seen["child"]
    assert step.running() and len(step.processes()) == 3  # the launcher, the command, its child

    step.kill()

    assert not step.running() and step.wait().returncode == -signal.SIGKILL
    assert step.processes() == [] and not _alive(kedro_like)  # the child went with it
    if not fleet.cluster.isolation.namespaces:
        assert not _alive(child)  # (isolated, `child` is a pid of the step's namespace: checked above)


def test_terminate_is_a_pod_stop_sigterm_then_sigkill(fleet, tmp_path):
    (tmp_path / "image").mkdir()
    machine = fleet.machine("node-a", tmp_path / "image")
    step = machine.exec([sys.executable, "-c", "import os, time; open(os.environ['TMPDIR'] + '/t.started', 'w')"
                                               ".close(); time.sleep(300)"])
    step.wait_for(machine.tmp / "t.started", timeout=30)

    result = step.terminate(grace=1)

    # As PID 1 of its namespace (a container without --init), a process that installed no SIGTERM
    # handler ignores SIGTERM: only the SIGKILL after the grace period ends it.
    expected = signal.SIGKILL if fleet.cluster.isolation.namespaces else signal.SIGTERM
    assert result.returncode == -expected
    assert result.duration_s < 30


def test_the_fleet_reaps_a_step_left_running(cluster, tmp_path):  # noqa: F811
    (tmp_path / "image").mkdir()
    fleet = cluster.fleet(tmp_path / "machines")
    machine = fleet.machine("node-a", tmp_path / "image")
    step = machine.exec([sys.executable, "-c", "import os, time; open(os.environ['TMPDIR'] + '/r.started', 'w')"
                                               ".close(); time.sleep(300)"])
    step.wait_for(machine.tmp / "r.started", timeout=30)
    pid = step.pid

    assert fleet.reap() == ["node-a"]
    assert not _alive(pid) and not step.running()
    assert fleet.reap() == []


# --- a pipeline over three machines, one MLflow run ------------------------------------------------

NODES = '''
import os
import socket
import time
from pathlib import Path

import mlflow


def _where(node):
    mlflow.set_tag(f"host.{node}", socket.gethostname())
    mlflow.set_tag(f"env_host.{node}", os.environ["HOSTNAME"])


def prep(data):
    _where("prep")
    Path("data/prep.txt").write_text("written on this machine only")
    return float(data["n"])


def score_a(n_rows, model):
    _where("score_a")
    if os.environ.get("STEP_MARKER"):  # the step's own settings, not parameters: a retry has the same parameters
        Path(os.environ["STEP_MARKER"]).write_text("started")
    time.sleep(float(os.environ.get("STEP_SLEEP", 0)))
    mlflow.log_metric("fluent_a", n_rows + 0.5)
    return n_rows * float(model["C"])


def score_b(n_rows, weights):
    _where("score_b")
    return {"b_sum": n_rows * weights["w"], "saw_prep_file": float(Path("data/prep.txt").exists())}
'''

REGISTRY = '''
from kedro.pipeline import node, pipeline
from .nodes import prep, score_a, score_b


def register_pipelines():
    return {"__default__": pipeline([
        node(prep, "params:data", "n_rows", name="prep"),
        node(score_a, ["n_rows", "params:model"], "score_a", name="score_a"),
        node(score_b, ["n_rows", "params:weights"], "scores_b", name="score_b"),
    ])}
'''

CATALOG = {
    # what crosses machines goes through the run: a metric one step saves, the next loads
    "n_rows": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset"},
    "score_a": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset"},
    "scores_b": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricsDataset"},
}

PARAMETERS = {"data": {"n": 4}, "model": {"C": 0.5}, "weights": {"w": 3}}


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project every machine copies, as a container image."""
    return make_project(tmp_path_factory.mktemp("image"), nodes=NODES, registry=REGISTRY, catalog=CATALOG,
                        parameters=PARAMETERS)


def test_a_pipeline_over_machines_one_killed_and_retried_logs_one_run(cluster, machines, image):  # noqa: F811
    """prep on a; score_a on b and score_b on c at once; b dies mid-node (kill -9 of the machine's step)
    and the orchestrator retries score_a on d; a closes the run."""
    a, b, c, d = (machines.machine(f"machine-{x}", image) for x in "abcd")
    run_id = cluster.new_run(tags={"orchestrator": "harness"})

    a.run("run", "--nodes", "prep", run_id=run_id).check()
    doomed = b.start("run", "--nodes", "score_a", run_id=run_id,
                     env={"STEP_SLEEP": "300", "STEP_MARKER": str(b.marker("score_a"))})
    other = c.start("run", "--nodes", "score_b", run_id=run_id)
    doomed.wait_for(b.marker("score_a"))
    doomed.kill()
    assert doomed.wait().returncode == -signal.SIGKILL and doomed.processes() == []
    other.wait().check()
    assert cluster.read(run_id).status == "RUNNING"  # attached steps leave the run to the orchestrator
    d.run("run", "--nodes", "score_a", run_id=run_id).check()  # the retry, on another machine
    a.run("mlflow", "close-run", "--status", "FINISHED", run_id=run_id).check()

    run = cluster.read(run_id)
    assert run.status == "FINISHED"
    assert run.params == {"data.n": "4", "model.C": "0.5", "weights.w": "3"}
    # n_rows went from machine a to the others through the run; data/prep.txt did not
    assert run.user_metrics == {"n_rows": 4.0, "score_a": 2.0, "fluent_a": 4.5, "b_sum": 12.0,
                                "saw_prep_file": 0.0}
    assert (a.project / "data" / "prep.txt").exists() and not (c.project / "data" / "prep.txt").exists()
    hosts = {"prep": "machine-a", "score_a": "machine-d", "score_b": "machine-c"}
    assert {k: v for k, v in run.user_tags.items() if k.startswith("env_host.")} == {
        f"env_host.{node}": host for node, host in hosts.items()}
    if cluster.isolation.namespaces:  # socket.gethostname() in the node
        assert {k: v for k, v in run.user_tags.items() if k.startswith("host.")} == {
            f"host.{node}": host for node, host in hosts.items()}
    assert run.tags["orchestrator"] == "harness"
    assert run.timeline is not None  # merged by close-run from the parts of every step
    assert sorted(e["node"] for e in run.timeline if e["status"] == "completed") == ["prep", "score_a", "score_b"]
    # no step opened a run of its own
    assert [r.info.run_id for r in cluster.client.search_runs([run.experiment_id])] == [run_id]


# --- a diamond: four steps on four machines, two of them at once ---------------------------------

DIAMOND_NODES = '''
import mlflow


def prep(data):
    return float(data["n"])


def left(n_rows, weights):
    return n_rows * weights["left"]


def right(n_rows, weights):
    return n_rows * weights["right"]


def join(left_score, right_score):
    mlflow.log_metric("joined_fluent", left_score + right_score)
    return {"total": left_score + right_score}
'''

DIAMOND_REGISTRY = '''
from kedro.pipeline import node, pipeline
from .nodes import join, left, prep, right


def register_pipelines():
    return {"__default__": pipeline([
        node(prep, "params:data", "n_rows", name="prep"),
        node(left, ["n_rows", "params:weights"], "left_score", name="left"),
        node(right, ["n_rows", "params:weights"], "right_score", name="right"),
        node(join, ["left_score", "right_score"], "totals", name="join"),
    ])}
'''

DIAMOND_CATALOG = {name: {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset"}
                   for name in ("n_rows", "left_score", "right_score")}
DIAMOND_CATALOG["totals"] = {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricsDataset"}


def test_a_diamond_of_four_steps_on_four_machines_is_one_run(cluster, machines, tmp_path):  # noqa: F811
    """prep on a; left on b and right on c at once; join on d; the orchestrator's closer on a."""
    image = make_project(tmp_path / "diamond", nodes=DIAMOND_NODES, registry=DIAMOND_REGISTRY,
                         catalog=DIAMOND_CATALOG, parameters={"data": {"n": 4}, "weights": {"left": 2, "right": 3}})
    a, b, c, d = (machines.machine(f"machine-{x}", image) for x in "abcd")
    opened = a.run("mlflow", "open-run", "--experiment", f"diamond-{os.getpid()}-{tmp_path.name}", "--json").check()
    run_id = json.loads(opened.output.strip().splitlines()[-1])["run_id"]
    a.run("run", "--nodes", "prep", run_id=run_id).check()
    both = [b.start("run", "--nodes", "left", run_id=run_id), c.start("run", "--nodes", "right", run_id=run_id)]
    for step in both:
        step.wait().check()
    d.run("run", "--nodes", "join", run_id=run_id).check()
    closed = a.run("mlflow", "close-run", "--run-id", run_id, "--status", "auto", run_id=run_id).check()
    assert "Merged the node timelines of 4 Kedro run(s)" in closed.output

    run = cluster.read(run_id)
    assert run.status == "FINISHED"
    assert run.user_metrics == {"n_rows": 4.0, "left_score": 8.0, "right_score": 12.0, "total": 20.0,
                                "joined_fluent": 20.0}
    assert run.params == {"data.n": "4", "weights.left": "2", "weights.right": "3"}
    attempts = [json.loads(v) for k, v in run.tags.items() if k.startswith("kedro.attempt.")]
    assert sorted((x["host"], x["state"], tuple(x["nodes"])) for x in attempts) == [
        ("machine-a", "FINISHED", ("prep",)), ("machine-b", "FINISHED", ("left",)),
        ("machine-c", "FINISHED", ("right",)), ("machine-d", "FINISHED", ("join",))]
    assert run.timeline is not None
    lanes = {e["node"]: e["worker"]["host"] for e in run.timeline if e["status"] == "completed"}
    assert lanes == {"prep": "machine-a", "left": "machine-b", "right": "machine-c", "join": "machine-d"}
    assert not [k for k in run.tags if k.startswith("kedro.error.")]
    assert [r.info.run_id for r in cluster.client.search_runs([run.experiment_id])] == [run_id]
