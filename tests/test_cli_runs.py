"""`kedro run` as a user types it, in a subprocess: tags, signals, disabled tracking, hook registration."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
from conftest import all_runs
from kedro_project import kedro_env, kedro_run, signal_mid_node, wait_until_started

pytestmark = pytest.mark.slow


def test_kedro_run_cli_tags_the_command_and_prints_where_the_run_is(project, client_for):
    result = kedro_run(project, "--pipeline", "training", "--runner", "ThreadRunner")
    assert result.returncode == 0, result.stderr[-3000:]

    (run,) = all_runs(client_for(project))
    assert run.info.status == "FINISHED"
    assert run.data.tags["kedro.command"] == "kedro run --pipeline training --runner ThreadRunner"
    assert run.data.tags["kedro.runner"] == "ThreadRunner"
    assert run.data.tags["kedro.pipeline_names"] == "training"
    printed = "".join((result.stdout + result.stderr).split())  # Kedro's log handler wraps lines anywhere
    assert run.info.run_id in printed
    assert "mlflowui--backend-store-uri" in printed


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT],
                         ids=["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"])
def test_signal_mid_node_ends_the_run_killed(project, client_for, tmp_path, signum):
    marker = tmp_path / "started"
    # Kedro's runners wait for a running node before SIGINT's KeyboardInterrupt ends the process:
    # the node sleeps 6 s, well within the 90 s we wait
    proc, output = signal_mid_node(project, marker, signum, sleep=6)

    assert proc.returncode != 0, output[-3000:]
    (run,) = all_runs(client_for(project))
    assert run.info.status == "KILLED", output[-3000:]
    assert run.info.end_time is not None
    assert run.data.tags["kedro.error.type"] == "kedro_mlflow_runs.errors.RunInterruptedError"
    assert signal.Signals(signum).name in run.data.tags["kedro.error.message"]
    if signum != signal.SIGINT:
        assert proc.returncode == -signum  # the previous (default) handler still ran
    else:
        # KeyboardInterrupt still reached Kedro's CLI (click reports it as "Aborted!")
        assert "Aborted!" in output or "KeyboardInterrupt" in output


def test_disabled_pipeline_runs_without_importing_mlflow(project_factory):
    project = project_factory(mlflow_yml={"tracking": {"disable_tracking": {"pipelines": ["quiet"]}}})
    script = textwrap.dedent(
        f"""
        import sys
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project
        bootstrap_project({str(project)!r})
        with KedroSession.create(project_path={str(project)!r}) as session:
            session.run(pipeline_names=["quiet"])
        import kedro_mlflow_runs.hooks  # the plugin's hooks were loaded and ran
        print("MLFLOW_IMPORTED", "mlflow" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], env=kedro_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MLFLOW_IMPORTED False" in result.stdout
    assert not (project / "mlflow.db").exists() or _run_count(project) == 0
    assert not (project / "mlartifacts").exists()


def _run_count(project) -> int:
    from kedro_project import store_uri
    from mlflow import MlflowClient

    return len(all_runs(MlflowClient(store_uri(project))))


SETTINGS_SECOND_INSTANCE = """
from kedro_mlflow_runs.hooks import MlflowRunsHooks
HOOKS = (MlflowRunsHooks(),)
"""

SETTINGS_MANUAL_ONLY = """
from kedro_mlflow_runs import MlflowRunsHooks
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow-runs",)
HOOKS = (MlflowRunsHooks(),)
"""

SETTINGS_PLUGIN_INSTANCE = """
from kedro_mlflow_runs.hooks import plugin_hooks
HOOKS = (plugin_hooks,)
"""

SETTINGS_DISABLED = """
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow-runs",)
"""


@pytest.mark.parametrize(
    ("settings", "expected_runs"),
    [(SETTINGS_SECOND_INSTANCE, 1), (SETTINGS_PLUGIN_INSTANCE, 1), (SETTINGS_MANUAL_ONLY, 1), (SETTINGS_DISABLED, 0)],
    ids=["entry-point-plus-settings", "plugin-instance-in-settings", "settings-only", "disabled"],
)
def test_hook_registration_variants(project_factory, settings, expected_runs):
    project = project_factory(settings=settings)
    result = kedro_run(project)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _run_count(project) == expected_runs


def test_a_signal_handler_the_program_installed_still_runs_after_the_run_ends_killed(project, client_for, tmp_path):
    """A program that runs a session and handles SIGTERM itself: the run ends KILLED first, then its own
    handler runs (the guard chains to it) and decides how the process ends."""
    marker, handled = tmp_path / "started", tmp_path / "handled"
    script = textwrap.dedent(f"""
        import signal, sys
        from pathlib import Path
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        def mine(signum, frame):
            Path({str(handled)!r}).write_text(signal.Signals(signum).name)
            sys.exit(7)

        signal.signal(signal.SIGTERM, mine)
        bootstrap_project({str(project)!r})
        with KedroSession.create(project_path={str(project)!r}, runtime_params={{
                "model": {{"sleep": 30, "started_marker": {str(marker)!r}}}}}) as session:
            session.run()
        """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=kedro_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_started(marker, proc)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 7, output[-3000:]  # the program's own handler ended the process
    assert handled.read_text() == "SIGTERM"
    (run,) = all_runs(client_for(project))
    assert run.info.status == "KILLED" and "SIGTERM" in run.data.tags["kedro.error.message"]
