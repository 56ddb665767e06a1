"""The attempt and the heartbeat of a tracked ``kedro run``: what ``tracked_start.py`` adds to a run
so that steps on many machines, retries and kills read right (see ``core/attempts.py``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..core.attempt_book import AttemptBook
from ..core.attempts import HEARTBEAT_EVERY_TAG, HEARTBEAT_TAG, Attempt, heartbeat_interval
from ..core.context import RunContext
from ..core.heartbeat import Heartbeat
from ..core.tags import error_tags
from ..core.tracked import EndStep, TrackedRun
from ..handle import Outcome
from .run_info import command_line

__all__ = ["first_beat", "new_attempt", "start_beating", "track_attempt"]



def new_attempt(kedro_run_id: str, pipeline: Any) -> Attempt:
    """The attempt of a Kedro run that attaches to a run: its nodes, where it runs, the command."""
    return Attempt.new(kedro_run_id, [node.name for node in pipeline.nodes], command_line())


def first_beat(attempt: Attempt | None) -> dict[str, str]:
    """The heartbeat tag set with the run's start tags (no request of its own)."""
    if attempt is not None:
        return {attempt.tag_key: attempt.tag_value()}
    return {HEARTBEAT_TAG: f"{time.time():.3f}", HEARTBEAT_EVERY_TAG: f"{heartbeat_interval():g}"}


def track_attempt(ctx: RunContext, tracked: TrackedRun, attempt: Attempt) -> None:
    """Record the attempt (and settle the ones it supersedes) now, and how it ended at the end."""
    book = AttemptBook(ctx.tracker, ctx.handle.run_id, ctx.handle.experiment_id)
    book.begin(attempt, ctx.opened_tags)

    def record_end(ctx: RunContext, outcome: Outcome) -> None:
        error = ctx.error or outcome.error
        described: Mapping[str, str] | None = None
        if error is not None:
            described = error_tags(error, outcome.node, attempt=attempt.id)
        book.end(attempt, outcome.status.value, described)

    tracked.before_end.append(EndStep("the attempt's record", record_end))


def start_beating(ctx: RunContext, tracked: TrackedRun, attempt: Attempt | None) -> None:
    """Beat until the run ends (the first end step stops it); notice a run ended by someone else."""

    def beat(now: float) -> dict[str, str]:
        if attempt is not None:
            return {attempt.tag_key: attempt.tag_value(now)}
        return {HEARTBEAT_TAG: f"{now:.3f}"}

    def ended(status: str) -> None:
        ctx.ended_elsewhere = status

    stop = Heartbeat(ctx.tracker, ctx.handle.run_id, beat, heartbeat_interval(), ended).start()
    tracked.before_end.insert(0, EndStep("the heartbeat", lambda ctx, outcome: stop()))
