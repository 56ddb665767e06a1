"""``kedro mlflow ...``: the plugin's project commands, one module per command group.

Kedro imports this package for every ``kedro`` command (the ``kedro.project_commands`` entry point),
so it defines the click groups and registers the commands, importing nothing heavier than click:
each command imports what it needs (the project's config, MLflow) when it runs.
"""

from __future__ import annotations

from . import close_run, init, migrate, modelify, runs, ui
from ._groups import commands, mlflow_commands

__all__ = ["close_run", "commands", "init", "migrate", "mlflow_commands", "modelify", "runs", "ui"]
