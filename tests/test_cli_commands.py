"""`kedro mlflow init`: a commented mlflow.yml that the plugin accepts as it is."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from conftest import all_runs
from kedro_project import kedro_cmd, kedro_env, run_session

pytestmark = pytest.mark.slow


def test_init_writes_a_valid_commented_template_and_refuses_to_overwrite(project, client_for):
    first = subprocess.run(kedro_cmd("mlflow", "init"), cwd=project, env=kedro_env(), capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    target = project / "conf" / "local" / "mlflow.yml"
    text = target.read_text()
    from kedro_mlflow_runs.config.template import render_template

    assert text == render_template()  # every key of the schema, with its default and a comment
    assert "  request_header_provider:\n    type: null" in text and "long_params_strategy: fail" in text

    run_session(project)  # every key of the template validates
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FINISHED"

    target.write_text(text + "\n# my edit\n")
    again = subprocess.run(kedro_cmd("mlflow", "init"), cwd=project, env=kedro_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode != 0
    assert "already has an mlflow configuration (conf/local/mlflow.yml)" in again.stderr and "--force" in again.stderr
    assert target.read_text().endswith("# my edit\n")  # nothing overwritten


def test_init_never_changes_the_configuration_of_a_project_that_has_one(project_factory):
    project = project_factory(mlflow_yml={"tracking": {"experiment": {"name": "team"}, "run": {"tags": {"a": 1}}}})
    base = (project / "conf" / "base" / "mlflow.yml").read_text()
    result = subprocess.run(kedro_cmd("mlflow", "init"), cwd=project / "src", env=kedro_env(),
                            capture_output=True, text=True, timeout=120)  # from a subdirectory, as kedro run allows
    assert result.returncode != 0
    assert "conf/base/mlflow.yml" in result.stderr
    assert not (project / "conf" / "local" / "mlflow.yml").exists()
    assert (project / "conf" / "base" / "mlflow.yml").read_text() == base


def test_commands_work_from_a_project_subdirectory_and_fail_clearly_outside(project, tmp_path):
    inside = subprocess.run(kedro_cmd("mlflow", "init"), cwd=project / "conf", env=kedro_env(),
                            capture_output=True, text=True, timeout=120)
    assert inside.returncode == 0, inside.stderr[-2000:]
    assert (project / "conf" / "local" / "mlflow.yml").exists()
    stale = subprocess.run(kedro_cmd("mlflow", "close-run", "--stale"), cwd=project / "src", env=kedro_env(),
                           capture_output=True, text=True, timeout=120)
    assert stale.returncode == 0, stale.stderr[-2000:]
    assert "is RUNNING" in stale.stdout or "still RUNNING" in stale.stdout


@pytest.mark.parametrize("where", ["conf/base/mlflow/tracking.yml", "conf/base/sub/mlflow.yml",
                                   "conf/staging/mlflow_team.json"])
def test_init_refuses_when_kedro_reads_an_mlflow_configuration_from_a_folder(project_factory, where):
    """Every file Kedro's config loader reads for mlflow.yml counts, nested ones included."""
    import json

    from kedro_mlflow_runs.config import config_from_project

    project = project_factory()
    content = {"tracking": {"experiment": {"name": "team"}}}
    (project / where).parent.mkdir(parents=True, exist_ok=True)
    (project / where).write_text(json.dumps(content) if where.endswith(".json") else yaml.safe_dump(content))
    if "staging" not in where:  # kedro run reads it: init would redirect the runs
        assert config_from_project(project).tracking.experiment.name == "team"
    result = subprocess.run(kedro_cmd("mlflow", "init"), cwd=project, env=kedro_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert f"already has an mlflow configuration ({where})" in result.stderr
    assert not (project / "conf" / "local" / "mlflow.yml").exists()


def test_init_ignores_files_kedro_does_not_read(project_factory):
    project = project_factory()
    for rel in ("conf/base/mlflow/notes.txt", "conf/base/.old/mlflow.yml", "conf/base/mlflow_backup/.hidden.yml"):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text("tracking: {experiment: {name: ignored}}\n")
    from kedro_mlflow_runs.config import config_from_project

    assert config_from_project(project).tracking.experiment.name != "ignored"  # Kedro reads none of them
    result = subprocess.run(kedro_cmd("mlflow", "init"), cwd=project, env=kedro_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (project / "conf" / "local" / "mlflow.yml").exists()
