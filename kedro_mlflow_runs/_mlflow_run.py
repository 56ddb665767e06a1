"""What starting and ending a RunContext sends to MLflow (the context itself only changes state)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._redact import redact_uri
from .errors import TrackingError
from .handle import Ownership, RunState
from .params import MAX_TAG_VALUE_LENGTH
from .registry import registry

if TYPE_CHECKING:  # pragma: no cover
    from .context import RunContext

__all__ = ["TAG_ERROR_MESSAGE", "TAG_ERROR_NODE", "TAG_ERROR_TYPE", "TAG_KEDRO_RUN_ID", "clip_tags", "close_run", "error_tags", "open_run"]

logger = logging.getLogger(__name__)

#: Tag keys this plugin writes.
TAG_KEDRO_RUN_ID = "kedro.run_id"
TAG_ERROR_TYPE = "kedro.error.type"
TAG_ERROR_MESSAGE = "kedro.error.message"
TAG_ERROR_NODE = "kedro.error.node"
TAG_ERROR_DATASET = "kedro.error.dataset"


def open_run(ctx: RunContext, run_name: str | None, tags: Mapping[str, str] | None) -> tuple[Any, Ownership, dict[str, str]]:
    """Attach to the configured run, or create one: ``(run, ownership, params it already has)``."""
    cfg = ctx.config
    tracker = ctx.tracker
    all_tags = {**cfg.run_tags, **(tags or {})}
    if ctx.kedro_run_id:
        all_tags.setdefault(TAG_KEDRO_RUN_ID, ctx.kedro_run_id)
    if cfg.run_id:
        run = tracker.get_run(cfg.run_id, source=cfg.run_id_source)
        # the process that opened the run owns it; an attaching step must not pose as its owner
        # (close-run --stale tells live runs by these two tags)
        all_tags = {k: v for k, v in all_tags.items() if k not in ("kedro.host", "kedro.pid")}
        if all_tags:
            tracker.log_batch(run.info.run_id, tags=clip_tags(all_tags), what="tag")
        return run, Ownership.ATTACHED, dict(run.data.params)
    experiment_id = tracker.ensure_experiment(
        cfg.experiment_name, artifact_location=cfg.artifact_location, restore_if_deleted=cfg.restore_if_deleted,
        tags=cfg.experiment_tags,
    )
    parent = registry().process.fluent_run_id() if cfg.nested else None
    if parent:  # a run the user started in this thread becomes the parent
        all_tags["mlflow.parentRunId"] = parent
    run = tracker.create_run(experiment_id, run_name=cfg.run_name or run_name, tags=clip_tags(all_tags))
    return run, Ownership.OWNED, {}


def close_run(ctx: RunContext, status: RunState, error_tags: Mapping[str, str] | None) -> None:
    """Record the error and end the MLflow run as ``status`` when the context may end it.

    Raises:
        TrackingError: MLflow could not be told (after trying every step).
    """
    handle = ctx.handle
    cfg = ctx.config
    terminate = ctx.ownership is Ownership.OWNED or cfg.attached_end_run or (
        status is not RunState.FINISHED and cfg.attached_record_failure
    )
    problems: list[BaseException] = []
    if error_tags and status is not RunState.FINISHED:
        try:
            ctx.tracker.log_batch(handle.run_id, tags=error_tags, what="record the error of")
        except Exception as exc:
            problems.append(exc)
    if terminate:
        try:
            ctx.tracker.set_terminated(handle.run_id, status.value)
        except Exception as exc:
            problems.append(exc)
        except BaseException:  # Ctrl-C during this last request: end the run once more, then go on
            try:
                ctx.tracker.set_terminated(handle.run_id, status.value)
            except BaseException:  # a second interruption: nothing more we can do
                logger.debug("Could not end MLflow run %s after an interruption", handle.run_id, exc_info=True)
            raise
        logger.info("Ended MLflow run %s as %s", handle.run_id, status.value)
    else:
        logger.info("Kedro run %s; left MLflow run %s open for its owner (attached run).",
                    status.value.lower(), handle.run_id)
    if problems:
        first = problems[0]
        if isinstance(first, TrackingError):
            raise first
        raise TrackingError(f"Could not end MLflow run {handle.run_id}: {first}", run_id=handle.run_id) from first


def clip_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v)[:MAX_TAG_VALUE_LENGTH] for k, v in tags.items()}


def error_tags(error: BaseException, node_name: str | None = None) -> dict[str, str]:
    """The tags recording ``error`` (and the node it came from) on a run."""
    kind = f"{type(error).__module__}.{type(error).__qualname__}".removeprefix("builtins.")
    tags = {TAG_ERROR_TYPE: kind, TAG_ERROR_MESSAGE: redact_uri(str(error) or repr(error), limit=MAX_TAG_VALUE_LENGTH)}
    if node_name:
        tags[TAG_ERROR_NODE] = node_name
    dataset = getattr(error, "dataset", None)  # our dataset errors name their dataset
    if isinstance(dataset, str) and dataset:
        tags[TAG_ERROR_DATASET] = dataset
    return clip_tags(tags)

