"""``kedro mlflow ...`` project commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from .._redact import safe_cause

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
    disable_autologging: true # mlflow.autolog(disable=True) when a tracked run starts
  autolog:                    # MLflow autologging into the plugin's run, on every runner
    enabled: false
    flavors: []               # e.g. [sklearn]; empty: every library MLflow autologs
    kwargs: {}                # passed to autolog(), e.g. {log_models: false}
  lineage:                    # free persisted inputs as MLflow dataset inputs, kedro/outputs.json
    enabled: true
    digest: auto              # auto | stat | content | none
  timeline:                   # kedro/timeline.json|html, kedro/pipeline.json, kedro.node_duration_s.*
    enabled: true
  system_metrics:             # MLflow's system/... metrics (needs kedro-mlflow-runs[system])
    enabled: false            # MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true turns it on too
    sampling_interval: 10     # seconds between samples
    samples_before_logging: 1
  experiment:
    name: null                # default: MLFLOW_EXPERIMENT_NAME, else the package name
    restore_if_deleted: true
    create_experiment_kwargs: # used only when the plugin creates the experiment
      artifact_location: null
      tags: null
  run:
    id: null                  # attach to this run (default: MLFLOW_RUN_ID, else a new run)
    name: null                # default: the pipeline names
    description: null         # the run's description in the MLflow UI (Markdown)
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


def _project_root() -> Path:
    """The Kedro project containing the working directory (any subdirectory works, as for ``kedro run``)."""
    from kedro.utils import find_kedro_project

    root = find_kedro_project(Path.cwd())
    if root is None:
        raise click.ClickException(
            f"{Path.cwd()} is not inside a Kedro project (no pyproject.toml with [tool.kedro] here or above). "
            f"Run this command from your project."
        )
    return Path(root)


def _project_config(env: str | None, *, talks_to_store: bool = True):  # type: ignore[no-untyped-def]
    """The project's validated mlflow.yml, with its ``server.credentials`` set in this process's environment."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from ..config import credentials_env, load_config
    from ..core.registry import REGISTRY

    metadata = bootstrap_project(_project_root())
    with KedroSession.create(project_path=metadata.project_path, env=env) as session:
        context = session.load_context()
        config = load_config(context)
        # the credentials, for the life of this short-lived command
        REGISTRY.process.adopt_defaults({**config.uri_credentials, **credentials_env(config, context)})
        if talks_to_store and config.header_provider is not None:
            from ..framework.header_provider import install

            install(config.header_provider, context)  # for the life of this command
        return config


def _quiet_project_config(env: str | None):  # type: ignore[no-untyped-def]
    """:func:`_project_config` with the log lines and warnings of loading the project held back
    (Kedro's log handler writes to stdout, where ``--json`` output goes)."""
    import logging

    logging.disable(logging.WARNING)
    try:
        return _project_config(env)
    finally:
        logging.disable(logging.NOTSET)


@mlflow_commands.command(name="init")
@click.option("--env", "-e", default="local", show_default=True, help="Kedro environment to write to.")
@click.option("--force", is_flag=True, help="Write even though the project already has an mlflow.yml.")
def init(env: str, force: bool) -> None:
    """Write a commented conf/<env>/mlflow.yml with every key and its default.

    Refuses when the project already has an mlflow configuration in any environment (any file
    Kedro's config loader reads for mlflow.yml: conf/<env>/mlflow*.yml, conf/<env>/mlflow*/**,
    conf/<env>/**/mlflow*): a full template in conf/local would override conf/base's settings
    (experiment, tags, tracking URI).

    Example: kedro mlflow init --env base
    """
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project

    metadata = bootstrap_project(_project_root())
    conf = Path(metadata.project_path) / settings.CONF_SOURCE
    target = conf / env / "mlflow.yml"
    existing = _mlflow_config_files(conf, settings)
    if existing and not force:
        names = ", ".join(str(p.relative_to(metadata.project_path)) for p in existing)
        raise click.ClickException(
            f"This project already has an mlflow configuration ({names}); writing the full template to "
            f"{target.relative_to(metadata.project_path)} would change where runs go. Edit that file instead "
            f"(docs/mlflow_yml.md lists every key), or pass --force to write the template anyway."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(TEMPLATE)
    click.echo(f"Wrote {target}")


def _mlflow_config_files(conf: Path, settings: object) -> list[Path]:
    """The files Kedro's config loader reads for the ``mlflow`` key, in every environment under ``conf``.

    The same patterns (the project's ``CONFIG_LOADER_ARGS["config_patterns"]["mlflow"]``, else
    ours), matched the way ``OmegaConfigLoader`` matches them (fsspec's glob, ``**`` recursive),
    hidden files and folders left out, only ``.yml``, ``.yaml`` and ``.json`` files.
    """
    from fsspec.implementations.local import LocalFileSystem

    from ..config import CONFIG_PATTERNS

    loader_args = getattr(settings, "CONFIG_LOADER_ARGS", None) or {}
    patterns = (loader_args.get("config_patterns") or {}).get("mlflow") or CONFIG_PATTERNS
    if not conf.is_dir():
        return []
    fs = LocalFileSystem()
    found: set[Path] = set()
    for env_dir in (p for p in conf.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for pattern in patterns:
            for match in fs.glob(f"{env_dir.as_posix()}/{pattern}"):
                path = Path(match)
                hidden = any(part.startswith(".") for part in path.relative_to(conf).parts)
                if not hidden and path.suffix in (".yml", ".yaml", ".json") and path.is_file():
                    found.add(path)
    return sorted(found)


@mlflow_commands.command(name="ui")
@click.option("--env", "-e", default=None, help="Kedro environment whose mlflow.yml to read.")
@click.option("--host", default=None, help="Address to serve on (default: ui.host in mlflow.yml, else 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535),
              help="Port to serve on (default: ui.port in mlflow.yml, else 5000).")
def ui(env: str | None, host: str | None, port: int | None) -> None:
    """Open the MLflow UI on this project's tracking store.

    Example: kedro mlflow ui --port 5001
    """
    import dataclasses

    config = _project_config(env, talks_to_store=False)
    config = dataclasses.replace(config, ui_host=host or config.ui_host, ui_port=port or config.ui_port)
    if config.tracking_uri.startswith(("http://", "https://")):
        click.echo(f"The tracking server is {config.redacted_tracking_uri}: open it in a browser.")
        return
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", config.tracking_uri,
           "--host", config.ui_host, "--port", str(config.ui_port)]
    click.echo(f"Serving {config.redacted_tracking_uri} at http://{config.ui_host}:{config.ui_port} (Ctrl-C to stop)")
    code = _run_forwarding_signals(cmd)
    if code < 0:  # the server ended on a signal: end the same way, as a shell expects
        import os
        import signal

        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    raise SystemExit(code)


def _run_forwarding_signals(cmd: list[str]) -> int:
    """Run ``cmd`` in its own process group; SIGINT/SIGTERM/SIGHUP to us stop its whole tree, and we wait."""
    import os
    import signal

    child = subprocess.Popen(cmd, start_new_session=True)

    def forward(signum: int, frame: object) -> None:
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward)
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # pragma: no cover - forward() already handled it
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:  # pragma: no cover
            os.killpg(child.pid, signal.SIGKILL)


_STATUSES = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]


@mlflow_commands.command(name="runs")
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 10000),
              help="How many runs to list, newest first.")
@click.option("--status", type=click.Choice(_STATUSES, case_sensitive=False), default=None,
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
    import json

    from .view import RunSummary, render_table
    from ..errors import KedroMlflowRunsError
    from ..tracking import Tracker

    config = _quiet_project_config(env) if as_json else _project_config(env)
    tracker = Tracker(config.tracking_uri, config.registry_uri)
    name = experiment or config.experiment_name
    try:
        exp = tracker.find_experiment(name)
        if exp is None:
            if experiment:
                known = ", ".join(tracker.experiment_names()) or "none"
                raise click.ClickException(
                    f"No experiment '{name}' in {config.redacted_tracking_uri} (it has: {known}). "
                    f"Check --experiment, or leave it out for the project's experiment."
                )
            found: list = []
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
        click.echo(f"No {what} in experiment '{name}' of {config.redacted_tracking_uri}.{hint}")
        return
    click.echo(f"Experiment '{name}' in {config.redacted_tracking_uri}:")
    click.echo(render_table(summaries))


@mlflow_commands.command(name="show")
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
    import json

    from .view import RunDetails, render_details, ui_address
    from ..errors import KedroMlflowRunsError
    from ..tracking import Tracker

    config = _quiet_project_config(env) if as_json else _project_config(env)
    tracker = Tracker(config.tracking_uri, config.registry_uri)
    limit = 200
    try:
        run = _find_run(tracker, config, run_id.strip(), experiment)
        exp_id = str(run.info.experiment_id)
        exp_name = tracker.experiment_name(exp_id)
        details = RunDetails.of(
            run, experiment_name=exp_name,
            models=tracker.logged_models(run.info.run_id, exp_id),
            artifacts=tracker.artifact_files(run.info.run_id, limit=limit), artifact_limit=limit,
            ui=ui_address(config.tracking_uri, exp_id, run.info.run_id, config.ui_host, config.ui_port),
        )
    except KedroMlflowRunsError as exc:
        raise click.ClickException(str(exc)) from safe_cause(exc)
    click.echo(json.dumps(details.to_json()) if as_json else render_details(details))


def _find_run(tracker, config, run_id: str, experiment: str | None):  # type: ignore[no-untyped-def]
    """The run ``run_id`` names: a full id anywhere in the store, or an id prefix in the experiment."""
    from ..errors import RunNotFoundError

    if len(run_id) == 32:
        try:
            return tracker.get_run(run_id)
        except RunNotFoundError as exc:
            raise click.ClickException(
                f"No MLflow run '{run_id}' in {config.redacted_tracking_uri} (or it is deleted). "
                f"`kedro mlflow runs` lists the project's runs; check --env if the run is in another store."
            ) from safe_cause(exc)
    name = experiment or config.experiment_name
    exp = tracker.find_experiment(name)
    candidates = tracker.search_runs(exp.experiment_id, max_results=10000) if exp is not None else []
    matches = [r for r in candidates if r.info.run_id.startswith(run_id.lower())] if run_id else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise click.ClickException(
            f"No run whose id starts with '{run_id}' in experiment '{name}' of {config.redacted_tracking_uri}. "
            f"`kedro mlflow runs` lists the runs; pass a full 32-character run id for a run of another experiment."
        )
    ids = ", ".join(r.info.run_id for r in matches[:10])
    raise click.ClickException(f"'{run_id}' is the start of {len(matches)} run ids ({ids}); give more characters.")


@mlflow_commands.command(name="close-run")
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
    from ..errors import KedroMlflowRunsError
    from ..tracking import Tracker

    config = _project_config(env)
    tracker = Tracker(config.tracking_uri, config.registry_uri)
    try:
        if stale:
            _close_stale(tracker, config, (status or "KILLED").upper(), yes)
            return
        status = (status or "FINISHED").upper()
        run_id = run_id or config.run_id
        if not run_id:
            raise click.ClickException(
                "No run to close: pass --run-id, set MLFLOW_RUN_ID, or set tracking.run.id in mlflow.yml "
                "(or list runs left RUNNING with --stale)."
            )
        run = tracker.get_run(run_id, source="--run-id" if run_id != config.run_id else config.run_id_source)
        if run.info.status != "RUNNING":
            click.echo(f"MLflow run {run_id} is already {run.info.status}; ending it as {status} anyway.")
        _merge_parts(tracker, run_id, status)
        tracker.set_terminated(run_id, status)
    except KedroMlflowRunsError as exc:
        raise click.ClickException(str(exc)) from safe_cause(exc)
    click.echo(f"Ended MLflow run {run_id} as {status} in {config.redacted_tracking_uri}.")


def _merge_parts(tracker, run_id: str, status: str) -> None:  # type: ignore[no-untyped-def]
    """The timeline and outputs of every `kedro run` that attached to the run, merged once more."""
    from ..recording.parts import merge_parts

    try:
        parts = merge_parts(tracker, run_id, status=status)
    except Exception as exc:  # closing the run matters more
        click.echo(f"Could not merge the node timelines of MLflow run {run_id}: {type(exc).__name__}: {exc}", err=True)
        return
    if parts:
        click.echo(f"Merged the node timelines of {parts} Kedro run(s) into kedro/timeline.json.")


def _close_stale(tracker, config, status: str, yes: bool) -> None:  # type: ignore[no-untyped-def]
    from datetime import datetime, timezone

    from ..framework.run_info import opened_by_a_live_process

    runs = tracker.running_kedro_runs(config.experiment_name)
    if not runs:
        click.echo(f"No run of experiment '{config.experiment_name}' is RUNNING in {config.redacted_tracking_uri}.")
        return
    click.echo(f"Runs of experiment '{config.experiment_name}' still RUNNING:")
    stale = []
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
        click.echo(f"  {run.info.run_id}  kedro run {run.data.tags.get('kedro.run_id', '?')}  started {started}  ({note})")
    if not stale:
        click.echo("Nothing to end.")
        return
    if not yes:
        click.echo(f"Pass --yes to end the {len(stale)} run(s) not known to be in progress as {status}.")
        return
    for run in stale:
        tracker.set_terminated(run.info.run_id, status)
    click.echo(f"Ended {len(stale)} run(s) as {status}.")


@mlflow_commands.command(name="migrate")
@click.option("--env", "-e", default=None, help="Only this Kedro environment's conf/ folder (default: all).")
@click.option("--write", is_flag=True, help="Apply the changes (each file kept as <file>.bak); default: show them.")
def migrate(env: str | None, write: bool) -> None:
    """Move a kedro-mlflow project over: rewrite its catalog types and hooks.

    Prints a unified diff of what it would change; --write applies it. Exits non-zero, saying what
    and why, when something cannot be migrated automatically.

    Example: kedro mlflow migrate, then kedro mlflow migrate --write
    """
    from kedro.framework.startup import bootstrap_project

    from ..errors import KedroMlflowRunsError
    from .migration import plan_migration

    metadata = bootstrap_project(_project_root())
    root = Path(metadata.project_path)
    try:
        plan = plan_migration(root, metadata.package_name, env)
    except KedroMlflowRunsError as exc:
        raise click.ClickException(str(exc)) from None
    diff = plan.diff(root)
    click.echo(diff or "Nothing to rewrite: no kedro-mlflow dataset type or hook found.")
    if write and plan.edits and plan.problems:
        click.echo("Nothing was written: fix what is listed below first (or by hand), then run again.")
    elif write and plan.edits:
        for path in plan.write():
            click.echo(f"Wrote {path.relative_to(root)} (the original is in {path.name}.bak)")
    elif plan.edits:
        click.echo("Dry run: nothing was written. Run with --write to apply.")
    if plan.problems:
        raise click.ClickException("Some kedro-mlflow usage cannot be migrated automatically:\n  "
                                   + "\n  ".join(plan.problems))


@mlflow_commands.command(name="modelify")
@click.option("--pipeline", "pipeline_name", required=True,
              help="Registered pipeline to log: an inference pipeline, or a pipeline_ml_factory pipeline (its "
                   "inference part is used).")
@click.option("--input-name", required=True, help="The free input of the pipeline that receives the model input.")
@click.option("--run-id", default=None,
              help="Log into this (finished) run, and load the artifacts as that run: the plugin's datasets read "
                   "from it. Default: a new run, the artifacts from the current catalog.")
@click.option("--name", default=None, help="Name of the logged model (default: model).")
@click.option("--registered-model-name", default=None, help="Also register the model under this name.")
@click.option("--env", "-e", default=None, help="Kedro environment to read the catalog and mlflow.yml from.")
def modelify(pipeline_name: str, input_name: str, run_id: str | None, name: str | None,
             registered_model_name: str | None, env: str | None) -> None:
    """Log a registered pipeline's inference part as one MLflow model.

    Every free input of the pipeline but --input-name is loaded from the catalog and bundled.

    Example: kedro mlflow modelify --pipeline inference --input-name features --run-id <id>
    """
    from ..errors import KedroMlflowRunsError
    from ..pipeline._modelify import modelify_pipeline

    try:
        run, model_name = modelify_pipeline(_project_root(), pipeline_name, input_name, run_id=run_id, name=name,
                                            registered_model_name=registered_model_name, env=env)
    except KedroMlflowRunsError as exc:
        raise click.ClickException(str(exc)) from safe_cause(exc)
    click.echo(f"Logged model '{model_name}' of pipeline '{pipeline_name}' into MLflow run {run}.")
