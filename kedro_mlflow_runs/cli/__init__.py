"""``kedro mlflow ...``: the plugin's project commands, one module per command group.

Kedro imports this package for every ``kedro`` command (the ``kedro.project_commands`` entry point),
so it only defines the click groups and registers the commands. The command modules import nothing
heavier than click at module level: each command imports what it needs (the project's config,
MLflow) when it runs.
"""

from __future__ import annotations

import click

from . import close_run, diff, import_history, init, migrate, modelify, open_run, runs, ui

__all__ = ["commands", "mlflow_commands"]


@click.group(name="kedro-mlflow-runs")
def commands() -> None:
    """kedro-mlflow-runs commands."""


@commands.group(name="mlflow")
def mlflow_commands() -> None:
    """Work with the MLflow tracking of this Kedro project."""


mlflow_commands.add_command(init.init)
mlflow_commands.add_command(ui.ui)
mlflow_commands.add_command(runs.runs)
mlflow_commands.add_command(runs.show)
mlflow_commands.add_command(diff.diff)
mlflow_commands.add_command(open_run.open_run)
mlflow_commands.add_command(close_run.close_run)
mlflow_commands.add_command(migrate.migrate)
mlflow_commands.add_command(import_history.import_history)
mlflow_commands.add_command(modelify.modelify)
