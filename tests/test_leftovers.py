"""Nothing left behind in the temporary folder: not by a signal exit of a ParallelRunner run (its
manager's ``pymp-*`` folder), and not for long by a ``kill -9`` (the run's spool folder is reclaimed
by the next run), while the spool of a run still in progress is never touched."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import all_runs
from kedro_project import kedro_cmd, kedro_env, kedro_run, wait_until_started

pytestmark = pytest.mark.slow


def _start(project: Path, tmpdir: Path, marker: Path, *, sleep: float, context: str = "fork",
           gate: Path | None = None) -> subprocess.Popen[str]:
    """``kedro run --runner ParallelRunner`` whose train node sleeps (then waits for ``gate`` to exist),
    in its own session (process group)."""
    held = f",model.gate={gate}" if gate else ""
    return subprocess.Popen(
        kedro_cmd("run", "--runner", "ParallelRunner", "--params",
                  f"model.sleep={sleep},model.started_marker={marker}{held}"),
        cwd=project, env=kedro_env(TMPDIR=str(tmpdir), KEDRO_MP_CONTEXT=context), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True)


@pytest.fixture
def private_tmp() -> Iterator[Path]:
    """A temporary folder of its own for the run's processes, with a short path: multiprocessing puts a
    unix socket in it, and those paths are limited to 108 characters (pytest's tmp_path can be longer)."""
    folder = Path(tempfile.mkdtemp(prefix="kmr-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_a_sigterm_leaves_no_temporary_folder(project, tmp_path, client_for, context, private_tmp):
    tmpdir = private_tmp
    marker = tmp_path / "started"
    proc = _start(project, tmpdir, marker, sleep=60, context=context)
    try:
        wait_until_started(marker, proc)
        assert any(p.name.startswith("pymp-") for p in tmpdir.iterdir())  # the manager's folder exists
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGTERM, output[-3000:]
    assert sorted(p.name for p in tmpdir.iterdir()) == []
    (run,) = all_runs(client_for(project))
    assert run.info.status == "KILLED"


def test_the_spool_of_a_killed_run_is_reclaimed_and_a_live_one_never(project, tmp_path, client_for, private_tmp):
    tmpdir = private_tmp
    # a run killed with kill -9 (the whole process group: its workers too) leaves its spool folder
    marker = tmp_path / "started"
    killed = _start(project, tmpdir, marker, sleep=60)
    try:
        wait_until_started(marker, killed)
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
    (abandoned,) = [p for p in tmpdir.iterdir() if p.name.startswith("kedro-mlflow-runs-spool-")]
    # a run in progress meanwhile, with a worker that records into its own spool
    marker.unlink()
    gate = tmp_path / "gate"
    live = _start(project, tmpdir, marker, sleep=0, gate=gate)  # held until the quick run is done
    try:
        wait_until_started(marker, live)
        spools = {p for p in tmpdir.iterdir() if p.name.startswith("kedro-mlflow-runs-spool-")}
        (live_spool,) = spools - {abandoned}
        # the next run reclaims the abandoned spool and leaves the live one alone
        quick = kedro_run(project, "--pipeline", "data", env=kedro_env(TMPDIR=str(tmpdir)))
        assert quick.returncode == 0, quick.stderr[-3000:]
        assert not abandoned.exists()
        assert live_spool.exists() and live.poll() is None
        gate.write_text("go")
        output, _ = live.communicate(timeout=180)
    finally:
        if live.poll() is None:
            os.killpg(live.pid, signal.SIGKILL)
            live.wait()
    assert live.returncode == 0, output[-3000:]
    assert not live_spool.exists()  # removed by its owner at the end
    client = client_for(project)
    finished = [r for r in all_runs(client) if r.data.tags.get("kedro.runner") == "ParallelRunner"
                and r.info.status == "FINISHED"]
    (run,) = finished
    timeline = json.loads(Path(client.download_artifacts(run.info.run_id, "kedro/timeline.json", str(tmp_path)))
                          .read_text())
    train = next(e for e in timeline if e["node"] == "train")
    assert train["status"] == "completed" and train["worker"]["pid"] != int(run.data.tags["kedro.pid"])
