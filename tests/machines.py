"""A multi-machine harness: one real `mlflow server`, many simulated machines running `kedro run` steps.

An orchestrator (Airflow, Argo, Kubernetes Jobs, Dask) runs a pipeline as several `kedro run` steps on
several machines that share nothing but the tracking server. This module plays that out on one host:

* :class:`Cluster` (one per test session, fixture ``cluster``): the `mlflow server` (PostgreSQL
  backend, proxied artifacts: clients upload and download over HTTP only; the fixture reuses the
  session's ``mlflow_server``, ``Cluster(root)`` alone starts its own on a fresh database), an
  ``MlflowClient`` on it, and what this host allows for isolation, detected once (:class:`Isolation`).
* :class:`Fleet` (one per test, fixture ``machines``): the machines of one test. Leaving the test
  (passed or failed) kills every step still running, with everything it started.
* :class:`Machine`: a working copy of a Kedro project copied from a template folder (like a container
  image), with its own ``HOME``, ``TMPDIR``, working directory, ``data/`` and plugin cache folder.
  When the host allows Linux namespaces (checked once, by trying; it needs root or CAP_SYS_ADMIN),
  each step runs in its own UTS namespace (``socket.gethostname()`` is the machine's name), its own
  PID namespace (the ``kedro`` process is PID 1, as in a container started without ``--init``: a
  signal it installed no handler for is ignored, SIGKILL always works) and its own mount namespace in
  which the other machines' folders (those existing when the step starts) and the server's folder
  are covered by empty read-only tmpfs mounts: a step that relies on a shared disk fails as it would
  on a real cluster. Without namespaces, a step is a plain process group with ``HOSTNAME`` set and
  nothing hidden (``Isolation.reason`` says why; ``KMR_MACHINES_NO_NAMESPACES=1`` forces this mode).
* :class:`Step`: one running command on a machine (``Machine.start``): ``signal`` (to the ``kedro``
  process only, as ``docker stop`` or the kubelet do), ``kill`` (SIGKILL to the whole step),
  ``terminate`` (SIGTERM, then SIGKILL after a grace period), ``wait``, ``wait_for`` (a marker file
  a node writes), and its output.
* :class:`RunRecord`: what MLflow holds about a run, read through the server (``Cluster.read``).

Usage::

    from machines import cluster, machines  # noqa: F401 (fixtures)

    def test_steps(cluster, machines, tmp_path):
        template = make_project(tmp_path / "image", nodes=..., registry=..., catalog=...)
        a, b = machines.machine("a", template), machines.machine("b", template)
        run_id = cluster.new_run()
        a.run("run", "--nodes", "prep", run_id=run_id).check()
        step = b.start("run", "--nodes", "train", run_id=run_id,
                       env={"STEP_MARKER": str(b.marker("train"))})   # the node writes it, then sleeps
        step.wait_for(b.marker("train"))
        step.kill()                                  # the whole step, as a machine lost
        assert step.wait().returncode == -signal.SIGKILL and step.processes() == []
        a.run("mlflow", "close-run", "--status", "FAILED", run_id=run_id).check()
        record = cluster.read(run_id)
        assert record.status == "FAILED" and record.params["data.n"] == "4"

Each step is started by :func:`_launch`, run in a fresh interpreter with ``python -I -S -c`` (standard
library only, about 60 ms): it enters the namespaces, forks the command, writes its pid and exits the
way the command did (same exit code, or killed by the same signal).
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kedro_project import kedro_cmd

__all__ = ["Cluster", "Fleet", "Isolation", "Machine", "RunRecord", "Step", "StepResult", "cluster", "machines"]

#: Environment variables a machine never inherits from the test process: each step gets its run and
#: server from what the test passes, as an orchestrator's pod would.
_DROPPED_ENV_PREFIXES = ("MLFLOW_", "KEDRO_MLFLOW_RUNS_", "PYTEST_", "AWS_", "DASK_")
#: Folders of the template project a machine does not copy (a container image holds none of them).
_NOT_COPIED = ("mlflow.db", "mlruns", "__pycache__", ".pytest_cache", "*.egg-info")


# --------------------------------------------------------------------------------------------
# the launcher: runs in a fresh interpreter, one per step; standard library only
# --------------------------------------------------------------------------------------------


def _launch(spec_json: str) -> None:
    """Run one step: enter fresh namespaces when asked, fork the command, mirror how it ended.

    ``spec``: ``argv``, ``cwd``, ``env``, ``hostname``, ``hide`` (folders to cover), ``isolate``,
    ``pidfile`` (where the command's pid, as the host sees it, is written once it runs).
    The launcher is the step's process-group leader (``setsid``): killing the group kills the step.
    Its exit status mirrors the command's: the same exit code, or death by the same signal.
    """
    import ctypes
    import json
    import os
    import signal
    import sys
    import traceback

    clone_newns, clone_newuts, clone_newpid = 0x00020000, 0x04000000, 0x20000000
    ms_rdonly, ms_nosuid, ms_nodev, ms_noexec, ms_rec, ms_private = 1, 2, 4, 8, 16384, 1 << 18
    pr_set_pdeathsig = 1

    spec = json.loads(spec_json)
    libc = ctypes.CDLL(None, use_errno=True)

    def check(result: int, what: str) -> None:
        if result != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")

    os.setsid()
    if spec["isolate"]:
        check(libc.unshare(clone_newns | clone_newuts | clone_newpid), "unshare")
        check(libc.mount(b"none", b"/", None, ms_rec | ms_private, None), "make / private")
        name = spec["hostname"].encode()
        check(libc.sethostname(name, len(name)), "sethostname")
        for folder in spec["hide"]:
            check(libc.mount(b"kmr-hidden", folder.encode(), b"tmpfs", ms_rdonly | ms_nosuid | ms_nodev | ms_noexec,
                             b"size=4k,mode=0555"), f"hide {folder}")
    pid = os.fork()
    if pid == 0:  # the step: PID 1 of its namespace when isolated
        try:
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL)  # the launcher gone: the step goes too
            if spec["isolate"]:
                check(libc.mount(b"proc", b"/proc", b"proc", ms_nosuid | ms_nodev | ms_noexec, None), "mount /proc")
            os.chdir(spec["cwd"])
            os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
        except BaseException:
            traceback.print_exc()
            os._exit(127)
    tmp = spec["pidfile"] + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.replace(tmp, spec["pidfile"])
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    sys.exit(os.waitstatus_to_exitcode(status))


def _launcher_argv(spec: Mapping[str, Any]) -> list[str]:
    source = textwrap.dedent(inspect.getsource(_launch))
    code = f"from __future__ import annotations\n{source}\n_launch(__import__('sys').argv[1])\n"
    return [sys.executable, "-I", "-S", "-c", code, json.dumps(dict(spec))]


# --------------------------------------------------------------------------------------------
# isolation, detected once per cluster
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Isolation:
    """What the host allows: ``namespaces`` True when steps get their own hostname, PID 1 and hidden
    folders; otherwise ``reason`` says why not (steps are then plain process groups)."""

    namespaces: bool
    reason: str = ""

    @classmethod
    def detect(cls, workdir: Path, *, allow: bool = True) -> Isolation:
        """Try a step in fresh namespaces once; ``allow=False`` (or ``KMR_MACHINES_NO_NAMESPACES=1``)
        forces plain processes."""
        if not allow or os.environ.get("KMR_MACHINES_NO_NAMESPACES"):
            return cls(False, "namespaces switched off (KMR_MACHINES_NO_NAMESPACES or allow=False)")
        if sys.platform != "linux":
            return cls(False, f"Linux namespaces are not available on {sys.platform}")
        hidden = workdir / "probe-hidden"
        hidden.mkdir(parents=True, exist_ok=True)
        (hidden / "secret").write_text("visible")
        probe = ("import os, socket, sys; sys.exit(0 if os.getpid() == 1 and socket.gethostname() == 'kmr-probe' "
                 f"and not os.listdir({str(hidden)!r}) else 3)")
        spec = {"argv": [sys.executable, "-I", "-c", probe], "cwd": str(workdir), "env": {"PATH": os.defpath},
                "hostname": "kmr-probe", "hide": [str(hidden)], "isolate": True,
                "pidfile": str(workdir / "probe.pid")}
        try:
            done = subprocess.run(_launcher_argv(spec), capture_output=True, text=True, timeout=30,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return cls(False, f"namespace probe failed: {exc}")
        if done.returncode != 0:
            lines = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])
            return cls(False, f"namespace probe failed: {lines[-1]}")
        return cls(True)


# --------------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    """How a step ended: ``returncode`` (negative: killed by that signal), its output (stdout and
    stderr together), how long it took."""

    machine: str
    argv: tuple[str, ...]
    returncode: int
    output: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def check(self) -> StepResult:
        """This result when the step exited 0; otherwise an AssertionError with the end of its output."""
        if not self.ok:
            raise AssertionError(f"step {' '.join(self.argv[-6:])} on machine {self.machine!r} exited "
                                 f"{self.returncode}:\n{self.output[-4000:]}")
        return self


class Step:
    """One command running on a machine (see :meth:`Machine.start`)."""

    def __init__(self, machine: Machine, argv: Sequence[str], launcher: subprocess.Popen[bytes], log: Path,
                 pidfile: Path) -> None:
        self.machine = machine
        self.argv = tuple(argv)
        self._launcher = launcher
        self.log = log
        self._pidfile = pidfile
        self._started = time.monotonic()
        self._result: StepResult | None = None

    @property
    def pid(self) -> int:
        """The command's pid as this host sees it (inside its PID namespace it is 1)."""
        deadline = time.monotonic() + 30
        while not self._pidfile.exists():
            if self._launcher.poll() is not None and not self._pidfile.exists():
                raise AssertionError(f"step on machine {self.machine.name!r} never started:\n{self.output[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"step on machine {self.machine.name!r}: no pid after 30 s")
            time.sleep(0.01)
        return int(self._pidfile.read_text())

    @property
    def output(self) -> str:
        """Everything the step wrote so far (stdout and stderr)."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def running(self) -> bool:
        return self._launcher.poll() is None

    def processes(self) -> list[int]:
        """Host pids of the step's processes still alive (its process group, zombies excluded)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                state, _ppid, pgrp = (entry / "stat").read_text().rsplit(") ", 1)[1].split()[:3]
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if int(pgrp) == self._launcher.pid and state != "Z":
                found.append(int(entry.name))
        return sorted(found)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the step's command only (its children are left to it), as ``docker stop``
        and the kubelet do. Isolated, the command is PID 1: a signal it has no handler for is ignored."""
        if self.running():
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL the whole step: the command and every process it started (its namespace or its
        process group), at once. Returns when they are gone."""
        try:
            os.killpg(self._launcher.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._launcher.wait(timeout=30)
        self._wait_group_gone()

    def terminate(self, grace: float = 10) -> StepResult:
        """SIGTERM to the command, SIGKILL to the whole step after ``grace`` seconds (a pod's stop)."""
        self.signal(signal.SIGTERM)
        try:
            self._launcher.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        self.kill()
        return self.wait()

    def wait(self, timeout: float = 240) -> StepResult:
        """Wait for the step to end; a step still running after ``timeout`` s is killed and fails the test.
        Any process the step left behind in its process group is killed too."""
        if self._result is None:
            try:
                returncode = self._launcher.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"step {' '.join(self.argv[-6:])} on machine {self.machine.name!r} still "
                                     f"ran after {timeout} s (killed):\n{self.output[-4000:]}") from None
            self._wait_group_gone()
            self._result = StepResult(self.machine.name, self.argv, returncode, self.output,
                                      round(time.monotonic() - self._started, 3))
        return self._result

    def wait_for(self, marker: Path, timeout: float = 120) -> None:
        """Wait until ``marker`` (a file a node of this step writes, see :meth:`Machine.marker`) exists;
        fail at once, with the step's output, if the step ends first."""
        deadline = time.monotonic() + timeout
        while not marker.exists():
            if not self.running():
                raise AssertionError(f"step on machine {self.machine.name!r} ended (exit "
                                     f"{self._launcher.returncode}) before {marker.name} appeared:\n"
                                     f"{self.output[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{marker.name} did not appear on machine {self.machine.name!r} in "
                                     f"{timeout} s:\n{self.output[-4000:]}")
            time.sleep(0.05)

    def _wait_group_gone(self, timeout: float = 30) -> None:
        """Plain processes only: wait until no process of the step's group is left (a killed isolated
        step takes its whole namespace with it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self._launcher.pid, 0)
            except ProcessLookupError:
                return
            except PermissionError:
                return
            os.killpg(self._launcher.pid, signal.SIGKILL)  # the launcher ended, a stray child is left
            time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# machines
# --------------------------------------------------------------------------------------------


class Machine:
    """A simulated machine: its own copy of the project, HOME, TMPDIR and hostname (see module doc)."""

    def __init__(self, fleet: Fleet, name: str, template: Path) -> None:
        self.fleet = fleet
        self.name = name
        self.root = fleet.root / name
        self.project = self.root / "project"
        self.home = self.root / "home"
        self.tmp = self.root / "tmp"
        self.logs = self.root / "logs"
        shutil.copytree(template, self.project, ignore=shutil.ignore_patterns(*_NOT_COPIED), symlinks=True)
        for folder in (self.home, self.tmp, self.logs, self.root / "cache", self.project / "data"):
            folder.mkdir(parents=True, exist_ok=True)
        self._count = itertools.count(1)

    def env(self, run_id: str | None = None, **extra: str) -> dict[str, str]:
        """The step's environment: the test process's, minus MLflow, plugin, AWS and Dask variables, plus
        the machine's HOME, TMPDIR, HOSTNAME, cache folder and the cluster's tracking URI."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_ENV_PREFIXES)}
        env.update(
            HOME=str(self.home), TMPDIR=str(self.tmp), HOSTNAME=self.name, PWD=str(self.project),
            KEDRO_DISABLE_TELEMETRY="1", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1",
            COLUMNS="200",  # Kedro's rich log lines unwrapped, so that tests can search them
            MLFLOW_TRACKING_URI=self.fleet.cluster.url, MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
            KEDRO_MLFLOW_RUNS_CACHE_DIR=str(self.root / "cache"),
        )
        if run_id is not None:
            env["MLFLOW_RUN_ID"] = run_id
        env.update(extra)
        return env

    def marker(self, name: str) -> Path:
        """A path in this machine's folder for a node to write when it starts (``Step.wait_for``)."""
        return self.tmp / f"{name}.started"

    def start(self, *kedro_args: str, run_id: str | None = None, params: Mapping[str, Any] | None = None,
              env: Mapping[str, str] | None = None) -> Step:
        """Start ``kedro <kedro_args>`` here; returns at once.

        Args:
            kedro_args: what follows ``kedro``: ``"run", "--nodes", "prep"`` or ``"mlflow", "close-run"``.
            run_id: the MLflow run to attach to (``MLFLOW_RUN_ID``).
            params: added as ``--params k=v,...`` (values without commas).
            env: extra environment variables for this step only.
        """
        args = list(kedro_args)
        if params:
            args += ["--params", ",".join(f"{k}={v}" for k, v in params.items())]
        return self.exec(kedro_cmd(*args), run_id=run_id, env=env)

    def run(self, *kedro_args: str, run_id: str | None = None, params: Mapping[str, Any] | None = None,
            env: Mapping[str, str] | None = None, timeout: float = 240) -> StepResult:
        """``kedro <kedro_args>`` here, to its end (see :meth:`start`)."""
        return self.start(*kedro_args, run_id=run_id, params=params, env=env).wait(timeout)

    def exec(self, argv: Sequence[str], *, run_id: str | None = None, env: Mapping[str, str] | None = None) -> Step:
        """Start any command here, in the project folder, with the machine's environment."""
        number = next(self._count)
        log = self.logs / f"step-{number}.log"
        pidfile = self.logs / f"step-{number}.pid"
        isolate = self.fleet.cluster.isolation.namespaces
        spec = {"argv": list(argv), "cwd": str(self.project), "env": self.env(run_id, **dict(env or {})),
                "hostname": self.name, "isolate": isolate, "pidfile": str(pidfile),
                "hide": [str(p) for p in self.fleet.hidden_from(self)] if isolate else []}
        with open(log, "wb") as out:
            launcher = subprocess.Popen(_launcher_argv(spec), stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=self.root)
        step = Step(self, argv, launcher, log, pidfile)
        self.fleet.steps.append(step)
        return step


class Fleet:
    """The machines of one test; :meth:`reap` kills whatever they still run."""

    def __init__(self, cluster: Cluster, root: Path) -> None:
        self.cluster = cluster
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.machines: dict[str, Machine] = {}
        self.steps: list[Step] = []

    def machine(self, name: str, template: Path) -> Machine:
        """A new machine called ``name`` (also its hostname) with a copy of ``template``."""
        if name in self.machines:
            raise ValueError(f"machine {name!r} exists already in this test")
        machine = self.machines[name] = Machine(self, name, template)
        return machine

    def hidden_from(self, machine: Machine) -> list[Path]:
        """What a step on ``machine`` must not see: the other machines' folders and the server's."""
        folders = [m.root for m in self.machines.values() if m is not machine] + self.cluster.private_folders
        return [folder for folder in folders if folder.is_dir()]

    def reap(self) -> list[str]:
        """Kill every step still running; the machines (names) that had one."""
        alive = [step for step in self.steps if step.running()]
        for step in alive:
            step.kill()
        return sorted({step.machine.name for step in alive})


# --------------------------------------------------------------------------------------------
# the cluster and what it reads back
# --------------------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """One MLflow run as the server holds it (read with :meth:`Cluster.read`)."""

    run_id: str
    status: str
    experiment_id: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    artifacts: list[str]
    logged_models: list[Any] = field(default_factory=list)
    timeline: list[dict[str, Any]] | None = None

    @property
    def user_metrics(self) -> dict[str, float]:
        """Metrics without the plugin's node durations (``kedro.node_duration_s.*``)."""
        return {k: v for k, v in self.metrics.items() if not k.startswith("kedro.node_duration_s.")}

    @property
    def user_tags(self) -> dict[str, str]:
        """Tags without MLflow's (``mlflow.*``) and the plugin's (``kedro.*``, ``kedro_mlflow_runs.*``)."""
        return {k: v for k, v in self.tags.items() if not k.startswith(("mlflow.", "kedro.", "kedro_mlflow_runs."))}


class Cluster:
    """A tracking server the machines talk to, and the host's isolation (see module doc).

    ``server``: a started ``tests/mlflow_server.MlflowServer`` to use (the session's ``mlflow_server``),
    left running on :meth:`close`; None: the cluster starts its own on a fresh PostgreSQL database and
    stops it, and drops the database, on :meth:`close`.
    """

    def __init__(self, root: Path, server: Any | None = None, *, namespaces: bool = True) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._owned: list[Any] = []
        if server is None:
            server = self._start_server()
        self.server = server
        self.isolation = Isolation.detect(root / "isolation-probe", allow=namespaces)
        self._downloads = itertools.count(1)
        self._fleets = itertools.count(1)

    def _start_server(self) -> Any:
        from mlflow_server import MlflowServer, TempDatabase

        database = TempDatabase().__enter__()
        self._owned.append(database)
        server = MlflowServer(database.uri, self.root / "server")
        self._owned.append(server)
        server.start()
        return server

    @property
    def url(self) -> str:
        return str(self.server.url)

    @property
    def private_folders(self) -> list[Path]:
        """The server's folder (database logs, proxied artifacts): no machine may read it."""
        return [Path(self.server.workdir)]

    @property
    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.url, registry_uri=self.url)

    def fleet(self, root: Path | None = None) -> Fleet:
        return Fleet(self, root or self.root / f"fleet-{next(self._fleets)}")

    def new_run(self, experiment: str | None = None, run_name: str = "orchestrated",
                tags: Mapping[str, str] | None = None) -> str:
        """Create a run as an orchestrator would (in a new experiment unless named); its id."""
        client = self.client
        name = experiment or f"machines-{uuid.uuid4().hex[:8]}"
        found = client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found else client.create_experiment(name)
        return str(client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {})).info.run_id)

    def artifact_paths(self, run_id: str, path: str | None = None) -> list[str]:
        """Every artifact file of the run, recursively, as listed through the server."""
        found: list[str] = []
        for item in self.client.list_artifacts(run_id, path):
            found += self.artifact_paths(run_id, item.path) if item.is_dir else [item.path]
        return sorted(found)

    def download(self, run_id: str, path: str) -> Path:
        """Download an artifact of the run through the server into the cluster's folder."""
        target = self.root / "downloads" / str(next(self._downloads))
        target.mkdir(parents=True)
        return Path(self.client.download_artifacts(run_id, path, str(target)))

    def read(self, run_id: str) -> RunRecord:
        """What MLflow holds about the run: status, params, metrics, tags, artifacts, logged models
        and the merged ``kedro/timeline.json`` (None when absent)."""
        client = self.client
        run = client.get_run(run_id)
        artifacts = self.artifact_paths(run_id)
        timeline = None
        if "kedro/timeline.json" in artifacts:
            timeline = json.loads(self.download(run_id, "kedro/timeline.json").read_text())
        models = [m for m in client.search_logged_models(experiment_ids=[run.info.experiment_id])
                  if m.source_run_id == run_id]
        return RunRecord(run_id=run_id, status=run.info.status, experiment_id=run.info.experiment_id,
                         params=dict(run.data.params), metrics=dict(run.data.metrics), tags=dict(run.data.tags),
                         artifacts=artifacts, logged_models=models, timeline=timeline)

    def close(self) -> None:
        """Stop the server and drop its database when the cluster started them."""
        for owned in reversed(self._owned):
            if hasattr(owned, "stop"):
                owned.stop()
            else:
                owned.__exit__(None, None, None)
        self._owned.clear()


# --------------------------------------------------------------------------------------------
# fixtures: import them into a test module (`from machines import cluster, machines`)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cluster(mlflow_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The session's cluster, on the session's `mlflow server` (one server for the whole session)."""
    made = Cluster(tmp_path_factory.mktemp("cluster"), mlflow_server)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def machines(cluster: Cluster, tmp_path: Path) -> Iterator[Fleet]:
    """This test's machines; every step still running when the test ends is killed, with its children."""
    fleet = cluster.fleet(tmp_path / "machines")
    try:
        yield fleet
    finally:
        fleet.reap()
