"""What each Kedro hook does, once the run machinery is needed (``hooks.py`` imports this module on the
first hook call, so that loading the hooks costs nothing for ``kedro --help``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..config import credentials_env, load_config
from ..core import children
from ..core.current import context_for, current_run_context
from ..core.registry import REGISTRY
from ..core.tags import error_tags
from ..errors import RunStateError
from ..handle import Outcome
from ..io.naming import name_datasets
from ..recording.recorder import RunRecorder, recorder_for
from .autolog import worker_autolog
from .notebook import adopt_project_store, in_ipython
from .pipeline_start import start_pipeline_run
from .run_info import where

__all__ = [
    "context_created", "dataset_event", "dataset_loaded", "node_ended", "node_failed", "node_started",
    "pipeline_failed", "pipeline_finished", "pipeline_starts",
]

logger = logging.getLogger(__name__)


def context_created(context: Any) -> None:
    """Read and validate mlflow.yml and the ``server.credentials`` entry it names; in a notebook,
    make the project's store and experiment MLflow's defaults (``notebook.py``)."""
    if REGISTRY.configs.pending(context) is not None:
        return
    config = load_config(context)
    credentials = credentials_env(config, context)
    REGISTRY.configs.remember(context, config, credentials)
    if in_ipython():  # %reload_kedro: mlflow.start_run() in a cell lands in the project's store
        adopt_project_store(config, credentials)


def catalog_created(catalog: Any, conf_catalog: dict[str, Any]) -> None:
    """Refuse kedro-mlflow's dataset types (before any run exists); tell this plugin's datasets their
    catalog entry names as soon as the catalog exists."""
    refuse_kedro_mlflow_types(conf_catalog or {})
    ours = [name for name, entry in (conf_catalog or {}).items()
            if "{" not in name and "kedro_mlflow_runs" in repr(entry)]
    if ours:
        name_datasets(catalog, ours)


def refuse_kedro_mlflow_types(conf_catalog: dict[str, Any]) -> None:
    """Fail when catalog entries still name kedro-mlflow's dataset types, naming them and the fix.

    Raises:
        MlflowDatasetError: naming each such entry and ``kedro mlflow migrate``.
    """
    left = {name: entry["type"] for name, entry in conf_catalog.items()
            if isinstance(entry, dict) and isinstance(entry.get("type"), str)
            and entry["type"].startswith("kedro_mlflow.") and not str(name).startswith("_")}
    if not left:
        return
    from .._version import docs_page
    from ..errors import MlflowDatasetError

    shown = [f"'{name}' ({kind})" for name, kind in sorted(left.items())[:5]]
    names = ", ".join(shown) + (f" and {len(left) - len(shown)} more" if len(left) > len(shown) else "")
    raise MlflowDatasetError(
        f"Catalog {'entries' if len(left) > 1 else 'entry'} {names} still "
        f"{'name' if len(left) > 1 else 'names'} kedro-mlflow's dataset types, which kedro-mlflow-runs "
        f"replaces. Run `kedro mlflow migrate` to see the rewrite, then `kedro mlflow migrate --write` to "
        f"apply it (see {docs_page('migrating-from-kedro-mlflow')}). No MLflow run was created.",
        dataset=sorted(left)[0])


def pipeline_starts(run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
    start_pipeline_run(run_params, pipeline, catalog)


def pipeline_finished(run_params: dict[str, Any]) -> None:
    """The pipeline succeeded: end the run FINISHED; unless someone ended it meanwhile, which fails the step."""
    kedro_run_id = str(run_params.get("run_id"))
    current = context_for(kedro_run_id)
    if current is not None and current.ended_elsewhere:
        error = RunStateError(
            f"MLflow run {current.run_id} was ended ({current.ended_elsewhere}) by another process (kedro mlflow "
            f"close-run?) while this Kedro run still ran: what it saved afterwards was refused, and this step "
            f"failed. Re-run it in a run that is open.", run_id=current.run_id)
        REGISTRY.finish(kedro_run_id, Outcome.killed(error))
        raise error
    ctx = REGISTRY.succeed(kedro_run_id)
    if ctx is not None and ctx.run_id is not None:
        logger.info("MLflow run %s is in %s", ctx.run_id, where(ctx.handle))


def pipeline_failed(error: Exception, run_params: dict[str, Any]) -> None:
    try:
        REGISTRY.finish(str(run_params.get("run_id")), Outcome.failed(error))
    except Exception as exc:  # never hide the pipeline's own error behind a tracking one (nor its traceback)
        logger.error("Could not record the failure of Kedro run %s in MLflow: %s", run_params.get("run_id"), exc,
                     exc_info=logger.isEnabledFor(logging.DEBUG))


def node_started(run_id: str, node: Any) -> None:
    """In a runner's worker thread or process, make the run MLflow's active run there too."""
    ctx = context_for(run_id)
    if ctx is None:
        return
    ctx.bind_thread()
    child = children.node_child(run_id, node.name) if node is not None else None
    if child is not None:  # its child run: MLflow's active run in this thread while the node runs
        children.set_current(node.name)
        from ..tracking import run_entity

        ctx.owner.process.bind(lambda: run_entity(child, ctx.handle.experiment_id), ctx.handle.tracking_uri)
    if ctx.in_worker:  # a spawned worker turns on the run's autologging itself
        worker_autolog()
    recorder = recorder_for(run_id)
    if recorder is not None and node is not None:
        recorder.node_started(node.name)


def node_ended(run_id: str, node: Any) -> None:
    ctx = context_for(run_id)
    if ctx is None:
        return
    _leave_child(ctx, run_id, node)
    ctx.unbind_thread()
    recorder = recorder_for(run_id)
    if recorder is not None and node is not None:
        recorder.node_ended(node.name)


def _leave_child(ctx: Any, run_id: str, node: Any) -> None:
    """Undo :func:`node_started`'s child binding (when the node has a child run)."""
    if node is not None and children.node_child(run_id, node.name) is not None:
        ctx.owner.process.unbind()
        children.set_current(None)


def node_failed(error: Exception, node: Any, run_id: str) -> None:
    ctx = context_for(run_id)
    if ctx is None:
        return
    node_name = getattr(node, "name", None)
    ctx.record_error(error, node_name)
    recorder = recorder_for(run_id)
    if recorder is not None and node_name:
        recorder.node_ended(node_name, "failed", error)
    if REGISTRY.tracked(run_id) is None or ctx.in_worker:
        # a ParallelRunner worker: the session's context never sees this record
        try:
            ctx.set_tags(error_tags(error, node_name, attempt=ctx.handle.attempt_id))
        except Exception:
            logger.warning("Could not record the error of node %s in MLflow run %s", node_name, ctx.run_id,
                           exc_info=True)
    _leave_child(ctx, run_id, node)
    ctx.unbind_thread()


def dataset_event(dataset_name: str, node: Any, *, done: bool, event: Callable[[RunRecorder], None] | None = None
                  ) -> None:
    """A load or save of ``dataset_name`` starts (``done=False``) or ended: note it on this thread's run
    (the error tags of one that fails), and hand ``event`` to its recorder. Never fails a node."""
    try:
        children.set_dataset(None if done else dataset_name)  # which child run its dataset uses
        ctx = current_run_context()
        if ctx is None or not ctx.is_active:
            return
        if node is not None:
            node_name = getattr(node, "name", None)
            (ctx.pending_io.done if done else ctx.pending_io.started)(dataset_name, node_name)
        recorder = recorder_for(ctx.kedro_run_id)
        if recorder is not None and event is not None:
            event(recorder)
    except Exception:
        logger.debug("Could not record a dataset event for the timeline or lineage", exc_info=True)


def dataset_loaded(dataset_name: str, data: Any, node: Any) -> None:
    """``dataset_name`` was loaded: its schema, and where it came from when it was downloaded from the run
    (an artifact dataset whose local file was missing), go to the lineage."""
    ctx = current_run_context()
    source = ctx.pending_io.take_source(dataset_name) if ctx is not None else None
    dataset_event(dataset_name, node, done=True,
                  event=lambda recorder: recorder.dataset(dataset_name, data, saved=False, source=source))
