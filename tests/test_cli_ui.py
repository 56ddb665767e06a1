"""`kedro mlflow ui` with real servers: it says where it serves only once the server answers, refuses a
port in use, and no process of its server outlives it (SIGHUP, SIGKILL, the server dying by itself).

Starting an MLflow UI takes 10 to 50 s, so the module starts its three UIs at once (one fixture) and
the tests share them; the tests of the first UI run in file order (the last one stops it).
Each UI's processes are found by a marker variable in their environment (/proc), which every
descendant inherits: the keeper, `mlflow ui`, uvicorn and its workers, MLflow's job runner and consumers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from kedro_project import kedro_cmd, kedro_env, make_project, store_uri
from mlflow_server import free_port

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds processes through /proc")]

MARK = "KMR_TEST_UI_MARK"
#: TEST-NET-3 (RFC 5737): an address no interface of this machine has
UNASSIGNED = "203.0.113.7"


def marked_processes(mark: str) -> list[int]:
    """Live (not zombie) processes whose environment has ``MARK=mark``."""
    found = []
    needle = f"{MARK}={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile, or not ours
            continue
        if state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def wait_until_gone(mark: str, timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := marked_processes(mark)) and time.monotonic() < deadline:
        time.sleep(0.3)
    return left


def port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class Ui:
    """One ``kedro mlflow ui`` subprocess on its own project and port, its output read as it comes."""

    def __init__(self, root: Path, template_db: Path, *options: str) -> None:
        self.project = make_project(root, template_db=template_db)
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=store_uri(self.project))
        self.run_id = client.create_run(client.create_experiment(self.project.name)).info.run_id
        client.set_terminated(self.run_id, "FINISHED")
        self.port = free_port()
        # --port wins over ui.port
        (self.project / "conf" / "local" / "mlflow.yml").write_text(yaml.safe_dump({"ui": {"port": free_port()}}))
        self.mark = uuid.uuid4().hex
        self.tmp = root / "tmp"  # the server's temporary files
        self.tmp.mkdir()
        self.lines: dict[str, list[tuple[float, str]]] = {"out": [], "err": []}
        self.proc = subprocess.Popen(
            kedro_cmd("mlflow", "ui", "--port", str(self.port), *options), cwd=self.project,
            env=kedro_env(**{MARK: self.mark, "TMPDIR": str(self.tmp)}), start_new_session=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._read, args=(name, stream), daemon=True).start()

    def _read(self, name: str, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines[name].append((time.monotonic(), line))

    def text(self, name: str) -> str:
        return "".join(line for _, line in self.lines[name])

    def wait_for(self, needle: str, name: str = "out", timeout: float = 240) -> float:
        """When ``needle`` was printed on stdout (``out``) or stderr (``err``)."""
        deadline = time.monotonic() + timeout
        exited_at: float | None = None
        while True:
            for at, line in list(self.lines[name]):
                if needle in line:
                    return at
            if exited_at is None and self.proc.poll() is not None:
                exited_at = time.monotonic()  # the readers get a second to drain its output
            assert exited_at is None or time.monotonic() < exited_at + 1, \
                f"kedro mlflow ui exited ({self.proc.returncode}):\n{self.text('out')}\n{self.text('err')[-3000:]}"
            assert time.monotonic() < deadline, f"no {needle!r} in {timeout}s:\n{self.text('err')[-3000:]}"
            time.sleep(0.1)

    def kill_everything(self) -> None:
        for pid in marked_processes(self.mark):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def uis(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Iterator[dict[str, Ui]]:
    """Five UIs started at once: ``hup`` (shared by the first tests, then hung up), ``kill`` (SIGKILLed),
    ``dies`` (its server is killed under it), ``race`` (another program takes its port while it starts),
    ``nohost`` (an address of no interface here: its server cannot listen)."""
    started = {name: Ui(tmp_path_factory.mktemp(f"ui-{name}"), template_db)
               for name in ("hup", "kill", "dies", "race")}
    started["nohost"] = Ui(tmp_path_factory.mktemp("ui-nohost"), template_db, "--host", UNASSIGNED)
    holder = socket.socket()
    try:
        # `mlflow ui` takes seconds to import before it binds: taking the port now wins the race
        started["race"].wait_for("Waiting for the MLflow UI", "err")
        holder.bind(("127.0.0.1", started["race"].port))
        holder.listen()
        yield started
    finally:
        holder.close()
        for ui in started.values():
            ui.kill_everything()


def test_ui_says_it_waits_and_prints_the_address_only_once_the_server_answers(uis):
    ui = uis["hup"]
    waiting = ui.wait_for(f"Waiting for the MLflow UI to start on http://127.0.0.1:{ui.port}...", "err")
    serving = ui.wait_for(f"Serving sqlite:///{ui.project / 'mlflow.db'} at http://127.0.0.1:{ui.port} (Ctrl-C to stop)")
    assert requests.get(f"http://127.0.0.1:{ui.port}/health", timeout=5).status_code == 200  # answered already
    assert waiting < serving
    assert "Waiting" not in ui.text("out") and "Serving" not in ui.text("err")  # progress on stderr, address on stdout
    assert "server process" in ui.text("err") and "server process" not in ui.text("out")  # uvicorn's log: stderr
    answer = requests.get(f"http://127.0.0.1:{ui.port}/api/2.0/mlflow/runs/get", params={"run_id": ui.run_id},
                          timeout=10)
    assert answer.status_code == 200 and answer.json()["run"]["info"]["status"] == "FINISHED"  # this project's store


def test_ui_refuses_a_port_in_use_naming_it_and_the_key_and_starts_nothing(uis, tmp_path, template_db):
    ui = uis["hup"]
    ui.wait_for("Serving")
    other = make_project(tmp_path, template_db=template_db, mlflow_yml={"ui": {"port": ui.port}})
    mark = uuid.uuid4().hex
    result = subprocess.run(kedro_cmd("mlflow", "ui"), cwd=other, capture_output=True, text=True, timeout=180,
                            env=kedro_env(**{MARK: mark, "TMPDIR": str(tmp_path)}))
    assert result.returncode == 1, result.stderr[-3000:]
    assert (f"Port {ui.port} on 127.0.0.1 is already in use (another MLflow UI or another program listens on it)"
            in result.stderr)
    assert "`kedro mlflow ui --port " in result.stderr and "ui.port in mlflow.yml" in result.stderr
    assert "Serving" not in result.stdout and "Waiting" not in result.stderr  # it did not even try
    assert marked_processes(mark) == []
    answer = requests.get(f"http://127.0.0.1:{ui.port}/api/2.0/mlflow/runs/get", params={"run_id": ui.run_id},
                          timeout=10)
    assert answer.status_code == 200  # the first UI still serves its own store


def test_sighup_to_ui_takes_its_whole_server_down(uis):
    ui = uis["hup"]
    ui.wait_for("Serving")
    before = marked_processes(ui.mark)
    assert len(before) >= 4, [command_line(p) for p in before]  # kedro, keeper, mlflow ui, uvicorn and its worker
    assert any("--workers 1" in " ".join(command_line(p)) for p in before), [command_line(p) for p in before]
    ui.proc.send_signal(signal.SIGHUP)  # a closed terminal; to `kedro mlflow ui` alone
    assert ui.proc.wait(timeout=60) == -signal.SIGHUP  # it ends the way the signal says, as a shell expects
    assert wait_until_gone(ui.mark) == []
    assert port_closed(ui.port)


def test_sigkill_of_ui_takes_its_whole_server_down(uis):
    ui = uis["kill"]
    ui.wait_for("Serving")
    before = marked_processes(ui.mark)
    assert any("uvicorn" in command_line(p) for p in before)  # grandchildren exist
    ui.proc.kill()
    ui.proc.wait(timeout=30)
    assert wait_until_gone(ui.mark) == [], "a process of the server outlived kedro mlflow ui"
    assert port_closed(ui.port)


def test_ui_exits_non_zero_when_its_server_dies(uis):
    ui = uis["dies"]
    ui.wait_for("Serving")
    (server,) = [p for p in marked_processes(ui.mark) if command_line(p)[1:4] == ["-m", "mlflow", "ui"]]
    os.kill(server, signal.SIGKILL)
    assert ui.proc.wait(timeout=60) == 1
    assert (f"The MLflow UI at http://127.0.0.1:{ui.port} stopped by itself (exit code 137): see its output above."
            in ui.text("err"))
    assert wait_until_gone(ui.mark) == []  # its uvicorn went with it


def test_every_stop_signal_takes_the_starting_server_down(tmp_path_factory, template_db):
    """Ctrl-C, kill and SIGQUIT while the server starts (SIGHUP, once it serves, is above); three at once."""
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
    started = [Ui(tmp_path_factory.mktemp(f"ui-{signum.name}"), template_db) for signum in signals]
    try:
        for ui in started:
            ui.wait_for("Waiting for the MLflow UI", "err")
        time.sleep(2)  # the keepers are starting `mlflow ui`
        for ui, signum in zip(started, signals, strict=True):
            assert any(command_line(p)[1:3] == ["-m", "kedro_mlflow_runs.cli._ui_server"]
                       for p in marked_processes(ui.mark))
            ui.proc.send_signal(signum)
        for ui, signum in zip(started, signals, strict=True):
            assert ui.proc.wait(timeout=60) == -signum, signum.name  # it ends on the signal, as a shell expects
            assert wait_until_gone(ui.mark) == [], signum.name
            assert "Serving" not in ui.text("out")
    finally:
        for ui in started:
            ui.kill_everything()


def test_ui_reports_the_port_when_another_program_takes_it_while_the_server_starts(uis):
    ui = uis["race"]
    assert ui.proc.wait(timeout=240) == 1, ui.text("err")[-3000:]
    assert (f"Port {ui.port} on 127.0.0.1 is already in use (another MLflow UI or another program listens on it)"
            in ui.text("err"))
    assert "ui.port in mlflow.yml" in ui.text("err") and "Serving" not in ui.text("out")
    assert wait_until_gone(ui.mark) == []


def test_ui_exits_non_zero_when_its_server_stops_before_it_answers(uis):
    ui = uis["nohost"]
    assert ui.proc.wait(timeout=240) == 1, ui.text("err")[-3000:]
    assert (f"The MLflow UI stopped before it answered on http://{UNASSIGNED}:{ui.port} (exit code "
            in ui.text("err")) and "see its output above." in ui.text("err")
    assert "Serving" not in ui.text("out") and "already in use" not in ui.text("err")
    assert wait_until_gone(ui.mark) == []


def test_the_keeper_kills_a_server_that_ignores_sigterm(tmp_path):
    """A server that ignores SIGTERM (or hangs shutting down) is killed after the grace period: the
    keeper's parent gone, nothing of the server is left (here with a 1 s grace period)."""
    mark = uuid.uuid4().hex
    stubborn = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
                "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)']); time.sleep(300)")
    keeper_code = ("import sys; from kedro_mlflow_runs.cli import _ui_server as k; k.GRACE_S = 1.0; "
                   "sys.exit(k.main(sys.argv[1:]))")
    read_end, write_end = os.pipe()
    env = {**os.environ, MARK: mark}
    keeper = subprocess.Popen([sys.executable, "-c", keeper_code, str(read_end), sys.executable, "-c", stubborn],
                              env=env, pass_fds=(read_end,))
    os.close(read_end)
    try:
        deadline = time.monotonic() + 60
        while len(marked_processes(mark)) < 3:  # the keeper, the server and its child
            assert time.monotonic() < deadline, marked_processes(mark)
            time.sleep(0.1)
        os.close(write_end)  # the keeper's parent is gone
        write_end = -1
        assert keeper.wait(timeout=30) == 128 + signal.SIGKILL  # the server died of the SIGKILL
        assert wait_until_gone(mark) == []
    finally:
        if write_end >= 0:
            os.close(write_end)
        if keeper.poll() is None:
            keeper.kill()
        for pid in marked_processes(mark):
            os.kill(pid, signal.SIGKILL)
