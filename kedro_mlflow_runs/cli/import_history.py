"""``kedro mlflow import-history``: Kedro-Viz experiment tracking's history as MLflow runs (read in
``_viz_history.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

if TYPE_CHECKING:  # pragma: no cover
    from ._viz_history import VizSession

#: The tag naming the Kedro session an imported run came from: a second import skips it.
SESSION_TAG: Final = "kedro_viz.session_id"


@click.command(name="import-history")
@click.option("--env", "-e", default=None, help="The Kedro environment whose mlflow.yml and catalog to read.")
@click.option("--session-store", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Kedro-Viz's session_store.db (default: session_store.db, data/ or .viz/ of the project).")
@click.option("--write", is_flag=True, help="Create the runs; default: show what would be created.")
def import_history(env: str | None, session_store: Path | None, write: bool) -> None:
    """Turn Kedro-Viz experiment tracking's history into MLflow runs.

    Reads the versioned files of the catalog's tracking.MetricsDataset, tracking.JSONDataset and
    versioned plot datasets, and Viz's session store when there is one. Each Kedro session becomes
    a FINISHED run of the project's experiment, with its start time, git commit, command, metrics
    (<entry>.<name>), JSON values and plots. Sessions imported before are skipped.

    Example: kedro mlflow import-history, then kedro mlflow import-history --write
    """
    from ..errors import KedroMlflowRunsError
    from ._project import project_config, project_root
    from ._viz_history import find_session_store, read_history, tracking_entries

    root = project_root()
    try:
        store = find_session_store(root, session_store)
        sessions = read_history(root, tracking_entries(root, env), store)
    except KedroMlflowRunsError as exc:
        raise click.ClickException(str(exc)) from None
    if not sessions:
        click.echo("No Kedro-Viz history found: no versioned file of a tracking or plot dataset in the catalog "
                   "(conf/ and its .bak copies), and no session store (pass it with --session-store).")
        return
    config = project_config(env)
    from mlflow import MlflowClient

    from .._redact import redact_uri
    from ..tracking import sqlite_path

    name = config.tracking.experiment.name
    database = sqlite_path(config.server.tracking_uri)
    no_store_yet = database is not None and not Path(database).exists()  # a dry run must not create it
    client = None if no_store_yet and not write else MlflowClient(config.server.tracking_uri,
                                                                   config.server.registry_uri)
    experiment = client.get_experiment_by_name(name) if client is not None else None
    done = _imported(client, experiment.experiment_id, replace_failed=write) if experiment is not None else set()
    todo = [s for s in sessions if s.version not in done]
    where = f"experiment '{name}' of {redact_uri(config.server.tracking_uri)}"
    click.echo(f"Kedro-Viz history: {len(sessions)} session(s){f' in {store}' if store else ''}; "
               f"{len(sessions) - len(todo)} imported before.")
    for session in todo:
        click.echo(f"  {session.version}  {session.command or '-'}  metrics: {len(session.metrics)}, "
                   f"params: {len(session.params)}, files: {len(session.files)}")
    if not todo:
        click.echo("Nothing to import.")
        return
    if not write:
        click.echo(f"Dry run: nothing was created. Run with --write to create {len(todo)} run(s) in {where}.")
        return
    from ..tracking import Tracker

    experiment_id = Tracker(config.server.tracking_uri, config.server.registry_uri).ensure_experiment(
        name, artifact_location=config.artifact_location,
        restore_if_deleted=config.tracking.experiment.restore_if_deleted, tags=config.tracking.experiment.tags)
    for session in todo:
        run_id = _import(client, experiment_id, session)
        click.echo(f"Imported {session.version} as MLflow run {run_id}")
    click.echo(f"Created {len(todo)} run(s) in {where}.")


def _imported(client: Any, experiment_id: str, *, replace_failed: bool) -> set[str]:
    """The sessions imported before: FINISHED runs with the session tag. A failed import is done again:
    with ``replace_failed`` its run is deleted first (a dry run deletes nothing)."""
    found: set[str] = set()
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.`{SESSION_TAG}` LIKE '%'",
                                  max_results=1000, page_token=token)
        for run in page:
            if run.info.status == "FINISHED":
                found.add(run.data.tags[SESSION_TAG])
            elif replace_failed:
                client.delete_run(run.info.run_id)
        token = page.token
        if not token:
            return found


def _tags(session: VizSession) -> dict[str, str]:
    from .._redact import redact_uri

    git = session.info.get("git") or {}
    tags = {SESSION_TAG: session.version, "mlflow.source.type": "LOCAL"}
    if git.get("commit_sha"):
        tags["mlflow.source.git.commit"] = str(git["commit_sha"])
    if git.get("branch"):
        tags["mlflow.source.git.branch"] = str(git["branch"])
    if "dirty" in git:
        tags["kedro_viz.git_dirty"] = str(bool(git["dirty"])).lower()
    if session.command:
        tags["kedro.command"] = redact_uri(session.command, limit=5000)
    if session.info.get("username"):
        tags["mlflow.user"] = str(session.info["username"])
    if session.details.get("notes"):
        tags["mlflow.note.content"] = str(session.details["notes"])
    if session.details.get("bookmark"):
        tags["kedro_viz.bookmark"] = "true"
    return tags


def _import(client: Any, experiment_id: str, session: VizSession) -> str:
    """One FINISHED run holding ``session``; a failure ends it FAILED (a later import replaces it)."""
    from mlflow.entities import Metric, Param

    from ._viz_history import version_ms

    start = version_ms(session.version)
    title = session.details.get("title")
    run = client.create_run(experiment_id, start_time=start, tags=_tags(session),
                            run_name=str(title) if title else f"kedro-viz {session.version}")
    run_id = run.info.run_id
    current = "the metrics and parameters"
    try:
        metrics = [Metric(k, v, start, 0) for k, v in sorted(session.metrics.items())]
        params = [Param(k, v) for k, v in sorted(session.params.items())]
        for i in range(0, len(params), 100):  # MLflow's limits per batch
            client.log_batch(run_id, params=params[i:i + 100])
        for i in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[i:i + 1000])
        for path in session.files:
            current = str(path)
            client.log_artifact(run_id, str(path))
        client.set_terminated(run_id, "FINISHED", end_time=start)
    except Exception as exc:
        client.set_terminated(run_id, "FAILED")
        raise click.ClickException(f"Could not import Kedro-Viz session {session.version} ({current}) into MLflow "
                                   f"run {run_id}: {type(exc).__name__}: {exc}. Run the command again: it "
                                   f"replaces that run.") from None
    return str(run_id)
