"""Kedro hooks: adapters that turn Kedro's hook calls into run-registry calls, a few lines each.

Registered automatically through the ``kedro.hooks`` entry point (a private instance). To
register by hand instead, put ``DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow-runs",)`` and
``HOOKS = (MlflowRunsHooks(),)`` in ``settings.py``. Registering an instance besides the entry
point's is harmless: every instance shares the process's run registry, so a Kedro run still gets
one MLflow run. Importing this module changes nothing in the process.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl

from ..handle import Outcome

__all__ = ["MlflowRunsHooks", "plugin_hooks"]

logger = logging.getLogger(__name__)


class MlflowRunsHooks:
    """Opens, attaches, and closes the MLflow run of each ``kedro run``."""

    # -- context and catalog ------------------------------------------------------------

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Read and validate mlflow.yml and the ``server.credentials`` entry it names; in a notebook,
        make the project's store and experiment MLflow's defaults (``_notebook.py``)."""
        from ..config import credentials_env, load_config
        from ..core.registry import registry

        if registry().pending_config(context) is None:
            config = load_config(context)
            credentials = credentials_env(config, context)
            registry().remember_config(context, config, credentials)
            from .notebook import in_ipython

            if in_ipython():  # %reload_kedro: mlflow.start_run() in a cell lands in the project's store
                from .notebook import adopt_project_store

                adopt_project_store(config, credentials)

    @hook_impl
    def after_catalog_created(self, catalog: Any, conf_catalog: dict[str, Any]) -> None:
        """Tell this plugin's datasets their catalog entry names as soon as the catalog exists.

        So ``session.load_context().catalog`` in a notebook loads ``my_model`` under the same
        default name ``kedro run`` logged it with. Only entries whose type is one of ours are built.
        """
        from ..io._naming import name_datasets  # no MLflow import

        ours = [name for name, entry in (conf_catalog or {}).items()
                if "{" not in name and "kedro_mlflow_runs" in repr(entry)]
        if ours:
            name_datasets(catalog, ours)

    # -- pipeline -----------------------------------------------------------------------

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Open (or attach to) the run, tag it, and log the parameters the nodes read."""
        from .pipeline_start import start_pipeline_run

        start_pipeline_run(run_params, pipeline, catalog)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        from .run_info import where
        from ..core.registry import registry

        ctx = registry().succeed(str(run_params.get("run_id")))
        if ctx is not None and ctx.run_id is not None:
            logger.info("MLflow run %s is in %s", ctx.run_id, where(ctx.handle))

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any]) -> None:
        from ..core.registry import registry

        try:
            registry().finish(str(run_params.get("run_id")), Outcome.failed(error))
        except Exception as exc:  # never hide the pipeline's own error behind a tracking one (nor its traceback)
            logger.error("Could not record the failure of Kedro run %s in MLflow: %s", run_params.get("run_id"), exc,
                         exc_info=logger.isEnabledFor(logging.DEBUG))

    # -- nodes --------------------------------------------------------------------------

    @hook_impl
    def before_node_run(self, run_id: str, node: Any = None) -> None:
        """In a runner's worker thread or process, make the run MLflow's active run there too."""
        ctx = _context_for(run_id)
        if ctx is not None:
            ctx.bind_thread()
            if ctx.in_worker:  # a spawned worker turns on the run's autologging itself
                from .autolog import worker_autolog

                worker_autolog()
            recorder = _recorder(run_id)
            if recorder is not None and node is not None:
                recorder.node_started(node.name)

    @hook_impl
    def after_node_run(self, run_id: str, node: Any = None) -> None:
        ctx = _context_for(run_id)
        if ctx is not None:
            ctx.unbind_thread()
            recorder = _recorder(run_id)
            if recorder is not None and node is not None:
                recorder.node_ended(node.name)

    @hook_impl
    def on_node_error(self, error: Exception, node: Any, run_id: str) -> None:
        from ..core.registry import registry

        ctx = _context_for(run_id)
        if ctx is None:
            return
        node_name = getattr(node, "name", None)
        ctx.record_error(error, node_name)
        recorder = _recorder(run_id)
        if recorder is not None and node_name:
            recorder.node_ended(node_name, "failed", error)
        tracked = registry().tracked(run_id)
        if tracked is None or ctx.in_worker:
            # a ParallelRunner worker: the session's context never sees this record
            from ..core.mlflow_run import error_tags

            try:
                ctx.set_tags(error_tags(error, node_name))
            except Exception:
                logger.warning("Could not record the error of node %s in MLflow run %s", node_name, ctx.run_id,
                               exc_info=True)
        ctx.unbind_thread()

    # -- datasets: the schema of persisted frames, and which outputs were written -------------

    @hook_impl
    def before_dataset_loaded(self, dataset_name: str, node: Any = None) -> None:
        _dataset_io(dataset_name, node, done=False)
        if node is not None:
            _record(lambda recorder: recorder.node_io(node.name, "load"))

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any, node: Any = None) -> None:
        _dataset_io(dataset_name, node, done=True)
        _record(lambda recorder: recorder.dataset(dataset_name, data, saved=False))

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, node: Any = None) -> None:
        _dataset_io(dataset_name, node, done=False)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Any = None) -> None:
        _dataset_io(dataset_name, node, done=True)

        def saved(recorder: Any) -> None:
            recorder.dataset(dataset_name, data, saved=True)
            if node is not None:
                recorder.node_io(node.name, "saved")

        _record(saved)


def _dataset_io(dataset_name: str, node: Any, *, done: bool) -> None:
    """Tell this thread's run that a load or save starts or ended (the error tags of a failed one)."""
    if node is None:
        return
    try:
        from ..core.registry import registry

        ctx = registry().current()
        if ctx is not None and ctx.is_active:
            ctx.dataset_io(dataset_name, getattr(node, "name", None), done=done)
    except Exception:
        logger.debug("Could not note a dataset load or save", exc_info=True)


def _record(event: Any) -> None:
    """Hand an event to this thread's run recorder; recording never fails a node."""
    try:
        recorder = _recorder(None)
        if recorder is not None:
            event(recorder)
    except Exception:
        logger.debug("Could not record a dataset event for the timeline or lineage", exc_info=True)


def _recorder(run_id: str | None) -> Any:
    """The timeline and lineage recorder of a Kedro run (by id, else of this thread's run) in this process."""
    from ..recording.recorder import recorder_for
    from ..core.registry import registry

    if run_id is None:
        ctx = registry().current()
        if ctx is None or not ctx.is_active:
            return None
        run_id = ctx.kedro_run_id
    return recorder_for(str(run_id))


def _context_for(run_id: str) -> Any:
    from ..core.registry import registry

    return registry().context_for(str(run_id))


#: The instance the ``kedro.hooks`` entry point registers. Private: listing it in
#: ``settings.HOOKS`` as well would make pluggy refuse one object under two names.
_entry_point_hooks = MlflowRunsHooks()

#: An instance for ``settings.HOOKS`` (any other ``MlflowRunsHooks()`` works the same).
plugin_hooks = MlflowRunsHooks()
