"""Where ``settings.py`` imports the plugin's hooks from (``from kedro_mlflow_runs.hooks import
MlflowRunsHooks``); they live in :mod:`kedro_mlflow_runs.framework.hooks`."""

from .framework.hooks import MlflowRunsHooks, plugin_hooks

__all__ = ["MlflowRunsHooks", "plugin_hooks"]
