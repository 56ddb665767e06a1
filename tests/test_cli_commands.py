"""`kedro mlflow init`: a commented mlflow.yml that the plugin accepts as it is."""

from __future__ import annotations

import subprocess

import pytest
from conftest import all_runs
from kedro_project import kedro_cmd, kedro_env, run_session

pytestmark = pytest.mark.slow


def test_init_writes_a_valid_commented_template_and_refuses_to_overwrite(project, client_for):
    first = subprocess.run(kedro_cmd("mlflow", "init"), cwd=project, env=kedro_env(), capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    target = project / "conf" / "local" / "mlflow.yml"
    text = target.read_text()
    assert "long_params_strategy" in text and "#" in text

    run_session(project)  # every key of the template validates
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FINISHED"

    target.write_text(text + "\n# my edit\n")
    again = subprocess.run(kedro_cmd("mlflow", "init"), cwd=project, env=kedro_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode != 0
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert target.read_text().endswith("# my edit\n")  # nothing overwritten
