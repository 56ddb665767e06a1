"""Kedro hooks: adapters that hand Kedro's hook calls to ``events.py``, a few lines each.

Registered automatically through the ``kedro.hooks`` entry point (a private instance). To
register by hand instead, put ``DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow-runs",)`` and
``HOOKS = (MlflowRunsHooks(),)`` in ``settings.py``. Registering an instance besides the entry
point's is harmless: every instance shares the process's run registry, so a Kedro run still gets
one MLflow run. Importing this module changes nothing in the process, and costs little: Kedro imports
it for every ``kedro`` command, so each hook imports ``events`` (and through it the run machinery,
configuration and datasets) on its first call.
"""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

__all__ = ["MlflowRunsHooks", "plugin_hooks"]


class MlflowRunsHooks:
    """Opens, attaches, and closes the MLflow run of each ``kedro run``."""

    # -- context and catalog ------------------------------------------------------------

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Read and validate mlflow.yml (and the credentials it names) for the session."""
        from . import events  # on first use: see the module docstring

        events.context_created(context)

    @hook_impl
    def after_catalog_created(self, catalog: Any, conf_catalog: dict[str, Any]) -> None:
        """Tell this plugin's datasets their catalog entry names as soon as the catalog exists, so that
        ``session.load_context().catalog`` in a notebook loads ``my_model`` under the name ``kedro run``
        logged it with."""
        from . import events

        events.catalog_created(catalog, conf_catalog)

    # -- pipeline -----------------------------------------------------------------------

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Open (or attach to) the run, tag it, and log the parameters the nodes read."""
        from . import events

        events.pipeline_starts(run_params, pipeline, catalog)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        from . import events

        events.pipeline_finished(run_params)

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any]) -> None:
        from . import events

        events.pipeline_failed(error, run_params)

    # -- nodes --------------------------------------------------------------------------

    @hook_impl
    def before_node_run(self, run_id: str, node: Any = None) -> None:
        """In a runner's worker thread or process, make the run MLflow's active run there too."""
        from . import events

        events.node_started(run_id, node)

    @hook_impl
    def after_node_run(self, run_id: str, node: Any = None) -> None:
        from . import events

        events.node_ended(run_id, node)

    @hook_impl
    def on_node_error(self, error: Exception, node: Any, run_id: str) -> None:
        from . import events

        events.node_failed(error, node, run_id)

    # -- datasets: which load or save failed, the schema of persisted frames, the outputs written

    @hook_impl
    def before_dataset_loaded(self, dataset_name: str, node: Any = None) -> None:
        from . import events

        name = getattr(node, "name", None)
        events.dataset_event(dataset_name, node, done=False,
                             event=(lambda recorder: recorder.node_io(name, "load")) if name else None)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any, node: Any = None) -> None:
        from . import events

        events.dataset_loaded(dataset_name, data, node)

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, node: Any = None) -> None:
        from . import events

        events.dataset_event(dataset_name, node, done=False)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any = None) -> None:
        from . import events

        name = getattr(node, "name", None)

        def saved(recorder: Any) -> None:
            recorder.dataset(dataset_name, data, saved=True)
            if name:
                recorder.node_io(name, "saved")

        events.dataset_event(dataset_name, node, done=True, event=saved)


#: The instance the ``kedro.hooks`` entry point registers. Private: listing it in
#: ``settings.HOOKS`` as well would make pluggy refuse one object under two names.
_entry_point_hooks = MlflowRunsHooks()

#: An instance for ``settings.HOOKS`` (any other ``MlflowRunsHooks()`` works the same).
plugin_hooks = MlflowRunsHooks()
