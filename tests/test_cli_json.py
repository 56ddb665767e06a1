"""`--json` for scripts: the JSON is the last line of stdout, and stdout holds nothing else when Kedro's own
start-up log line goes to stderr (KEDRO_LOGGING_CONFIG, as docs/cli.md shows)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import all_runs
from kedro_project import kedro_cmd, kedro_env, make_project, run_session, store_uri

pytestmark = pytest.mark.slow

#: the logging configuration docs/cli.md shows, word for word
STDERR_LOGGING = """\
version: 1
disable_existing_loggers: False
handlers:
  stderr:
    class: logging.StreamHandler
    stream: ext://sys.stderr
loggers:
  kedro:
    level: INFO
root:
  handlers: [stderr]
"""


def test_the_docs_show_this_logging_configuration():
    page = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    assert f"```yaml\n# conf/logging_stderr.yml\n{STDERR_LOGGING}```" in page
    assert "KEDRO_LOGGING_CONFIG=conf/logging_stderr.yml kedro mlflow show 3f9c1a2b --json" in page


def test_json_is_alone_on_stdout_with_kedro_logging_on_stderr_and_last_with_kedro_defaults(
        tmp_path, template_db):
    project = make_project(tmp_path, template_db=template_db,
                           local_files={"conf/logging_stderr.yml": STDERR_LOGGING})
    run_session(project)
    from mlflow import MlflowClient

    (run,) = all_runs(MlflowClient(tracking_uri=store_uri(project)))
    stderr_logging = kedro_env(KEDRO_LOGGING_CONFIG="conf/logging_stderr.yml")
    commands = {  # all at once: each `kedro` start costs seconds
        "runs": (["runs", "--json"], stderr_logging),
        "show": (["show", run.info.run_id[:8], "--json"], stderr_logging),
        "open-run": (["open-run", "--json", "--run-name", "scripted"], stderr_logging),
        "open-run bare": (["open-run"], stderr_logging),
        "runs default": (["runs", "--json"], kedro_env()),
    }
    procs = {name: subprocess.Popen(kedro_cmd("mlflow", *args), cwd=project, env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name, (args, env) in commands.items()}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, f"{name}: {stderr[-3000:]}"
        out[name] = (stdout, stderr)

    listed = json.loads(out["runs"][0])  # the whole of stdout
    assert [r["run_id"] for r in listed if r["run_id"] == run.info.run_id] == [run.info.run_id]
    assert "as logging configuration" in out["runs"][1]  # Kedro's line went to stderr
    shown = json.loads(out["show"][0])
    assert shown["run_id"] == run.info.run_id and shown["status"] == "FINISHED"
    opened = json.loads(out["open-run"][0])
    assert MlflowClient(tracking_uri=store_uri(project)).get_run(opened["run_id"]).info.run_name == "scripted"
    assert re.fullmatch(r"[0-9a-f]{32}\n", out["open-run bare"][0])  # the bare id alone

    stdout = out["runs default"][0]  # Kedro's default logging: its start-up line, then the JSON last
    *before, last = stdout.splitlines()
    assert run.info.run_id in {r["run_id"] for r in json.loads(last)}
    assert "Using" in before[0] and "as logging configuration" in " ".join(" ".join(before).split())  # rich wraps
    assert "WARNING" not in stdout  # none of the warnings of loading the project
