"""``kedro mlflow modelify``: log a registered pipeline's inference part as one model."""

from __future__ import annotations

import click


@click.command(name="modelify")
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
    # the pipeline machinery (Kedro's session, MLflow) loads when the command runs, not for every `kedro` command
    from .._redact import safe_cause
    from ..errors import KedroMlflowRunsError
    from ..pipeline._modelify import modelify_pipeline
    from ._project import project_root

    try:
        run, model_name = modelify_pipeline(project_root(), pipeline_name, input_name, run_id=run_id, name=name,
                                            registered_model_name=registered_model_name, env=env)
    except KedroMlflowRunsError as exc:
        raise click.ClickException(str(exc)) from safe_cause(exc)
    click.echo(f"Logged model '{model_name}' of pipeline '{pipeline_name}' into MLflow run {run}.")
