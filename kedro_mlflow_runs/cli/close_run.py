"""``kedro mlflow close-run``: end a run that steps attached to, or the runs nobody writes into any more."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

import click

from .runs import StatusChoice

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.entities import Run

    from ..config import MlflowConfig
    from ..core.liveness import Liveness
    from ..tracking import Tracker

#: ``--older-than`` when not given: far above the 30 s between two heartbeats.
DEFAULT_OLDER_THAN: Final = "15m"
#: ``--wait`` when not given: longer than an attempt with the default heartbeat takes to be known dead.
DEFAULT_WAIT: Final = "2m"
_UNITS: Final = (("s", 1), ("m", 60), ("h", 3600), ("d", 86400))


def seconds(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``1d`` as seconds.

    Raises:
        click.BadParameter: another form.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise click.BadParameter(f"{text!r} is not a duration: write 90, 90s, 15m, 2h or 1d.")
    return float(match.group(1)) * dict(_UNITS).get(match.group(2) or "s", 1)


@click.command(name="close-run")
@click.option("--run-id", default=None, help="Run to end. Default: tracking.run.id in mlflow.yml, else MLFLOW_RUN_ID.")
@click.option("--status", type=StatusChoice(("auto", "FINISHED", "FAILED", "KILLED")),
              default=None, help="Status to end the run with: auto (FINISHED when the last attempt of every node "
                                 "finished, FAILED otherwise), or one of the three (default FINISHED; KILLED with "
                                 "--stale).")
@click.option("--stale", is_flag=True,
              help="List the project's runs still RUNNING that nobody writes into any more instead.")
@click.option("--older-than", default=DEFAULT_OLDER_THAN, show_default=True,
              help="With --stale: a run is stale when no attempt is alive and its last sign of life (a heartbeat, "
                   "its start) is older than this (90s, 15m, 2h).")
@click.option("--wait", "wait_for", default=DEFAULT_WAIT, show_default=True,
              help="How long to wait for attempts still writing into the run to end or to stop beating "
                   "(a step just killed on another machine beats no more), before refusing (0: do not wait).")
@click.option("--yes", is_flag=True, help="With --stale: end every stale run (as --status, default KILLED).")
@click.option("--force", is_flag=True, help="End the run even though an attempt still writes into it.")
@click.option("--expect-pipeline", "expected_pipelines", multiple=True, metavar="NAME",
              help="With --status auto: FAILED also when a node of this registered pipeline was never run by any "
                   "attempt (its step failed before it could attach: no container, a project that did not load). "
                   "Repeatable.")
@click.option("--env", "-e", default=None, help="Kedro environment whose mlflow.yml to read.")
def close_run(run_id: str | None, status: str | None, stale: bool, older_than: str, wait_for: str, yes: bool,
              force: bool, expected_pipelines: tuple[str, ...], env: str | None) -> None:
    """End a run that steps attached to, or the runs nobody writes into any more.

    Examples: kedro mlflow close-run --status auto; kedro mlflow close-run --stale [--yes]
    """
    # the plugin's heavier parts (Kedro's session, the MLflow boundary) load when the command runs,
    # not for every `kedro` command
    from .._redact import safe_cause
    from ..errors import KedroMlflowRunsError
    from ..tracking import Tracker
    from ._project import project_config

    threshold = seconds(older_than)
    patience = seconds(wait_for)
    config = project_config(env)
    tracker = Tracker(config.server.tracking_uri, config.server.registry_uri)
    try:
        if stale:
            _close_stale(tracker, config, (status or "KILLED").upper(), yes, threshold)
            return
        run_id = run_id or config.tracking.run.id
        if not run_id:
            raise click.ClickException(
                "No run to close: pass --run-id, set MLFLOW_RUN_ID, or set tracking.run.id in mlflow.yml "
                "(or list runs left RUNNING with --stale)."
            )
        source = "--run-id" if run_id != config.tracking.run.id else config.tracking.run.id_source
        run = tracker.get_run(run_id, source=source)
        state = _liveness(run)
        if state.live and not force:
            run, state = _wait_for_attempts(tracker, run, state, patience)
            if state.live:
                raise click.ClickException(_still_running(run_id, state))
        final = (status or "FINISHED").upper()
        if final == "AUTO":
            from ..core.liveness import auto_status, never_finished

            expected = _pipeline_nodes(expected_pipelines)
            missing = never_finished(state.attempts, expected)
            if missing:
                click.echo(f"No attempt ran node(s) {', '.join(missing)} of pipeline(s) "
                           f"{', '.join(expected_pipelines)}: their step never attached to the run.")
            final = auto_status(state.attempts, expected)
        if run.info.status != "RUNNING":
            click.echo(f"MLflow run {run_id} is already {run.info.status}; ending it as {final} anyway.")
        _settle(tracker, run, state)
        _merge_parts(tracker, run, final, trace=config.tracking.timeline.enabled and config.tracking.timeline.trace)
        tracker.set_terminated(run_id, final)
        _end_children(tracker, run, final)
    except KedroMlflowRunsError as exc:
        raise click.ClickException(str(exc)) from safe_cause(exc)
    click.echo(f"Ended MLflow run {run_id} as {final} in {config.server.redacted_tracking_uri}.")


def _pipeline_nodes(names: tuple[str, ...]) -> set[str]:
    """The node names of the project's registered pipelines ``names`` (the project is bootstrapped)."""
    if not names:
        return set()
    from kedro.framework.project import pipelines

    nodes: set[str] = set()
    for name in names:
        if name not in pipelines:
            known = ", ".join(sorted(pipelines)) or "none"
            raise click.BadParameter(f"The project has no pipeline {name!r} (registered: {known}).",
                                     param_hint="--expect-pipeline")
        nodes |= {node.name for node in pipelines[name].nodes}
    return nodes


def _liveness(run: Run) -> Liveness:
    from ..core.liveness import liveness

    return liveness(run.data.tags, run.info.start_time / 1000, time.time())


def _wait_for_attempts(tracker: Tracker, run: Run, state: Liveness, patience: float) -> tuple[Run, Liveness]:
    """Wait (at most ``patience`` seconds) until no attempt writes into ``run`` any more: each live
    attempt ends, or misses enough heartbeats to be dead. The run and its liveness then."""
    deadline = time.monotonic() + patience
    while state.live and time.monotonic() < deadline:
        who = ", ".join(f"{a.id} on {a.host}" for a in state.live)
        latest = max(a.beat + a.dead_after for a in state.live) - time.time()
        click.echo(f"Waiting for attempt(s) {who} to end or stop beating (up to {min(latest, patience):.0f} s).",
                   err=True)
        time.sleep(max(0.5, min(2.0, deadline - time.monotonic())))
        run = tracker.get_run(run.info.run_id)
        state = _liveness(run)
    return run, state


def _still_running(run_id: str, state: Liveness) -> str:
    who = ", ".join(f"{a.id} on {a.host} (pid {a.pid}, last heartbeat {time.time() - a.beat:.0f} s ago)"
                    for a in state.live)
    return (f"MLflow run {run_id} is still being written into by attempt(s) {who}. Wait for them to end "
            f"(--wait), or pass --force to end the run anyway.")


def _settle(tracker: Tracker, run: Run, state: Liveness) -> None:
    """Attempts that never ended and stopped beating are recorded KILLED; models left PENDING, FAILED."""
    from ..core.attempt_book import AttemptBook

    book = AttemptBook(tracker, run.info.run_id, str(run.info.experiment_id))
    for attempt in state.dead:
        redone_by = next((later.id for later in state.attempts if attempt.redone_by(later)), None)
        book.settle_dead(attempt.id, attempt.beat, redone_by=redone_by)
        click.echo(f"Attempt {attempt.id} on {attempt.host} stopped beating: recorded as KILLED.")
    failed = book.fail_models()
    if failed:
        click.echo(f"Marked {failed} model(s) left PENDING (a log_model that never finished) as FAILED.")


def _end_children(tracker: Tracker, run: Any, status: str) -> None:
    """End the run's child runs still RUNNING (tracking.child_runs) with the run's status."""
    from ..core.children import end_children

    ended = end_children(tracker, str(run.info.experiment_id), run.info.run_id, status)
    if ended:
        click.echo(f"Ended {ended} child run(s) of MLflow run {run.info.run_id} as {status}.")


def _merge_parts(tracker: Tracker, run: Any, status: str, *, trace: bool) -> None:
    """The timeline and outputs of every `kedro run` that attached to the run, merged once more; the
    merged timeline written as the run's trace (``trace``)."""
    from ..recording.parts import merge_parts
    from ..recording.trace import write_run_trace

    run_id = run.info.run_id

    def traced(files: dict[str, str]) -> None:
        write_run_trace(tracker, run_id, str(run.info.experiment_id), files, status=status,
                        kedro_run_id=run.data.tags.get("kedro.run_id"))

    try:
        parts = merge_parts(tracker, run_id, status=status, on_merged=traced if trace else None)
    except Exception as exc:  # closing the run matters more
        click.echo(f"Could not merge the node timelines of MLflow run {run_id}: {type(exc).__name__}: {exc}", err=True)
        return
    if parts:
        click.echo(f"Merged the node timelines of {parts} Kedro run(s) into kedro/timeline.json.")


def _close_stale(tracker: Tracker, config: MlflowConfig, status: str, yes: bool, threshold: float) -> None:
    """List the experiment's RUNNING runs; with ``yes``, end those nobody writes into as ``status``."""
    runs = tracker.running_kedro_runs(config.tracking.experiment.name)
    if not runs:
        click.echo(f"No run of experiment '{config.tracking.experiment.name}' is RUNNING in "
                   f"{config.server.redacted_tracking_uri}.")
        return
    click.echo(f"Runs of experiment '{config.tracking.experiment.name}' still RUNNING:")
    now = time.time()
    stale: list[tuple[Run, Liveness]] = []
    for run in runs:
        started = datetime.fromtimestamp(run.info.start_time / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        state = _liveness(run)
        if state.is_live(now, threshold):
            why = (f"process {run.data.tags.get('kedro.pid')} on this host is alive" if state.owner_alive
                   else f"its process on {run.data.tags.get('kedro.host')} still beats" if state.owner_beating
                   else f"last sign of life {now - state.last_sign:.0f} s ago")
            note = f"in progress: {why}; left alone (end it with: kedro mlflow close-run --run-id {run.info.run_id})"
        else:
            stale.append((run, state))
            note = ("its process is gone" if state.owner_alive is False and not state.attempts
                    else f"no sign of life for {now - state.last_sign:.0f} s")
        kedro_run = run.data.tags.get("kedro.run_id", run.data.tags.get("kedro.opened_by", "?"))
        click.echo(f"  {run.info.run_id}  kedro run {kedro_run}  started {started}  ({note})")
    if not stale:
        click.echo("Nothing to end.")
        return
    if not yes:
        click.echo(f"Pass --yes to end the {len(stale)} stale run(s) as {status}.")
        return
    ended = 0
    for listed, _ in stale:
        run = tracker.get_run(listed.info.run_id)  # a step may have attached since the list was made
        state = _liveness(run)
        if run.info.status != "RUNNING" or state.is_live(time.time(), threshold):
            click.echo(f"  {run.info.run_id} came back to life (or ended) since it was listed: left alone.")
            continue
        _settle(tracker, run, state)
        tracker.set_terminated(run.info.run_id, status)
        _end_children(tracker, run, status)
        ended += 1
    click.echo(f"Ended {ended} run(s) as {status}.")
