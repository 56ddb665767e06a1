"""Kedro's documented DaskRunner on a real ``dask.distributed`` cluster: one run, no stray run, the workers'
metrics, models and timeline in it.

The runner is the Kedro docs' deployment recipe ("Dask") adapted to Kedro 1.7, in the project's own
package; the cluster is either the LocalCluster (worker processes) its ``Client()`` starts, or a
``dask scheduler`` and two ``dask worker`` processes started beforehand in their own folders.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import all_runs
from kedro_project import kedro_env, kedro_run, store_uri

pytestmark = pytest.mark.slow

distributed = pytest.importorskip("distributed")

#: Kedro's documented DaskRunner (docs: deployment, "Dask"), adapted to Kedro 1.7: nodes run through
#: Kedro's ``Task`` with a hook manager made in the worker; in-memory data goes through the scheduler.
DOCS_RUNNER = '''
from collections import Counter
from itertools import chain
from typing import Any

from distributed import Client, as_completed, worker_client
from kedro.framework.hooks.manager import _create_hook_manager, _register_hooks, _register_hooks_entry_points
from kedro.framework.project import settings
from kedro.io import AbstractDataset, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from kedro.runner import AbstractRunner, Task


class _DaskDataset(AbstractDataset):
    """Publishes/gets named datasets to/from the Dask scheduler."""

    def __init__(self, name: str):
        self._name = name

    def load(self) -> Any:
        try:
            with worker_client() as client:
                return client.get_dataset(self._name)
        except ValueError:
            return Client.current().get_dataset(self._name)

    def save(self, data: Any) -> None:
        with worker_client() as client:
            client.publish_dataset(data, name=self._name, override=True)

    def _exists(self) -> bool:
        return self._name in Client.current().list_datasets()

    def _release(self) -> None:
        Client.current().unpublish_dataset(self._name)

    def _describe(self) -> dict[str, Any]:
        return {"name": self._name}


class DaskRunner(AbstractRunner):
    def __init__(self, client_args: dict[str, Any] | None = None, is_async: bool = False):
        super().__init__(is_async=is_async)
        Client(**(client_args or {}))

    def __del__(self):
        try:
            Client.current().close()
        except Exception:
            pass

    @staticmethod
    def _run_node(node: Node, catalog: Any, is_async: bool = False, run_id: str | None = None,
                  *dependencies: Node) -> Node:
        hook_manager = _create_hook_manager()
        _register_hooks(hook_manager, settings.HOOKS)
        _register_hooks_entry_points(hook_manager, settings.DISABLE_HOOKS_FOR_PLUGINS)
        return Task(node=node, catalog=catalog, is_async=is_async, hook_manager=hook_manager, run_id=run_id).execute()

    def _run(self, pipeline: Pipeline, catalog: Any, hook_manager: Any = None, run_id: str | None = None) -> None:
        nodes = pipeline.nodes
        for name in pipeline.datasets():  # in-memory data cannot cross workers: through the scheduler
            if name not in pipeline.inputs() and isinstance(catalog.get(name), MemoryDataset):
                catalog[name] = _DaskDataset(name)
        load_counts = Counter(chain.from_iterable(n.inputs for n in nodes))
        node_dependencies = pipeline.node_dependencies
        node_futures = {}
        client = Client.current()
        for node in nodes:
            dependencies = (node_futures[dependency] for dependency in node_dependencies[node])
            node_futures[node] = client.submit(DaskRunner._run_node, node, catalog, self._is_async, run_id,
                                               *dependencies, pure=False)
        for i, (_, node) in enumerate(as_completed(node_futures.values(), with_results=True)):
            self._logger.info("Completed node: %s", node.name)
            self._logger.info("Completed %d out of %d tasks", i + 1, len(nodes))
            for dataset in node.inputs:
                load_counts[dataset] -= 1
                if load_counts[dataset] < 1 and dataset not in pipeline.inputs():
                    catalog.release(dataset)
            for dataset in node.outputs:
                if load_counts[dataset] < 1 and dataset not in pipeline.outputs():
                    catalog.release(dataset)

    def _get_executor(self, max_workers: int) -> None:
        return None
'''

NODES = '''
import os
import time

import numpy as np
from sklearn.linear_model import LogisticRegression

X = np.array([[0.0], [1.0], [2.0], [3.0]])
Y = [0, 0, 1, 1]


def train(data, model):
    time.sleep(float(model["sleep"]))
    if model["fail"]:
        raise ValueError("train failed on purpose")
    import mlflow
    mlflow.log_metric("train_pid", float(os.getpid()))
    return LogisticRegression(C=float(model["C"])).fit(X[: int(data["n"])], Y[: int(data["n"])])


def summarise(data, model):
    time.sleep(float(model["sleep"]))
    import mlflow
    mlflow.log_metric("summarise_pid", float(os.getpid()))
    return float(sum(range(int(data["n"]))))


def evaluate(classifier):
    return float((classifier.predict(X) == np.array(Y)).mean())
'''

REGISTRY = '''
from kedro.pipeline import node, pipeline

from .nodes import evaluate, summarise, train


def register_pipelines():
    return {"__default__": pipeline([
        node(train, ["params:data", "params:model"], "classifier", name="train"),
        node(summarise, ["params:data", "params:model"], "total", name="summarise"),
        node(evaluate, "classifier", "accuracy", name="evaluate"),
    ])}
'''

CATALOG = {
    "classifier": {"type": "kedro_mlflow_runs.io.models.MlflowModelLoggerDataset", "flavor": "mlflow.sklearn",
                   "save_args": {"pip_requirements": ["scikit-learn"]}},
    "total": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset"},
    "accuracy": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset"},
}

PARAMETERS = {"data": {"n": 4}, "model": {"C": 1.0, "sleep": 0.5, "fail": False}}


@pytest.fixture
def dask_project(project_factory) -> Path:
    project = project_factory(nodes=NODES, registry=REGISTRY, parameters=PARAMETERS, catalog=CATALOG,
                              mlflow_yml={"tracking": {"experiment": {"name": "dask"},
                                                       # on the workers too (no model: the catalog logs it)
                                                       "autolog": {"enabled": True, "flavors": ["sklearn"],
                                                                   "kwargs": {"log_models": False}}}})
    (project / "src" / project.name / "runner.py").write_text(DOCS_RUNNER)
    return project


def _runner(project: Path) -> str:
    return f"{project.name}.runner.DaskRunner"


def _check_run(project: Path, tmp_path: Path, status: str = "FINISHED", *, runs: int = 1, server: Any = None
               ) -> tuple[Any, list[dict[str, Any]]]:
    """The newest of the ``runs`` runs MLflow holds in any experiment (no stray run), with its timeline.
    ``server``: the tracking server the run went to (its "dask" experiment is this test's; a stray run
    would land in its "Default" experiment), else the project's own sqlite store."""
    from mlflow import MlflowClient

    client = MlflowClient(server.url if server is not None else store_uri(project))
    if server is None:
        found = sorted(all_runs(client), key=lambda r: r.info.start_time)
        assert {client.get_experiment(r.info.experiment_id).name for r in found} == {"dask"}
    else:
        found = sorted(client.search_runs([client.get_experiment_by_name("dask").experiment_id]),
                       key=lambda r: r.info.start_time)
        since = found[0].info.start_time if found else 0  # this test's first run (tests before it may use "Default")
        assert [r for r in client.search_runs(["0"]) if r.info.start_time >= since] == []  # no stray in "Default"
    assert len(found) == runs
    run = found[-1]
    assert run.info.status == status
    local = client.download_artifacts(run.info.run_id, "kedro/timeline.json", str(tmp_path / "timeline"))
    return run, json.loads(Path(local).read_text())


def _check_finished_run(project: Path, tmp_path: Path, workers: int = 2, server: Any = None) -> Any:
    import mlflow.sklearn
    from mlflow import MlflowClient

    uri = server.url if server is not None else store_uri(project)
    run, timeline = _check_run(project, tmp_path, server=server)
    metrics = run.data.metrics
    assert metrics["total"] == 6.0 and metrics["accuracy"] == 1.0  # metric datasets, saved in workers
    assert {"train_pid", "summarise_pid"} <= set(metrics)  # mlflow.log_metric in node code, in workers
    assert metrics["train_pid"] != metrics["summarise_pid"]  # run side by side, on two workers
    assert os.getpid() not in (metrics["train_pid"], metrics["summarise_pid"])
    # sklearn autologging, turned on in the workers: the fit in `train` logged its score and parameters
    assert metrics["training_score"] == 1.0 and run.data.params["C"] == "1.0"
    client = MlflowClient(uri)
    (model,) = list(client.search_logged_models([run.info.experiment_id]))
    assert model.source_run_id == run.info.run_id and model.name == "classifier"
    mlflow.set_tracking_uri(uri)
    try:
        loaded = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/classifier")
    finally:
        mlflow.set_tracking_uri(None)
    assert list(loaded.predict([[0.0], [3.0]])) == [0, 1]
    # the timeline: each node once, on the Dask worker that ran it, one lane per worker, real durations
    assert sorted(e["node"] for e in timeline) == ["evaluate", "summarise", "train"]
    assert {e["status"] for e in timeline} == {"completed"}
    lanes = {(e["worker"]["dask_worker"], e["worker"]["pid"]) for e in timeline}
    assert len(lanes) == workers
    by_node = {e["node"]: e for e in timeline}
    assert by_node["train"]["worker"]["pid"] == metrics["train_pid"]
    assert by_node["summarise"]["worker"]["pid"] == metrics["summarise_pid"]
    assert by_node["train"]["compute_s"] >= 0.5 and by_node["summarise"]["compute_s"] >= 0.5
    assert by_node["evaluate"]["start"] >= by_node["train"]["end"] - 0.05
    for node in ("train", "summarise", "evaluate"):
        assert metrics[f"kedro.node_duration_s.{node}"] == pytest.approx(by_node[node]["duration_s"])
    html = Path(MlflowClient(uri).download_artifacts(
        run.info.run_id, "kedro/timeline.html", str(tmp_path / "page"))).read_text()
    assert f"3 node runs on {workers} worker(s)" in html
    for e in timeline:
        assert f"{e['worker']['host']} / dask worker {e['worker']['dask_worker']} / pid {e['worker']['pid']}" in html
    return run, timeline


def test_docs_dask_runner_on_a_local_cluster_of_worker_processes(dask_project, tmp_path):
    result = kedro_run(dask_project, "--runner", _runner(dask_project), "--runner-params",
                       "client_args.n_workers=2,client_args.threads_per_worker=1,client_args.dashboard_address=:0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    _check_finished_run(dask_project, tmp_path)


# --- an external cluster: `dask scheduler` and two `dask worker` processes ----------------------------


class DaskCluster:
    """A ``dask scheduler`` and ``dask worker`` processes, each in its own process group and folder."""

    def __init__(self, root: Path, pythonpath: str) -> None:
        self.root = root
        self.pythonpath = pythonpath
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _start(self, name: str, *args: str) -> None:
        home = self.root / name
        (home / "tmp").mkdir(parents=True)
        env = {k: v for k, v in kedro_env().items() if not k.startswith(("DASK_", "KEDRO_MLFLOW_RUNS_"))}
        env.update(HOME=str(home), TMPDIR=str(home / "tmp"), PYTHONPATH=self.pythonpath)
        log = (home / "log.txt").open("wb")
        dask = Path(sys.executable).with_name("dask")
        self.procs.append(subprocess.Popen([str(dask), *args], cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def start(self, workers: int = 2) -> None:
        scheduler_file = self.root / "scheduler.json"
        self._start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(scheduler_file))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, self.logs()
            time.sleep(0.1)
        time.sleep(0.2)  # written at once, but let it finish
        self.address = json.loads(scheduler_file.read_text())["address"]
        for i in range(workers):
            self._start(f"worker-{i}", "worker", self.address, "--nthreads", "1", "--name", f"w{i}",
                        "--no-dashboard")
        with distributed.Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=90)  # poll until every worker is connected

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{(p / 'log.txt').read_text()[-3000:]}"
                         for p in sorted(self.root.iterdir()) if (p / "log.txt").exists())

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers first, then the scheduler; each with what it started
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the nanny's worker process too, if it lingers
            except ProcessLookupError:
                pass
            proc.wait()

    def strays(self) -> list[str]:
        """MLflow stores a worker or the scheduler created in its own folder (a stray run's default store)."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.glob("*/*")
                      if p.name in ("mlflow.db", "mlruns", "mlartifacts"))


@pytest.fixture
def external_cluster(dask_project, tmp_path) -> Iterator[DaskCluster]:
    cluster = DaskCluster(tmp_path / "dask", str(dask_project / "src"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.postgres
def test_docs_dask_runner_on_a_scheduler_and_two_worker_processes(dask_project, external_cluster, mlflow_server,
                                                                  tmp_path):
    """The workers, the scheduler and the `kedro run` each in a folder of their own, the run on the
    shared `mlflow server` (PostgreSQL, proxied artifacts): nothing goes through a shared disk."""
    env = kedro_env(DASK_SCHEDULER_ADDRESS=external_cluster.address,  # what Client() connects to
                    MLFLOW_TRACKING_URI=mlflow_server.url)
    result = kedro_run(dask_project, "--runner", _runner(dask_project), env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:] + external_cluster.logs()
    run, timeline = _check_finished_run(dask_project, tmp_path, server=mlflow_server)
    assert {e["worker"]["dask_worker"] for e in timeline} == {"w0", "w1"}  # `dask worker --name`
    assert {e for e in run.data.tags if e.startswith("kedro.error")} == set()
    assert external_cluster.strays() == []

    # the same workers, the next run: a node failing there fails it (scheduler address from --runner-params)
    result = kedro_run(dask_project, "--runner", _runner(dask_project), "--params", "model.fail=true,model.sleep=0",
                       "--runner-params", f"client_args.address={external_cluster.address}",
                       env=kedro_env(MLFLOW_TRACKING_URI=mlflow_server.url))
    assert result.returncode != 0
    assert "train failed on purpose" in result.stdout + result.stderr
    run, timeline = _check_run(dask_project, tmp_path / "failed", status="FAILED", runs=2, server=mlflow_server)
    assert run.data.tags["kedro.error.node"] == "train"
    assert run.data.tags["kedro.error.type"] == "ValueError"
    assert {"train_pid", "accuracy"}.isdisjoint(run.data.metrics)
    statuses = {e["node"]: e["status"] for e in timeline}
    assert statuses["train"] == "failed" and "evaluate" not in statuses
    assert external_cluster.strays() == []


# --- what the plugin sends, and what a run without Dask pays -------------------------------------------


def test_only_the_run_handle_and_timeline_settings_are_sent_to_the_workers():
    import cloudpickle

    from kedro_mlflow_runs import RunHandle, build_config
    from kedro_mlflow_runs.framework.dask_cluster import RunPlugin

    config = build_config({"server": {"mlflow_tracking_uri": "http://ana:s3cret@mlflow.internal:5000"}},
                          project_path=".", environ={})
    handle = RunHandle("0" * 32, config.server.tracking_uri, "1", config.server.registry_uri, "kedro-run-1")
    plugin = RunPlugin(handle, {"kedro_run_id": "kedro-run-1", "timeline": True}, "topic")
    sent = cloudpickle.dumps(plugin)
    assert b"s3cret" not in sent and b"ana" not in sent
    received = cloudpickle.loads(sent)
    assert set(vars(received)) == {"handle", "recorder", "topic", "autolog", "children", "name", "_ctx"}
    assert received.handle == handle and received.handle.tracking_uri == "http://mlflow.internal:5000"


def test_a_run_whose_runner_does_not_use_dask_never_imports_it(project):
    code = f"""
import sys
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.runner import ThreadRunner
bootstrap_project({str(project)!r})
with KedroSession.create(project_path={str(project)!r}) as session:
    session.run(runner=ThreadRunner())
print("DISTRIBUTED", "distributed" in sys.modules, "DASK", "dask" in sys.modules)
print("HOOKS", [type(f).__name__ for f in sys.meta_path if type(f).__module__.startswith("kedro_mlflow_runs")])
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=project, env=kedro_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DISTRIBUTED False DASK False" in result.stdout
    assert "HOOKS []" in result.stdout  # the hook waiting for `import distributed` left with the run
    from mlflow import MlflowClient

    (run,) = all_runs(MlflowClient(store_uri(project)))
    assert run.info.status == "FINISHED"


CHILD_REGISTRY = '''
from kedro.pipeline import node, pipeline

from .nodes import evaluate, summarise, train


def register_pipelines():
    training = pipeline([node(train, ["params:data", "params:model"], "classifier", name="train"),
                         node(evaluate, "classifier", "accuracy", name="evaluate")])
    summary = pipeline([node(summarise, ["params:data", "params:model"], "total", name="summarise")])
    return {"__default__": training + summary, "training": training, "summary": summary}
'''


def test_child_runs_on_dask_workers_hold_what_their_nodes_made(project_factory, tmp_path):
    """tracking.child_runs.by: pipeline with the DaskRunner: the workers log each node's metrics, model and
    node code's mlflow.log_metric into its group's child run; the parent keeps the timeline."""
    from mlflow import MlflowClient

    project = project_factory(nodes=NODES, registry=CHILD_REGISTRY, parameters=PARAMETERS, catalog=CATALOG,
                              mlflow_yml={"tracking": {"experiment": {"name": "dask"},
                                                       "child_runs": {"by": "pipeline"}}})
    (project / "src" / project.name / "runner.py").write_text(DOCS_RUNNER)
    result = kedro_run(project, "--runner", _runner(project), "--runner-params",
                       "client_args.n_workers=2,client_args.threads_per_worker=1,client_args.dashboard_address=:0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    client = MlflowClient(store_uri(project))
    runs = all_runs(client)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.data.tags["kedro.child_group"]: r for r in runs if r is not parent}
    assert set(children) == {"training", "summary"} and len(runs) == 3
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children.values())
    assert {r.info.status for r in runs} == {"FINISHED"}
    training, summary = children["training"].data, children["summary"].data
    assert training.metrics["accuracy"] == 1.0 and "train_pid" in training.metrics  # dataset; node code
    assert summary.metrics["total"] == 6.0 and "summarise_pid" in summary.metrics
    assert os.getpid() not in (training.metrics["train_pid"], summary.metrics["summarise_pid"])  # in workers
    assert not {"accuracy", "total", "train_pid", "summarise_pid"} & set(parent.data.metrics)
    (model,) = list(client.search_logged_models([parent.info.experiment_id]))
    assert model.source_run_id == children["training"].info.run_id and model.name == "classifier"
    assert training.params["model.C"] == "1.0" == summary.params["model.C"]  # the params their nodes read
    local = client.download_artifacts(parent.info.run_id, "kedro/timeline.json", str(tmp_path / "timeline"))
    assert sorted(e["node"] for e in json.loads(Path(local).read_text())) == ["evaluate", "summarise", "train"]
    # the trace of the parent: one span per node, each named with the Dask worker that ran it
    (trace,) = client.search_traces(locations=[parent.info.experiment_id])
    assert trace.info.trace_metadata["mlflow.sourceRun"] == parent.info.run_id
    spans = {span.name: span for span in trace.data.spans}
    assert set(spans) == {"kedro run", "train", "summarise", "evaluate"}
    assert all(spans[n].attributes["kedro.worker.pid"] != os.getpid() for n in ("train", "summarise", "evaluate"))
