"""What an attempt writes into its run when it starts and ends, and what it settles for the attempts
it supersedes (see ``attempts.py``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from .attempts import RUNNING, Attempt, attempt_states
from .liveness import process_alive
from .tags import TAG_ERROR_ATTEMPT, TAG_ERROR_DATASET, TAG_ERROR_MESSAGE, TAG_ERROR_NODE, TAG_ERROR_TYPE

if TYPE_CHECKING:  # pragma: no cover
    from ..tracking import Tracker

__all__ = ["ATTEMPTS_DIR", "AttemptBook"]

logger = logging.getLogger(__name__)

#: The run's artifact folder of attempt records.
ATTEMPTS_DIR: Final = "kedro/attempts"
_ERROR_TAGS: Final = (TAG_ERROR_TYPE, TAG_ERROR_MESSAGE, TAG_ERROR_NODE, TAG_ERROR_DATASET, TAG_ERROR_ATTEMPT)


class AttemptBook:
    """The attempts of one run, as its tags and ``kedro/attempts/`` hold them."""

    __slots__ = ("experiment_id", "run_id", "tracker")

    def __init__(self, tracker: Tracker, run_id: str, experiment_id: str) -> None:
        self.tracker = tracker
        self.run_id = run_id
        self.experiment_id = experiment_id

    def begin(self, attempt: Attempt, tags: Mapping[str, str]) -> None:
        """Record ``attempt`` (its tag is set already, with the run's start tags) and settle the attempts
        it supersedes: those of the same nodes (or fewer) that failed, were killed, or are dead (their
        heartbeat stopped, or, on this machine, their process is gone). One still beating is left alone:
        ``close-run`` settles it if this attempt ends and it never does."""
        now = time.time()
        for earlier in attempt_states(tags):
            if earlier.id == attempt.id or earlier.superseded_by or not earlier.repeated_by(attempt.nodes):
                continue
            gone = process_alive(earlier.host, earlier.pid) is False  # on this machine: known at once
            if earlier.state == "FINISHED" or (earlier.alive(now) and not gone):
                continue
            attempt.retry_of.append(earlier.id)
            self._supersede(earlier.id, attempt.id, last_beat=earlier.beat if earlier.state == RUNNING else None)
        self.write(attempt)

    def end(self, attempt: Attempt, outcome: str, error: Mapping[str, str] | None) -> None:
        """Record how ``attempt`` ended; when it finished, the errors of the attempts it superseded leave
        the run's tags (they stay in those attempts' records)."""
        attempt.end, attempt.outcome = time.time(), outcome
        attempt.error = dict(error) if error else None
        self.tracker.log_batch(self.run_id, tags={attempt.tag_key: attempt.tag_value()}, what="end the attempt in")
        self.write(attempt)
        if outcome == "FINISHED" and attempt.retry_of:
            tags = self.tracker.run_tags(self.run_id)
            if tags.get(TAG_ERROR_ATTEMPT) in attempt.retry_of:
                self.tracker.delete_tags(self.run_id, [key for key in _ERROR_TAGS if key in tags])

    def write(self, attempt: Attempt) -> None:
        self.tracker.log_text(self.run_id, attempt.record(), f"{ATTEMPTS_DIR}/{attempt.id}.json")

    def read(self, attempt_id: str) -> Attempt | None:
        """The record of an attempt (None when it cannot be read)."""
        try:
            return Attempt.from_record(self.tracker.read_text(self.run_id, f"{ATTEMPTS_DIR}/{attempt_id}.json"))
        except Exception:  # a record lost with its machine: the tag still tells the state
            return None

    def settle_dead(self, attempt_id: str, last_beat: float, *, redone_by: str | None = None) -> None:
        """An attempt that is dead (killed, machine lost; its last heartbeat at ``last_beat``), or was
        given up (``redone_by``: a later attempt ran its nodes again): record it KILLED, ended at its
        last sign of life."""
        record = self.read(attempt_id)
        if record is not None and record.outcome == RUNNING:
            record.outcome, record.end = "KILLED", record.end or last_beat
            record.superseded_by = record.superseded_by or redone_by
            self.write(record)
            self.tracker.log_batch(self.run_id, tags={record.tag_key: record.tag_value(beat=last_beat)},
                                   what="settle an attempt in")
        self.fail_models(attempt_id)

    def fail_models(self, attempt_id: str | None = None) -> int:
        """Mark FAILED the run's LoggedModels left PENDING (by ``attempt_id`` only, when given)."""
        failed = 0
        for model in self.tracker.pending_models(self.run_id, self.experiment_id):
            if attempt_id is None or (model.tags or {}).get("kedro.attempt") == attempt_id:
                self.tracker.fail_logged_model(model.model_id)
                failed += 1
        return failed

    def _supersede(self, earlier: str, later: str, *, last_beat: float | None) -> None:
        """``later`` runs again what ``earlier`` ran; ``last_beat``: the last heartbeat of an ``earlier``
        that never ended (it is recorded KILLED, ended then)."""
        record = self.read(earlier)
        if record is not None:
            record.superseded_by = later
            if last_beat is not None:
                record.outcome, record.end = "KILLED", record.end or last_beat
            self.write(record)
            beat = last_beat if last_beat is not None else record.end or record.start
            self.tracker.log_batch(self.run_id, tags={record.tag_key: record.tag_value(beat=beat)},
                                   what="settle an attempt in")
        self.fail_models(earlier)
