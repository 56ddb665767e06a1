"""``kedro mlflow init``: write a commented mlflow.yml with every key and its default."""

from __future__ import annotations

from pathlib import Path

import click

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


@click.command(name="init")
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
    # Kedro's session machinery and the plugin's config load when the command runs, not for every `kedro` command
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project

    from ._project import project_root

    metadata = bootstrap_project(project_root())
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
