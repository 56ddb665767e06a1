"""What a newcomer meets first, from the command line: a normal run prints no warning of the plugin's,
a config mistake is one block that says where (file and line) and how to fix it, and every error the
plugin raises has its entry in the troubleshooting page."""

from __future__ import annotations

import inspect
import re
import subprocess
from pathlib import Path

import pytest
from kedro_project import kedro_cmd, kedro_env, kedro_run, make_project

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _warnings(output: str) -> list[str]:
    """The warnings a `kedro run` printed (Kedro's rich log lines, each `WARNING` line's message)."""
    return sorted(re.sub(r"\s+", " ", line.split("WARNING", 1)[1]).split(" warnings.py")[0].strip()
                  for line in output.splitlines() if "WARNING" in line)


def test_a_normal_run_prints_no_warning_the_plugin_causes(tmp_path, template_db):
    """The same project with the plugin's hooks and without them (Kedro's DISABLE_HOOKS_FOR_PLUGINS):
    the warnings are the same ones (Kedro's own), none added by the plugin."""
    tracked = make_project(tmp_path / "tracked", template_db=template_db)
    bare = make_project(tmp_path / "bare", settings='DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow-runs",)\n')
    env = kedro_env(COLUMNS="250")
    with_plugin, without = kedro_run(tracked, env=env), kedro_run(bare, env=env)
    assert with_plugin.returncode == 0, with_plugin.stdout[-3000:] + with_plugin.stderr[-3000:]
    assert without.returncode == 0, without.stdout[-3000:] + without.stderr[-3000:]
    assert "MLflow run" in with_plugin.stdout and "MLflow run" not in without.stdout  # the plugin ran, once
    assert _warnings(with_plugin.stdout + with_plugin.stderr) == _warnings(without.stdout + without.stderr)
    assert "kedro_mlflow_runs" not in with_plugin.stderr


@pytest.mark.parametrize(("mlflow_yml", "expected"), [
    ("tracking:\n  name: nightly\n",  # a nesting mistake
     "Error: ConfigError: Unknown key 'tracking.name' in conf/base/mlflow.yml, line 2. Known keys here: autolog, "
     "child_runs, disable_tracking, experiment, lineage, params, run, system_metrics, timeline. 'name' belongs under "
     "'tracking.experiment' or 'tracking.run': move it there (indented under that section) or remove it."),
    ("tracking:\n  experiment:\n    name: [nightly\n  run:\n    name: x\n",  # a bracket left open
     "Error: ConfigError: mlflow.yml is not valid YAML: conf/base/mlflow.yml, line 4, column 6: while parsing a "
     "flow sequence (from line 3): expected ',' or ']', but got ':'. Fix the YAML syntax there (indentation, a "
     "missing ':', an unclosed bracket or quote)."),
], ids=["nesting", "yaml"])
def test_a_config_mistake_is_one_block_with_the_file_line_and_fix(tmp_path, template_db, mlflow_yml, expected):
    project = make_project(tmp_path, template_db=template_db, mlflow_yml=mlflow_yml)
    result = kedro_run(project, env=kedro_env(COLUMNS="400"))
    assert result.returncode == 1
    assert result.stderr.strip() == expected
    if "YAML" in expected:  # the configuration page and troubleshooting show this message as it is
        assert expected.removeprefix("Error: ") in (DOCS / "mlflow_yml.md").read_text()
        assert expected.removeprefix("Error: ") in (DOCS / "troubleshooting.md").read_text()
    assert "Traceback" not in result.stdout + result.stderr and "╭" not in result.stdout


def test_every_error_class_of_the_plugin_has_a_troubleshooting_entry():
    import kedro_mlflow_runs.errors as errors

    classes = [obj for _, obj in inspect.getmembers(errors, inspect.isclass)
               if issubclass(obj, Exception) and obj.__module__ == errors.__name__]
    found: list[type] = []
    todo = list(classes)
    while todo:  # subclasses defined elsewhere in the package too
        cls = todo.pop()
        if cls not in found and cls.__module__.startswith("kedro_mlflow_runs"):
            found.append(cls)
            todo.extend(cls.__subclasses__())
    assert len(found) >= 6
    page = (DOCS / "troubleshooting.md").read_text()
    headings = re.findall(r"^#+ .*$", page, flags=re.M)
    missing = [cls.__name__ for cls in found if not any(cls.__name__ in h for h in headings)]
    assert missing == [], f"no troubleshooting heading names {missing}"


def test_outside_a_project_the_message_is_the_one_troubleshooting_quotes(tmp_path):
    result = subprocess.run(kedro_cmd("mlflow", "runs"), cwd=tmp_path, env=kedro_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    message = next(line for line in result.stderr.splitlines() if line.startswith("Error:"))
    assert message in (DOCS / "troubleshooting.md").read_text()
