"""The click groups the project commands hang from (``kedro mlflow ...``)."""

from __future__ import annotations

import click

__all__ = ["commands", "mlflow_commands"]


@click.group(name="kedro-mlflow-runs")
def commands() -> None:
    """kedro-mlflow-runs commands."""


@commands.group(name="mlflow")
def mlflow_commands() -> None:
    """Work with the MLflow tracking of this Kedro project."""
