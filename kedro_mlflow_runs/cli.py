"""``kedro mlflow ...`` project commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from .config import safe_cause

TEMPLATE = """\
# kedro-mlflow-runs configuration. Every key is optional; delete what you do not need.
# Reference: docs/mlflow_yml.md of kedro-mlflow-runs.
server:
  mlflow_tracking_uri: null   # default: MLFLOW_TRACKING_URI, else sqlite:///<project>/mlflow.db
  mlflow_registry_uri: null
  credentials: null           # name of a credentials.yml entry exported as environment variables
  http:                       # MLflow's HTTP client; default: the MLFLOW_HTTP_REQUEST_* variables, else 5 / 1
    max_retries: null
    backoff_factor: null
    timeout: null

tracking:
  disable_tracking:
    pipelines: []             # pipelines that run with no MLflow call at all
  experiment:
    name: null                # default: MLFLOW_EXPERIMENT_NAME, else the package name
    restore_if_deleted: true
  run:
    id: null                  # attach to this run (default: MLFLOW_RUN_ID, else a new run)
    name: null                # default: the pipeline names
    nested: true              # a run already active in the session thread becomes the parent
    tags: {}
    attached:
      end_run: false          # end an attached run when the kedro run ends
      record_failure: false   # end an attached run as FAILED/KILLED when the kedro run fails
  params:
    dict_params:
      flatten: true
      recursive: true
      sep: "."
    long_params_strategy: fail  # fail | tag | truncate

ui:
  host: 127.0.0.1
  port: 5000
"""


@click.group(name="kedro-mlflow-runs")
def commands() -> None:
    """kedro-mlflow-runs commands."""


@commands.group(name="mlflow")
def mlflow_commands() -> None:
    """Work with the MLflow tracking of this Kedro project."""


def _project_config(env: str | None):  # type: ignore[no-untyped-def]
    """The project's validated mlflow.yml, with its ``server.credentials`` set in this process's environment."""
    import os

    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from .config import credentials_env, load_config

    metadata = bootstrap_project(Path.cwd())
    with KedroSession.create(project_path=metadata.project_path, env=env) as session:
        context = session.load_context()
        config = load_config(context)
        os.environ.update(credentials_env(config, context))  # a short-lived CLI process
        return config


@mlflow_commands.command(name="init")
@click.option("--env", "-e", default="local", show_default=True, help="Kedro environment to write to.")
@click.option("--force", is_flag=True, help="Overwrite an existing mlflow.yml.")
def init(env: str, force: bool) -> None:
    """Write a commented conf/<env>/mlflow.yml with every key and its default."""
    from kedro.framework.startup import bootstrap_project

    metadata = bootstrap_project(Path.cwd())
    target = Path(metadata.project_path) / "conf" / env / "mlflow.yml"
    if target.exists() and not force:
        raise click.ClickException(f"{target} already exists; pass --force to overwrite it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(TEMPLATE)
    click.echo(f"Wrote {target}")


@mlflow_commands.command(name="ui")
@click.option("--env", "-e", default=None, help="Kedro environment whose mlflow.yml to read.")
def ui(env: str | None) -> None:
    """Open the MLflow UI on this project's tracking store (``ui.host``/``ui.port``)."""
    config = _project_config(env)
    if config.tracking_uri.startswith(("http://", "https://")):
        click.echo(f"The tracking server is {config.redacted_tracking_uri}: open it in a browser.")
        return
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", config.tracking_uri,
           "--host", config.ui_host, "--port", str(config.ui_port)]
    raise SystemExit(subprocess.call(cmd))


@mlflow_commands.command(name="close-run")
@click.option("--run-id", default=None, help="Run to end. Default: tracking.run.id in mlflow.yml, else MLFLOW_RUN_ID.")
@click.option(
    "--status",
    type=click.Choice(["FINISHED", "FAILED", "KILLED"], case_sensitive=False),
    default="FINISHED",
    show_default=True,
    help="Status to end the run with.",
)
@click.option("--env", "-e", default=None, help="Kedro environment whose mlflow.yml to read.")
def close_run(run_id: str | None, status: str, env: str | None) -> None:
    """End a run that `kedro run` steps attached to (the last step of an orchestrated pipeline)."""
    from .errors import KedroMlflowRunsError
    from .tracking import Tracker

    config = _project_config(env)
    run_id = run_id or config.run_id
    if not run_id:
        raise click.ClickException(
            "No run to close: pass --run-id, set MLFLOW_RUN_ID, or set tracking.run.id in mlflow.yml."
        )
    tracker = Tracker(config.tracking_uri, config.registry_uri)
    try:
        run = tracker.get_run(run_id, source="--run-id" if run_id != config.run_id else config.run_id_source)
        if run.info.status != "RUNNING":
            click.echo(f"MLflow run {run_id} is already {run.info.status}; ending it as {status.upper()} anyway.")
        tracker.set_terminated(run_id, status.upper())
    except KedroMlflowRunsError as exc:
        raise click.ClickException(str(exc)) from safe_cause(exc)
    click.echo(f"Ended MLflow run {run_id} as {status.upper()} in {config.redacted_tracking_uri}.")
