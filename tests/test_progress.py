"""A transfer that takes seconds shows a status line on a terminal, and nothing when the output is not
a terminal or the transfer is quick: a real `kedro run` in a pseudo-terminal and through a pipe, its
artifact upload slowed down by 1.5 s (latency injected into MLflow's client at start-up)."""

from __future__ import annotations

import os
import select
import subprocess
import textwrap
from pathlib import Path

import pytest
from kedro_project import kedro_cmd, kedro_env, make_project

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="needs a pseudo-terminal")]

SLOW_UPLOADS = textwrap.dedent("""\
    import os
    if os.environ.get("KMR_TEST_UPLOAD_DELAY_S"):  # latency, injected into every artifact upload
        import time
        from mlflow.tracking.client import MlflowClient

        _original = MlflowClient.log_artifact

        def _slow(self, *args, **kwargs):
            time.sleep(float(os.environ["KMR_TEST_UPLOAD_DELAY_S"]))
            return _original(self, *args, **kwargs)

        MlflowClient.log_artifact = _slow
    """)


@pytest.fixture(scope="module")
def artifact_project(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("progress")
    project = make_project(root, template_db=template_db, catalog={
        "summary": {"type": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset",
                    "dataset": {"type": "json.JSONDataset", "filepath": "data/summary.json"}}})
    hooks = root / "site"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SLOW_UPLOADS)
    return project, hooks


def _in_terminal(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``cmd`` with a pseudo-terminal as its standard input, output and error."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(cwd)
        os.execve(cmd[0], cmd, env)
    out = b""
    try:
        while select.select([fd], [], [], 180)[0]:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            out += data
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def _env(hooks: Path, delay: str | None) -> dict[str, str]:
    env = kedro_env(PYTHONPATH=str(hooks), COLUMNS="250", TERM="xterm")
    if delay:
        env["KMR_TEST_UPLOAD_DELAY_S"] = delay
    return env


def test_a_slow_upload_shows_a_status_line_on_a_terminal(artifact_project):
    project, hooks = artifact_project
    code, out = _in_terminal(kedro_cmd("run"), project, _env(hooks, "1.5"))
    assert code == 0, out[-3000:]
    assert f"Logging '{project / 'data' / 'summary.json'}' (" in out and " B) to MLflow run " in out
    assert "s\r\n" in out.split(f"Logging '{project / 'data' / 'summary.json'}'")[-1]  # ended with its seconds


def test_nothing_is_shown_through_a_pipe_or_for_a_quick_transfer(artifact_project):
    project, hooks = artifact_project
    piped = subprocess.run(kedro_cmd("run"), cwd=project, env=_env(hooks, "1.5"), capture_output=True, text=True,
                           timeout=180)
    assert piped.returncode == 0, piped.stderr[-3000:]
    assert "Logging '" not in piped.stdout + piped.stderr
    code, out = _in_terminal(kedro_cmd("run"), project, _env(hooks, None))
    assert code == 0, out[-3000:]
    assert "Logging '" not in out


PARTS_NODES = '''
def split(data):
    return {"a": {"rows": 1}, "b": {"rows": 2}, "c": {"rows": 3}}
'''

PARTS_REGISTRY = '''
from kedro.pipeline import node, pipeline

from .nodes import split


def register_pipelines():
    return {"__default__": pipeline([node(split, "params:data", "parts", name="split")])}
'''


def test_partitions_logged_one_by_one_show_one_status_line_for_the_save(tmp_path, template_db, artifact_project):
    """Three partitions of 0.6 s each: no single upload lasts a second, the save does, and it says so once."""
    _, hooks = artifact_project
    project = make_project(tmp_path, template_db=template_db, nodes=PARTS_NODES, registry=PARTS_REGISTRY, catalog={
        "parts": {"type": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset", "dataset": {
            "type": "partitions.PartitionedDataset", "path": "data/parts", "dataset": "json.JSONDataset",
            "filename_suffix": ".json"}}})
    (project / "data" / "parts").mkdir(parents=True)
    (project / "data" / "parts" / "old.json").write_text("{}")  # an earlier run's: logged one by one
    code, out = _in_terminal(kedro_cmd("run"), project, _env(hooks, "0.6"))
    assert code == 0, out[-3000:]
    assert f"Logging 3 partition(s) of '{project / 'data' / 'parts'}' to MLflow run " in out, out[-3000:]
    assert "Logging '" not in out  # no line per partition
