"""docs/deployment.md, run as written: each recipe's commands on the multi-machine harness (tests/machines.py).

The workflow, CronJob, job and template are read from the page's marked blocks
(``<!-- deployment: NAME -->``) and played the way their orchestrator would: :class:`Argo` runs an Argo
Workflow's DAG (dependencies, parallel tasks, ``retryStrategy.limit``, output and global parameters,
the ``onExit`` handler), :class:`DatabricksJob` a Databricks job (``depends_on``, ``run_if``,
``max_retries``, task values, the notebook with a stand-in ``dbutils``), and Airflow itself runs the
DAG kedro-airflow generates from the page's template (``airflow dags test``; the test extra installs
both). Each try of a task is a process on a harness machine: its
own project copy, HOME, TMPDIR, host name, talking to a real ``mlflow server`` (PostgreSQL, proxied
artifacts). The S3 variant stores the server's artifacts in moto's S3 server.

What the tests change in the page's text, and why: ``/tmp/`` of an Argo container is the machine's
own temporary folder; waits (``--older-than 1h``, ``retry_delay_s=60``) are shortened to seconds.
Faults are injected per try through the environment (``FAIL_NODE``: the node raises;
``KEDRO_ENV`` naming a missing environment: the step fails before it attaches to the run).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from kedro_project import make_project
from machines import Cluster, Machine, RunRecord, StepResult, cluster, machines  # noqa: F401 - fixtures
from mlflow_server import MlflowServer, TempDatabase, free_port

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DOC = Path(__file__).resolve().parents[1] / "docs" / "deployment.md"
_BLOCK = re.compile(r"^<!-- (?P<kind>deployment|runnable): (?P<name>[\w. -]+) -->\n```(?P<lang>\w+)\n(?P<body>.*?)^```",
                    re.S | re.M)
#: the machines find `kedro`, `airflow` and `moto_server` where this interpreter's scripts are
_PATH = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', os.defpath)}"}


def doc_block(name: str, kind: str = "deployment") -> str:
    """The body of the page's one block marked ``<!-- KIND: NAME -->``."""
    found = [m["body"] for m in _BLOCK.finditer(DOC.read_text()) if (m["kind"], m["name"]) == (kind, name)]
    assert len(found) == 1, f"docs/deployment.md has {len(found)} blocks marked '{kind}: {name}'"
    return found[0]


# --------------------------------------------------------------------------------------------
# the project the recipes run: the page's catalog and mlflow.yml
# --------------------------------------------------------------------------------------------

NODES = '''
import os
import time
from pathlib import Path


def _faults(node):
    """What the test injects into one try of a step (the same parameters, another machine)."""
    if os.environ.get("FAIL_NODE") == node:
        raise RuntimeError(f"{node} failed on purpose on {os.environ.get('HOSTNAME')}")
    if os.environ.get("FAIL_NODE_ONCE") == node:
        marker = Path(os.environ["TMPDIR"]) / f"{node}.failed-once"
        if not marker.exists():
            marker.write_text("failed")
            raise RuntimeError(f"{node} failed on purpose, once")
    if os.environ.get("STEP_MARKER_NODE") == node:
        Path(os.environ["STEP_MARKER"]).write_text("started")
        time.sleep(float(os.environ.get("STEP_SLEEP", "0")))


def prepare(data):
    _faults("prepare")
    return float(data["n"])


def train(n_rows, model):
    import mlflow

    mlflow.log_metric("train_tries", 1.0)  # node code logging into the run itself: each try logs again
    _faults("train")
    return n_rows * float(model["C"])


def evaluate(n_rows):
    _faults("evaluate")
    return n_rows / 10
'''

REGISTRY = '''
import os

from kedro.pipeline import node, pipeline

from .nodes import evaluate, prepare, train


def register_pipelines():
    if os.environ.get("BROKEN_PIPELINES"):  # the project does not load: a step fails before it attaches
        raise RuntimeError("the pipelines could not be loaded")
    return {"__default__": pipeline([
        node(prepare, "params:data", "n_rows", name="prepare"),
        node(train, ["n_rows", "params:model"], "score", name="train"),
        node(evaluate, "n_rows", "quality", name="evaluate"),
    ])}
'''

PARAMETERS = {"data": {"n": 8}, "model": {"C": 0.5}}
#: what the three nodes log when all of them ran, wherever they ran
METRICS = {"n_rows": 8.0, "score": 4.0, "quality": 0.8, "train_tries": 1.0}


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """The project every machine copies (a container image): the page's catalog and mlflow.yml. Each
    test has its own, so its own experiment (named after the package): the sweeper sees no other test's runs."""
    return make_project(tmp_path / "image", nodes=NODES, registry=REGISTRY, parameters=PARAMETERS,
                        catalog=yaml.safe_load(doc_block("catalog")), mlflow_yml=doc_block("mlflow.yml", "runnable"))


def _attempts(record: RunRecord) -> list[dict[str, Any]]:
    """The run's attempts (its ``kedro.attempt.<id>`` tags), oldest first."""
    found = [{"id": key.rpartition(".")[2], **json.loads(value)} for key, value in record.tags.items()
             if key.startswith("kedro.attempt.")]
    return sorted(found, key=lambda a: a["start"])


def _by_nodes(record: RunRecord) -> dict[str, list[str]]:
    """``{"prepare": ["FINISHED"], "train": ["FAILED", "FINISHED"], ...}``: each step's attempts' states."""
    found: dict[str, list[str]] = {}
    for attempt in _attempts(record):
        found.setdefault(",".join(attempt["nodes"]), []).append(attempt["state"])
    return found


def _no_other_run(cluster: Cluster, record: RunRecord) -> None:  # noqa: F811
    assert [r.info.run_id for r in cluster.client.search_runs([record.experiment_id])] == [record.run_id]


# --------------------------------------------------------------------------------------------
# Argo Workflows
# --------------------------------------------------------------------------------------------

_EXPRESSION = re.compile(r"\{\{\s*([^}\s]+)\s*\}\}")


def _render(text: str, scope: Mapping[str, str]) -> str:
    """``{{name}}`` replaced from ``scope``; one that is not there fails, as it fails the workflow."""

    def value(match: re.Match[str]) -> str:
        assert match[1] in scope, f"{{{{{match[1]}}}}} is not resolvable here (known: {sorted(scope)})"
        return scope[match[1]]

    return _EXPRESSION.sub(value, text)


class Argo:
    """An Argo Workflow's DAG played as Argo plays it: a task starts once its dependencies succeeded
    (tasks ready together run at the same time), is tried ``1 + retryStrategy.limit`` times, and its
    output parameters (``valueFrom.path``, ``globalName``) feed later tasks and the exit handler.

    ``place(task, try)``: the machine of each try; ``faults[(task, try)]``: extra environment of a try.
    ``tries``: ``(task, machine, exit code)`` of every try, in the order they ended.
    """

    def __init__(self, workflow: Mapping[str, Any], place: Callable[[str, int], Machine],
                 faults: Mapping[tuple[str, int], Mapping[str, str]] | None = None, name: str = "churn-x7k2p") -> None:
        self.spec = workflow["spec"]
        self.templates = {t["name"]: t for t in self.spec["templates"]}
        self.place = place
        self.faults = dict(faults or {})
        self.name = name
        self.values: dict[str, str] = {"workflow.name": name}
        self.tries: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    @property
    def run_id(self) -> str:
        return self.values["workflow.outputs.parameters.mlflow_run_id"]

    def run(self) -> str:
        """The entrypoint's DAG to its end: ``Succeeded`` or ``Failed``."""
        tasks = self.templates[self.spec["entrypoint"]]["dag"]["tasks"]
        done: dict[str, bool] = {}
        while ready := [t for t in tasks if t["name"] not in done
                        and all(done.get(d) for d in t.get("dependencies", []))]:
            with ThreadPoolExecutor(len(ready)) as pool:
                done.update(zip([t["name"] for t in ready], pool.map(self._task, ready), strict=True))
        status = "Succeeded" if len(done) == len(tasks) and all(done.values()) else "Failed"
        self.values["workflow.status"] = status
        return status

    def exit_handler(self, machine: Machine) -> StepResult:
        """The ``onExit`` template, once, on ``machine``."""
        result, _ = self._try(self.templates[self.spec["onExit"]], {}, machine, {}, "onExit")
        return result

    def _task(self, task: Mapping[str, Any]) -> bool:
        with self._lock:
            scope = dict(self.values)
        params = {p["name"]: _render(str(p["value"]), scope) for p in task.get("arguments", {}).get("parameters", [])}
        template = self.templates[task["template"]]
        limit = int(template.get("retryStrategy", {}).get("limit", 0))
        for number in range(1, limit + 2):
            result, outputs = self._try(template, params, self.place(task["name"], number),
                                        self.faults.get((task["name"], number), {}), task["name"])
            if result.ok:
                with self._lock:
                    for param in template.get("outputs", {}).get("parameters", []):
                        self.values[f"tasks.{task['name']}.outputs.parameters.{param['name']}"] = outputs[param["name"]]
                        if "globalName" in param:
                            self.values[f"workflow.outputs.parameters.{param['globalName']}"] = outputs[param["name"]]
                return True
        return False

    def _try(self, template: Mapping[str, Any], params: Mapping[str, str], machine: Machine,
             fault: Mapping[str, str], label: str) -> tuple[StepResult, dict[str, str]]:
        with self._lock:
            scope = {**self.values, **{f"inputs.parameters.{k}": v for k, v in params.items()}}

        def here(text: str) -> str:  # the container's /tmp is the machine's own temporary folder
            return _render(text.replace("/tmp/", f"{machine.tmp}/"), scope)

        if "script" in template:
            spec = template["script"]
            source = machine.tmp / f"{label}-{len(self.tries)}.sh"
            source.write_text(here(spec["source"]))
            argv = [*spec["command"], str(source)]
        else:
            spec = template["container"]
            argv = [here(str(a)) for a in [*spec.get("command", []), *spec.get("args", [])]]
        env = {e["name"]: here(str(e["value"])) for e in spec.get("env", [])}
        result = machine.exec(argv, env={**env, **_PATH, **fault}).wait()
        outputs = {}
        for param in template.get("outputs", {}).get("parameters", []):
            path = Path(here(param["valueFrom"]["path"]))
            outputs[param["name"]] = path.read_text().strip() if result.ok else ""
        with self._lock:
            self.tries.append((label, machine.name, result.returncode))
        return result, outputs


@pytest.fixture
def workflow() -> dict[str, Any]:
    return dict(yaml.safe_load(doc_block("argo-workflow")))


def test_argo_workflow_with_a_step_retried_on_another_machine_ends_finished(cluster, machines, image,  # noqa: F811
                                                                            workflow):
    """open-run on a; prepare on b; train fails on c and Argo retries it on d, while evaluate runs on b;
    the exit handler on a closes the run FINISHED. Data crosses machines through the run only."""
    a, b, c, d = (machines.machine(f"pod-{x}", image) for x in "abcd")
    where = {("open-run", 1): a, ("prepare", 1): b, ("train", 1): c, ("train", 2): d, ("evaluate", 1): b}
    argo = Argo(workflow, lambda task, n: where[(task, n)], faults={("train", 1): {"FAIL_NODE": "train"}})

    assert argo.run() == "Succeeded"
    assert cluster.read(argo.run_id).status == "RUNNING"  # the steps leave the run to the exit handler
    argo.exit_handler(a).check()

    run = cluster.read(argo.run_id)
    assert run.status == "FINISHED"
    assert sorted(argo.tries) == sorted([("open-run", "pod-a", 0), ("prepare", "pod-b", 0), ("train", "pod-c", 1),
                                         ("train", "pod-d", 0), ("evaluate", "pod-b", 0), ("onExit", "pod-a", 0)])
    assert run.tags["mlflow.runName"] == argo.name and run.tags["argo.workflow"] == argo.name
    assert run.user_metrics == METRICS  # n_rows went from pod-b to pod-c, pod-d and back to pod-b via the run
    assert _by_nodes(run) == {"prepare": ["FINISHED"], "train": ["FAILED", "FINISHED"], "evaluate": ["FINISHED"]}
    assert len(cluster.client.get_metric_history(run.run_id, "train_tries")) == 2  # what node code logs is not undone
    failed, retry = (x for x in _attempts(run) if x["nodes"] == ["train"])
    assert failed["superseded_by"] == retry["id"]
    assert not [key for key in run.tags if key.startswith("kedro.error.")]  # the retry's outcome only
    if cluster.isolation.namespaces:
        assert (failed["host"], retry["host"]) == ("pod-c", "pod-d")
    assert sorted(e["node"] for e in run.timeline or [] if e["status"] == "completed") == [
        "evaluate", "prepare", "train"]
    _no_other_run(cluster, run)


def test_argo_workflow_whose_step_fails_before_attaching_ends_failed(cluster, machines, image, workflow):  # noqa: F811
    """Every try of evaluate fails before it attaches (its Kedro environment is missing): the run's
    attempts all finished, so `--status auto` alone would say FINISHED; the exit handler reads
    the workflow's status and ends the run FAILED."""
    from kedro_mlflow_runs.core.attempts import attempt_states
    from kedro_mlflow_runs.core.liveness import auto_status

    a, b, c = (machines.machine(f"pod-{x}", image) for x in "abc")
    where = {"open-run": a, "prepare": b, "train": b, "evaluate": c}
    broken = {"KEDRO_ENV": "does-not-exist"}
    argo = Argo(workflow, lambda task, n: where[task], faults={("evaluate", n): broken for n in (1, 2, 3)})

    assert argo.run() == "Failed"
    assert [t for t in argo.tries if t[0] == "evaluate"] == [("evaluate", "pod-c", 1)] * 3  # 1 + retryStrategy.limit
    before = cluster.read(argo.run_id)
    assert _by_nodes(before) == {"prepare": ["FINISHED"], "train": ["FINISHED"]}  # evaluate recorded nothing
    assert auto_status(tuple(attempt_states(before.tags))) == "FINISHED"
    argo.exit_handler(a).check()

    run = cluster.read(argo.run_id)
    assert run.status == "FAILED"
    assert run.user_metrics == {"n_rows": 8.0, "score": 4.0, "train_tries": 1.0}


# --------------------------------------------------------------------------------------------
# the sweeper (a Kubernetes CronJob)
# --------------------------------------------------------------------------------------------


def test_the_sweeper_cronjob_ends_a_forgotten_run_and_leaves_a_live_one_alone(cluster, machines, image):  # noqa: F811
    """Two runs opened by open-run: in one, a step was killed (kill -9) and nobody closed it; in the other,
    a step is at work. The CronJob's command ends the first as KILLED once it has been silent longer
    than --older-than, and never touches the second."""
    cron = yaml.safe_load(doc_block("sweeper-cronjob"))
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    command = [str(part) for part in container["command"]]
    assert command[:3] == ["kedro", "mlflow", "close-run"] and "--yes" in command
    threshold = command.index("--older-than") + 1
    quick = [*command[:threshold], "3s", *command[threshold + 1:]]

    a, b, c, sweeper = (machines.machine(f"pod-{x}", image) for x in ("a", "b", "c", "sweeper"))
    forgotten = a.run("mlflow", "open-run").check().output.strip().splitlines()[-1]
    live = a.run("mlflow", "open-run").check().output.strip().splitlines()[-1]
    doomed = b.start("run", "--nodes", "prepare", run_id=forgotten,
                     env={"STEP_MARKER_NODE": "prepare", "STEP_MARKER": str(b.marker("prepare")), "STEP_SLEEP": "300",
                          "KEDRO_MLFLOW_RUNS_HEARTBEAT_S": "0.5"})
    working = c.start("run", "--nodes", "prepare", run_id=live,
                      env={"STEP_MARKER_NODE": "prepare", "STEP_MARKER": str(c.marker("prepare")), "STEP_SLEEP": "25"})
    doomed.wait_for(b.marker("prepare"))
    working.wait_for(c.marker("prepare"))
    doomed.kill()
    killed_at = time.monotonic()

    as_written = sweeper.exec(command, env=_PATH).wait().check()  # --older-than 1h: nothing is that old
    assert "Ended 0 run(s)" in as_written.output or "Nothing to end" in as_written.output
    assert {cluster.read(forgotten).status, cluster.read(live).status} == {"RUNNING"}
    time.sleep(max(0.0, 4 - (time.monotonic() - killed_at)))  # dead after 3 missed beats of 0.5 s (+2 s slack)
    swept = sweeper.exec(quick, env=_PATH).wait().check()

    assert re.search(rf"{live} .*in progress", swept.output), swept.output
    assert "Ended 1 run(s) as KILLED" in swept.output
    assert working.running()
    working.wait().check()  # the live step finished its node undisturbed
    assert cluster.read(forgotten).status == "KILLED"
    assert (record := cluster.read(live)).status == "RUNNING" and record.user_metrics == {"n_rows": 8.0}
    (killed,) = _attempts(cluster.read(forgotten))
    assert killed["state"] == "KILLED"


# --------------------------------------------------------------------------------------------
# Databricks jobs
# --------------------------------------------------------------------------------------------

#: what a Databricks notebook finds as `dbutils`: widgets from the task's parameters, task values kept
#: in a file the job reads back
_DBUTILS = '''
import json as _json, os as _os


class _Widgets:
    def get(self, name):
        return _json.loads(_os.environ["DBX_WIDGETS"])[name]


class _TaskValues:
    def set(self, key, value):
        path = _os.environ["DBX_TASK_VALUES"]
        values = _json.loads(open(path).read()) if _os.path.exists(path) else {}
        values[key] = value
        with open(path, "w") as f:
            f.write(_json.dumps(values))


class _Jobs:
    taskValues = _TaskValues()


class _DBUtils:
    widgets = _Widgets()
    jobs = _Jobs()


dbutils = _DBUtils()
'''


class DatabricksJob:
    """A Databricks job (Jobs API 2.1) played as Databricks plays it: a task runs once its
    ``depends_on`` are done and its ``run_if`` holds (default ALL_SUCCESS; ALL_DONE: whatever they
    ended as), is tried ``1 + max_retries`` times, and the task values it sets are what
    ``{{tasks.<key>.values.<name>}}`` reads. Each ``notebook_task`` runs ``notebook`` (the source) with
    its ``base_parameters`` as widgets, in the project folder of the try's machine.
    ``states``: each task's result state (SUCCESS, FAILED, UPSTREAM_FAILED)."""

    def __init__(self, job: Mapping[str, Any], notebook: str, place: Callable[[str, int], Machine],
                 faults: Mapping[tuple[str, int], Mapping[str, str]] | None = None) -> None:
        self.tasks = job["tasks"]
        self.notebook = notebook
        self.place = place
        self.faults = dict(faults or {})
        self.values: dict[str, str] = {}
        self.states: dict[str, str] = {}
        self.tries: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def run(self) -> dict[str, str]:
        while ready := [t for t in self.tasks if t["task_key"] not in self.states
                        and all(d["task_key"] in self.states for d in t.get("depends_on", []))]:
            runnable = []
            for task in ready:
                upstream = [self.states[d["task_key"]] for d in task.get("depends_on", [])]
                if task.get("run_if", "ALL_SUCCESS") == "ALL_SUCCESS" and any(s != "SUCCESS" for s in upstream):
                    self.states[task["task_key"]] = "UPSTREAM_FAILED"
                else:
                    assert task.get("run_if", "ALL_SUCCESS") in ("ALL_SUCCESS", "ALL_DONE"), task["run_if"]
                    runnable.append(task)
            if runnable:
                with ThreadPoolExecutor(len(runnable)) as pool:
                    ended = list(pool.map(self._task, runnable))
                self.states.update(zip([t["task_key"] for t in runnable], ended, strict=True))
        return self.states

    def _task(self, task: Mapping[str, Any]) -> str:
        key = task["task_key"]
        with self._lock:
            scope = dict(self.values)
        widgets = {k: _render(str(v), scope) for k, v in task["notebook_task"]["base_parameters"].items()}
        for number in range(1, int(task.get("max_retries", 0)) + 2):
            machine = self.place(key, number)
            values = machine.tmp / f"{key}-{number}.task-values.json"
            env = {**_PATH, "DBX_WIDGETS": json.dumps(widgets), "DBX_TASK_VALUES": str(values),
                   **self.faults.get((key, number), {})}
            result = machine.exec([sys.executable, "-c", _DBUTILS + self.notebook], env=env).wait()
            with self._lock:
                self.tries.append((key, machine.name, result.returncode))
            if result.ok:
                with self._lock:
                    if values.exists():
                        for name, value in json.loads(values.read_text()).items():
                            self.values[f"tasks.{key}.values.{name}"] = value
                return "SUCCESS"
        return "FAILED"


def test_databricks_job_passes_the_id_as_a_task_value_retries_and_closes_the_run(cluster, machines, image):  # noqa: F811
    job = json.loads(doc_block("databricks-job"))
    notebook = doc_block("databricks-notebook")
    assert {t["notebook_task"]["notebook_path"] for t in job["tasks"]} == {"/Workspace/Repos/ml/churn/kedro_task"}
    a, b, c, d = (machines.machine(f"cluster-{x}", image) for x in "abcd")
    where = {("open_run", 1): a, ("prepare", 1): b, ("train", 1): c, ("train", 2): d, ("evaluate", 1): b,
             ("close_run", 1): a}
    databricks = DatabricksJob(job, notebook, lambda key, n: where[(key, n)],
                               faults={("train", 1): {"FAIL_NODE": "train"}})

    assert databricks.run() == {"open_run": "SUCCESS", "prepare": "SUCCESS", "train": "SUCCESS",
                                "evaluate": "SUCCESS", "close_run": "SUCCESS"}
    run = cluster.read(databricks.values["tasks.open_run.values.run_id"])
    assert run.status == "FINISHED"
    assert ("train", "cluster-c", 1) in databricks.tries and ("train", "cluster-d", 0) in databricks.tries
    assert run.user_metrics == METRICS
    assert _by_nodes(run) == {"prepare": ["FINISHED"], "train": ["FAILED", "FINISHED"], "evaluate": ["FINISHED"]}
    _no_other_run(cluster, run)


def test_databricks_job_closes_the_run_failed_when_a_step_fails_every_try(cluster, machines, image):  # noqa: F811
    """run_if ALL_DONE: the closer runs although train failed, and ends the run FAILED. (Retries are the
    test above's; here train is tried once.)"""
    job = json.loads(doc_block("databricks-job"))
    (train,) = [t for t in job["tasks"] if t["task_key"] == "train"]
    train["max_retries"] = 0
    a, b = (machines.machine(f"cluster-{x}", image) for x in "ab")
    databricks = DatabricksJob(job, doc_block("databricks-notebook"), lambda key, n: b if key == "train" else a,
                               faults={("train", 1): {"FAIL_NODE": "train"}})

    states = databricks.run()

    assert (states["train"], states["close_run"]) == ("FAILED", "SUCCESS")
    run = cluster.read(databricks.values["tasks.open_run.values.run_id"])
    assert run.status == "FAILED"
    assert _by_nodes(run) == {"prepare": ["FINISHED"], "train": ["FAILED"], "evaluate": ["FINISHED"]}
    assert run.tags["kedro.error.node"] == "train"


# --------------------------------------------------------------------------------------------
# Airflow: a DAG generated by kedro-airflow from the page's template, run by `airflow dags test`
# --------------------------------------------------------------------------------------------



def test_airflow_dag_from_the_template_retries_a_node_and_closes_the_run(cluster, machines, image):  # noqa: F811
    worker = machines.machine("airflow-worker", image)
    (worker.project / "mlflow_dag.j2").write_text(doc_block("airflow-template"))
    create = shlex.split(doc_block("airflow-create").strip())
    assert create[:3] == ["kedro", "airflow", "create"]
    create = [a.replace("retry_delay_s=60", "retry_delay_s=1") for a in create]
    home = worker.root / "airflow"
    env = {**_PATH, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(worker.project / "airflow_dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    worker.exec(create, env=env).wait().check()
    worker.exec(["airflow", "db", "migrate"], env=env).wait().check()
    dag_id = image.name.replace("_", "-")  # kedro-airflow slugifies the package name

    passed = worker.exec(["airflow", "dags", "test", dag_id], env={**env, "FAIL_NODE_ONCE": "train"}).wait(600)
    broken = worker.exec(["airflow", "dags", "test", dag_id], env={**env, "BROKEN_PIPELINES": "1"}).wait(600)

    passed.check()
    assert broken.returncode != 0  # the teardown's success does not hide the failed steps
    experiment = cluster.client.get_experiment_by_name(image.name)
    runs = {r.data.tags["airflow.dag_run"]: cluster.read(r.info.run_id)
            for r in cluster.client.search_runs([experiment.experiment_id])}
    assert len(runs) == 2
    good, bad = sorted(runs.values(), key=lambda r: r.status != "FINISHED")
    assert (good.status, bad.status) == ("FINISHED", "FAILED")
    assert good.user_metrics == METRICS
    assert _by_nodes(good) == {"prepare": ["FINISHED"], "train": ["FAILED", "FINISHED"], "evaluate": ["FINISHED"]}
    assert len({a["pid"] for a in _attempts(good)}) == 1  # `airflow dags test`: every task in one process
    # no node task attached (the pipelines did not load), so `auto` alone would have said FINISHED; the
    # closer saw the failed tasks in Airflow and said FAILED
    assert _attempts(bad) == [] and "Ended MLflow run" in broken.output


# --------------------------------------------------------------------------------------------
# artifacts on S3 (moto's S3 server), proxied by the mlflow server
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Any, str]]:
    """A cluster whose `mlflow server` stores artifacts in an S3 bucket (moto's server on a free port),
    started as the page says; (the cluster, a boto3 client on the bucket's S3, the bucket)."""
    import boto3
    import requests

    server_block = doc_block("s3-server")
    (destination,) = re.findall(r"--artifacts-destination (s3://\S+)", server_block)
    bucket, _, prefix = destination.removeprefix("s3://").partition("/")
    root = tmp_path_factory.mktemp("s3")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {"AWS_ACCESS_KEY_ID": "kmr-test", "AWS_SECRET_ACCESS_KEY": "kmr-test-secret",
                   "AWS_DEFAULT_REGION": "us-east-1", "MLFLOW_S3_ENDPOINT_URL": endpoint}
    assert set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", server_block)) <= set(credentials)
    moto = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=open(root / "moto.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
                            stdin=subprocess.DEVNULL, start_new_session=True, cwd=root)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(endpoint, timeout=2)
                break
            except requests.RequestException:
                assert moto.poll() is None and time.monotonic() < deadline, (root / "moto.log").read_text()[-2000:]
                time.sleep(0.2)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="kmr-test",
                          aws_secret_access_key="kmr-test-secret")
        s3.create_bucket(Bucket=bucket)
        with TempDatabase() as database:
            server = MlflowServer(database.uri, root / "server", artifacts_destination=destination, env=credentials)
            server.start()
            try:
                yield Cluster(root / "cluster", server), s3, f"{bucket}/{prefix}"
            finally:
                server.stop()
    finally:
        os.killpg(moto.pid, signal.SIGTERM)
        moto.wait(timeout=30)


def test_artifacts_on_s3_reach_the_bucket_through_the_server_only(s3_cluster, image, tmp_path):
    s3_server, s3, location = s3_cluster
    bucket, _, prefix = location.partition("/")
    fleet = s3_server.fleet(tmp_path / "machines")
    try:
        a, b, c = (fleet.machine(f"pod-{x}", image) for x in "abc")
        run_id = a.run("mlflow", "open-run").check().output.strip().splitlines()[-1]
        b.run("run", "--nodes", "prepare", run_id=run_id).check()
        c.run("run", "--nodes", "train,evaluate", run_id=run_id).check()
        a.run("mlflow", "close-run", "--run-id", run_id, "--status", "auto").check()
        assert not any(k.startswith("AWS_") or k == "MLFLOW_S3_ENDPOINT_URL" for k in b.env(run_id))
    finally:
        fleet.reap()

    run = s3_server.read(run_id)
    assert run.status == "FINISHED" and run.user_metrics == METRICS
    assert "kedro/timeline.json" in run.artifacts and len([p for p in run.artifacts if p.startswith("kedro/attempts/")]) == 2
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{run.experiment_id}/{run_id}/artifacts/")
    keys = {o["Key"].split("/artifacts/", 1)[1] for o in listed.get("Contents", [])}
    assert set(run.artifacts) <= keys  # what the server lists is what the bucket holds
    assert not any(Path(s3_server.server.artifacts).iterdir())  # and nothing went to the server's disk


def test_every_recipe_block_of_the_page_is_run_by_a_test():
    """A block added to the page without a test here fails: name it in a test, then here."""
    names = {m["name"] for m in _BLOCK.finditer(DOC.read_text()) if m["kind"] == "deployment"}
    assert names == {"catalog", "argo-workflow", "sweeper-cronjob", "airflow-template", "airflow-create",
                     "databricks-notebook", "databricks-job", "s3-server"}
