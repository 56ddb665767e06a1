"""``kedro mlflow close-run``: end a run that steps attached to, or the runs left RUNNING."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.entities import Run

    from ..config import MlflowConfig
    from ..tracking import Tracker


@click.command(name="close-run")
@click.option("--run-id", default=None, help="Run to end. Default: tracking.run.id in mlflow.yml, else MLFLOW_RUN_ID.")
@click.option(
    "--status",
    type=click.Choice(["FINISHED", "FAILED", "KILLED"], case_sensitive=False),
    default=None,
    help="Status to end the run with (default FINISHED; KILLED with --stale).",
)
@click.option("--stale", is_flag=True,
              help="List the project's runs still RUNNING (left by kill -9 or a lost machine) instead.")
@click.option("--yes", is_flag=True, help="With --stale: end every listed run (as --status, default KILLED).")
@click.option("--env", "-e", default=None, help="Kedro environment whose mlflow.yml to read.")
def close_run(run_id: str | None, status: str | None, stale: bool, yes: bool, env: str | None) -> None:
    """End a run `kedro run` steps attached to, or list and end runs left RUNNING.

    Examples: kedro mlflow close-run --status FAILED; kedro mlflow close-run --stale [--yes]
    """
    # the plugin's heavier parts (Kedro's session, the MLflow boundary) load when the command runs,
    # not for every `kedro` command
    from .._redact import safe_cause
    from ..errors import KedroMlflowRunsError
    from ..tracking import Tracker
    from ._project import project_config

    config = project_config(env)
    tracker = Tracker(config.server.tracking_uri, config.server.registry_uri)
    try:
        if stale:
            _close_stale(tracker, config, (status or "KILLED").upper(), yes)
            return
        status = (status or "FINISHED").upper()
        run_id = run_id or config.tracking.run.id
        if not run_id:
            raise click.ClickException(
                "No run to close: pass --run-id, set MLFLOW_RUN_ID, or set tracking.run.id in mlflow.yml "
                "(or list runs left RUNNING with --stale)."
            )
        source = "--run-id" if run_id != config.tracking.run.id else config.tracking.run.id_source
        run = tracker.get_run(run_id, source=source)
        if run.info.status != "RUNNING":
            click.echo(f"MLflow run {run_id} is already {run.info.status}; ending it as {status} anyway.")
        _merge_parts(tracker, run_id, status)
        tracker.set_terminated(run_id, status)
    except KedroMlflowRunsError as exc:
        raise click.ClickException(str(exc)) from safe_cause(exc)
    click.echo(f"Ended MLflow run {run_id} as {status} in {config.server.redacted_tracking_uri}.")


def _merge_parts(tracker: Tracker, run_id: str, status: str) -> None:
    """The timeline and outputs of every `kedro run` that attached to the run, merged once more."""
    from ..recording.parts import merge_parts

    try:
        parts = merge_parts(tracker, run_id, status=status)
    except Exception as exc:  # closing the run matters more
        click.echo(f"Could not merge the node timelines of MLflow run {run_id}: {type(exc).__name__}: {exc}", err=True)
        return
    if parts:
        click.echo(f"Merged the node timelines of {parts} Kedro run(s) into kedro/timeline.json.")


def _close_stale(tracker: Tracker, config: MlflowConfig, status: str, yes: bool) -> None:
    """List the experiment's RUNNING runs; with ``yes``, end those not known to be in progress as ``status``."""
    from ..framework.run_info import opened_by_a_live_process

    runs = tracker.running_kedro_runs(config.tracking.experiment.name)
    if not runs:
        click.echo(f"No run of experiment '{config.tracking.experiment.name}' is RUNNING in "
                   f"{config.server.redacted_tracking_uri}.")
        return
    click.echo(f"Runs of experiment '{config.tracking.experiment.name}' still RUNNING:")
    stale: list[Run] = []
    for run in runs:
        started = datetime.fromtimestamp(run.info.start_time / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        alive = opened_by_a_live_process(run.data.tags)
        if alive:
            note = (f"in progress: process {run.data.tags['kedro.pid']} on this host is alive; left alone "
                    f"(end it with: kedro mlflow close-run --run-id {run.info.run_id})")
        else:
            stale.append(run)
            note = "its process is gone" if alive is False else (
                f"opened on host {run.data.tags.get('kedro.host', '?')}: cannot tell whether it is still running")
        kedro_run = run.data.tags.get("kedro.run_id", "?")
        click.echo(f"  {run.info.run_id}  kedro run {kedro_run}  started {started}  ({note})")
    if not stale:
        click.echo("Nothing to end.")
        return
    if not yes:
        click.echo(f"Pass --yes to end the {len(stale)} run(s) not known to be in progress as {status}.")
        return
    for run in stale:
        tracker.set_terminated(run.info.run_id, status)
    click.echo(f"Ended {len(stale)} run(s) as {status}.")
