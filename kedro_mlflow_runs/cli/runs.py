"""``kedro mlflow runs`` and ``kedro mlflow show``: the project's runs, and one run in detail."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.entities import Run

    from ..config import MlflowConfig
    from ..tracking import Tracker


_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")


class StatusChoice(click.Choice):  # type: ignore[type-arg]  # generic in click 8.2, not in 8.1
    """A case-insensitive choice that shows its choices as written (MLflow's statuses are uppercase;
    click 8.2 shows a case-insensitive choice's choices casefolded)."""

    def __init__(self, choices: tuple[str, ...]) -> None:
        super().__init__(choices, case_sensitive=False)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return f"[{'|'.join(self.choices)}]"

    def get_invalid_choice_message(self, value: object, ctx: click.Context | None) -> str:
        return f"{value!r} is not one of {', '.join(self.choices)}."


@click.command(name="runs")
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 10000),
              help="How many runs to list, newest first.")
@click.option("--status", type=StatusChoice(_STATUSES), default=None,
              help="Only runs with this status.")
@click.option("--experiment", default=None,
              help="Experiment to list (default: the project's, tracking.experiment.name or the package name).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the runs as a JSON list on the last line of output, for scripts.")
@click.option("--env", "-e", default=None, help="Kedro environment whose mlflow.yml to read.")
def runs(limit: int, status: str | None, experiment: str | None, as_json: bool, env: str | None) -> None:
    """List the project's recent MLflow runs as a table, newest first.

    Example: kedro mlflow runs --limit 5 --status FAILED
    """
    # the plugin's heavier parts (Kedro's session, the MLflow boundary) load when the command runs,
    # not for every `kedro` command
    from .._redact import safe_cause
    from ..errors import KedroMlflowRunsError
    from ..tracking import Tracker
    from ._project import project_config, quiet_project_config
    from .view import RunSummary, render_table

    config = quiet_project_config(env) if as_json else project_config(env)
    tracker = Tracker(config.server.tracking_uri, config.server.registry_uri)
    name = experiment or config.tracking.experiment.name
    try:
        exp = tracker.find_experiment(name)
        if exp is None:
            if experiment:
                known = ", ".join(tracker.experiment_names()) or "none"
                raise click.ClickException(
                    f"No experiment '{name}' in {config.server.redacted_tracking_uri} (it has: {known}). "
                    f"Check --experiment, or leave it out for the project's experiment."
                )
            found: list[Run] = []
        else:
            found = tracker.search_runs(exp.experiment_id, status=status and status.upper(), max_results=limit)
    except KedroMlflowRunsError as exc:
        raise click.ClickException(str(exc)) from safe_cause(exc)
    summaries = [RunSummary.of(run) for run in found]
    if as_json:
        click.echo(json.dumps([s.to_json() for s in summaries]))
        return
    if not summaries:
        what = f"{status.upper()} run" if status else "run"
        hint = "" if status else " Runs appear here after `kedro run`."
        click.echo(f"No {what} in experiment '{name}' of {config.server.redacted_tracking_uri}.{hint}")
        return
    click.echo(f"Experiment '{name}' in {config.server.redacted_tracking_uri}:")
    click.echo(render_table(summaries))


@click.command(name="show")
@click.argument("run_id")
@click.option("--experiment", default=None,
              help="Experiment to look a short run id up in (default: the project's).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the run as a JSON object on the last line of output, for scripts.")
@click.option("--env", "-e", default=None, help="Kedro environment whose mlflow.yml to read.")
def show(run_id: str, experiment: str | None, as_json: bool, env: str | None) -> None:
    """Show one run: tags, params, metrics, models, artifacts, error, UI address.

    RUN_ID is a full run id, or the first characters of one (as `kedro mlflow runs` prints them).

    Example: kedro mlflow show 3f9c1a2b
    """
    from .._redact import safe_cause
    from ..errors import KedroMlflowRunsError
    from ..tracking import Tracker
    from ._project import project_config, quiet_project_config
    from .view import RunDetails, render_details, ui_address

    config = quiet_project_config(env) if as_json else project_config(env)
    tracker = Tracker(config.server.tracking_uri, config.server.registry_uri)
    limit = 200
    try:
        run = _find_run(tracker, config, run_id.strip(), experiment)
        exp_id = str(run.info.experiment_id)
        exp_name = tracker.experiment_name(exp_id)
        details = RunDetails.of(
            run, experiment_name=exp_name,
            models=tracker.logged_models(run.info.run_id, exp_id),
            artifacts=tracker.artifact_files(run.info.run_id, limit=limit), artifact_limit=limit,
            ui=ui_address(config.server.tracking_uri, exp_id, run.info.run_id, config.ui.host, config.ui.port),
        )
    except KedroMlflowRunsError as exc:
        raise click.ClickException(str(exc)) from safe_cause(exc)
    click.echo(json.dumps(details.to_json()) if as_json else render_details(details))


def _find_run(tracker: Tracker, config: MlflowConfig, run_id: str, experiment: str | None) -> Run:
    """The run ``run_id`` names: a full id anywhere in the store, or an id prefix in the experiment."""
    from .._redact import safe_cause
    from ..errors import RunNotFoundError

    if len(run_id) == 32:
        try:
            return tracker.get_run(run_id)
        except RunNotFoundError as exc:
            raise click.ClickException(
                f"No MLflow run '{run_id}' in {config.server.redacted_tracking_uri} (or it is deleted). "
                f"`kedro mlflow runs` lists the project's runs; check --env if the run is in another store."
            ) from safe_cause(exc)
    name = experiment or config.tracking.experiment.name
    exp = tracker.find_experiment(name)
    candidates = tracker.search_runs(exp.experiment_id, max_results=10000) if exp is not None else []
    matches = [r for r in candidates if r.info.run_id.startswith(run_id.lower())] if run_id else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise click.ClickException(
            f"No run whose id starts with '{run_id}' in experiment '{name}' of {config.server.redacted_tracking_uri}. "
            f"`kedro mlflow runs` lists the runs; pass a full 32-character run id for a run of another experiment."
        )
    ids = ", ".join(r.info.run_id for r in matches[:10])
    raise click.ClickException(f"'{run_id}' is the start of {len(matches)} run ids ({ids}); give more characters.")
