"""What starting and ending a RunContext sends to MLflow (the context itself only changes state)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._redact import redact_uri
from ..errors import RunStateError, TrackingError, TrackingUnavailableError
from ..handle import Ownership, RunState
from .tags import TAG_HOST, TAG_KEDRO_RUN_ID, TAG_PID, clip_tags

if TYPE_CHECKING:  # pragma: no cover
    from .context import RunContext

__all__ = ["close_run", "left_running", "open_run"]

logger = logging.getLogger(__name__)

def open_run(
    ctx: RunContext, run_name: str | None, tags: Mapping[str, str] | None
) -> tuple[Any, Ownership, dict[str, str]]:
    """Attach to the configured run, or create one: ``(run, ownership, params it already has)``."""
    cfg = ctx.config
    tracker = ctx.tracker
    all_tags = {**cfg.tracking.run.tags, **(tags or {})}
    if ctx.kedro_run_id:
        all_tags.setdefault(TAG_KEDRO_RUN_ID, ctx.kedro_run_id)
    if cfg.tracking.run.id:
        run = tracker.get_run(cfg.tracking.run.id, source=cfg.tracking.run.id_source)
        if run.info.status != "RUNNING":
            raise RunStateError(
                f"MLflow run {run.info.run_id} (from {cfg.tracking.run.id_source}) is {run.info.status}: a Kedro run "
                f"cannot attach to a run that has ended, and nothing was run. Attach to a run that is open "
                f"(`kedro mlflow open-run` opens one), or unset the run id to start a new run.",
                run_id=run.info.run_id,
            )
        # the process that opened the run owns it; an attaching step must not pose as its owner
        # (close-run --stale tells live runs by these two tags)
        all_tags = {k: v for k, v in all_tags.items() if k not in (TAG_HOST, TAG_PID)}
        if all_tags:
            tracker.log_batch(run.info.run_id, tags=clip_tags(all_tags), what="tag")
        return run, Ownership.ATTACHED, dict(run.data.params)
    experiment_id = tracker.ensure_experiment(
        cfg.tracking.experiment.name, artifact_location=cfg.artifact_location,
        restore_if_deleted=cfg.tracking.experiment.restore_if_deleted,
        tags=cfg.tracking.experiment.tags,
    )
    parent = ctx.owner.process.fluent_run_id() if cfg.tracking.run.nested else None
    if parent:  # a run the user started in this thread becomes the parent
        all_tags["mlflow.parentRunId"] = parent
    run = tracker.create_run(experiment_id, run_name=cfg.tracking.run.name or run_name, tags=clip_tags(all_tags))
    return run, Ownership.OWNED, {}


def close_run(ctx: RunContext, status: RunState, error_tags: Mapping[str, str] | None) -> None:
    """Record the error and end the MLflow run as ``status`` when the context may end it.

    Raises:
        TrackingError: MLflow could not be told (after trying every step).
    """
    handle = ctx.handle
    cfg = ctx.config
    terminate = ctx.ownership is Ownership.OWNED or cfg.tracking.run.attached.end_run or (
        status is not RunState.FINISHED and cfg.tracking.run.attached.record_failure
    )
    untagged: BaseException | None = None
    if error_tags and status is not RunState.FINISHED:
        try:
            ctx.tracker.log_batch(handle.run_id, tags=error_tags, what="record the error of")
        except Exception as exc:
            untagged = exc
    if terminate:
        try:
            ctx.tracker.set_terminated(handle.run_id, status.value)
        except Exception as exc:
            logger.debug("Could not end MLflow run %s", handle.run_id, exc_info=True)
            raise left_running(handle.run_id, status.value, exc) from None
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
    if untagged is not None:
        logger.debug("Could not record the error of MLflow run %s", handle.run_id, exc_info=True)
        ended = f"ended as {status.value}" if terminate else "left open for its owner"
        error_class = TrackingUnavailableError if isinstance(untagged, TrackingUnavailableError) else TrackingError
        raise error_class(
            f"MLflow run {handle.run_id} was {ended}, but the error that ended the Kedro run could not be "
            f"recorded on it (kedro.error.* tags): {untagged}", run_id=handle.run_id,
        ) from None


def left_running(run_id: str, status: str, cause: BaseException) -> TrackingError | TrackingUnavailableError:
    """The error saying that MLflow run ``run_id`` is left RUNNING because ending it as ``status``
    failed with ``cause``, and the command that ends it later (the same class as ``cause``: a
    store that did not answer stays a :class:`TrackingUnavailableError`)."""
    reason = str(cause) if isinstance(cause, (TrackingError, TrackingUnavailableError)) else (
        f"{type(cause).__name__}: {redact_uri(str(cause))}")
    error_class = TrackingUnavailableError if isinstance(cause, TrackingUnavailableError) else TrackingError
    return error_class(
        f"MLflow run {run_id} is left RUNNING: it could not be ended as {status}. {reason} Once the store "
        f"can be written again, end it from the project folder with: kedro mlflow close-run --run-id {run_id} "
        f"--status {status} (add --env <env> if this run used one); or, after this process has exited, "
        f"kedro mlflow close-run --stale --yes ends every run left RUNNING, as KILLED.",
        run_id=run_id,
    )
