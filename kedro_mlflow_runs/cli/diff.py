"""``kedro mlflow diff RUN_A RUN_B``: what changed between two runs of the project (``_diff.py``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # pragma: no cover
    from ..tracking import Tracker
    from ._diff import RunSide


@click.command(name="diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--experiment", default=None,
              help="Experiment to look short run ids up in (default: the project's).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the differences as a JSON object on the last line of output, for scripts.")
@click.option("--env", "-e", default=None, help="Kedro environment whose mlflow.yml to read.")
def diff(run_a: str, run_b: str, experiment: str | None, as_json: bool, env: str | None) -> None:
    """Show what changed from RUN_A to RUN_B: parameters, metrics, data, code, nodes.

    Status, git commit, parameters, metrics, input data, pipeline nodes and node durations. Run
    ids as `kedro mlflow runs` prints them (the first characters) or full ids; both runs must be of
    the same experiment.

    Example: kedro mlflow diff 3f9c1a2b 7d2e8a41
    """
    from .._redact import safe_cause
    from ..errors import KedroMlflowRunsError
    from ..tracking import Tracker
    from ._diff import compare, render
    from ._project import project_config, quiet_project_config
    from .runs import _find_run

    config = quiet_project_config(env) if as_json else project_config(env)
    tracker = Tracker(config.server.tracking_uri, config.server.registry_uri)
    try:
        first = _find_run(tracker, config, run_a.strip(), experiment)
        second = _find_run(tracker, config, run_b.strip(), experiment)
        if first.info.experiment_id != second.info.experiment_id:
            names = [tracker.experiment_name(str(r.info.experiment_id)) for r in (first, second)]
            raise click.ClickException(
                f"Run {first.info.run_id} is in experiment '{names[0]}' and run {second.info.run_id} in "
                f"'{names[1]}': diff compares two runs of one experiment (one project). `kedro mlflow runs "
                f"--experiment NAME` lists the runs of an experiment.")
        result = compare(_side(tracker, first), _side(tracker, second))
    except KedroMlflowRunsError as exc:
        raise click.ClickException(str(exc)) from safe_cause(exc)
    click.echo(json.dumps(result) if as_json else render(result))


def _side(tracker: Tracker, run: Any) -> RunSide:
    from ..errors import KedroMlflowRunsError
    from ._diff import RunSide

    inputs = {item.dataset.name: item.dataset.digest for item in getattr(run.inputs, "dataset_inputs", None) or []}
    nodes = None
    try:
        pipeline = json.loads(tracker.read_text(run.info.run_id, "kedro/pipeline.json"))
        nodes = [str(node["name"]) for node in pipeline.get("nodes", [])]
    except (KedroMlflowRunsError, ValueError, KeyError, TypeError, AttributeError):
        nodes = None  # a run without the timeline (or not made by this plugin)
    return RunSide(run_id=run.info.run_id, name=str(run.info.run_name), status=str(run.info.status),
                   start_time=run.info.start_time, params=dict(run.data.params), metrics=dict(run.data.metrics),
                   tags=dict(run.data.tags), inputs=inputs, nodes=nodes)
