"""``kedro mlflow open-run``: open a run for an orchestrator, whose steps then attach to it."""

from __future__ import annotations

import json

import click


@click.command(name="open-run")
@click.option("--experiment", default=None,
              help="Experiment of the run (default: the project's), created when it does not exist.")
@click.option("--run-name", default=None, help="Name of the run (default: tracking.run.name, else MLflow's).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag to set on the run (repeatable).")
@click.option("--json", "as_json", is_flag=True, help='Print {"run_id": ...} instead of the bare id.')
@click.option("--env", "-e", default=None, help="Kedro environment whose mlflow.yml to read.")
def open_run(experiment: str | None, run_name: str | None, tags: tuple[str, ...], as_json: bool,
             env: str | None) -> None:
    """Open an MLflow run for an orchestrator's steps, and print its id.

    Nothing else is printed. Each step then attaches with MLFLOW_RUN_ID=<id> (or tracking.run.id);
    `kedro mlflow close-run --run-id <id> --status auto` ends it. Kedro itself may print its own
    start-up log line first: take the last line of the output.

    Example: RUN_ID=$(kedro mlflow open-run --run-name nightly | tail -n 1)
    """
    # the plugin's heavier parts (Kedro's session, the MLflow boundary) load when the command runs,
    # not for every `kedro` command
    from .._redact import safe_cause
    from ..errors import KedroMlflowRunsError
    from ..framework.run_info import current_user, run_tags_of_opener
    from ..tracking import Tracker
    from ._project import quiet_project_config

    extra: dict[str, str] = {}
    for item in tags:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE.", param_hint="--tag")
        extra[key.strip()] = value
    config = quiet_project_config(env)
    tracker = Tracker(config.server.tracking_uri, config.server.registry_uri)
    name = experiment or config.tracking.experiment.name
    try:
        experiment_id = tracker.ensure_experiment(
            name, artifact_location=config.artifact_location if not experiment else None,
            restore_if_deleted=config.tracking.experiment.restore_if_deleted, tags=config.tracking.experiment.tags)
        run = tracker.create_run(experiment_id, run_name=run_name or config.tracking.run.name,
                                 tags={**config.tracking.run.tags, **run_tags_of_opener(config), **extra,
                                       **({"mlflow.user": user} if (user := current_user()) else {})})
    except KedroMlflowRunsError as exc:
        raise click.ClickException(str(exc)) from safe_cause(exc)
    click.echo(json.dumps({"run_id": run.info.run_id}) if as_json else run.info.run_id)
