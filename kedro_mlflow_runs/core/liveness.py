"""Whether anyone still writes into a run, and how a run that steps attached to should end.

A run is *live* while a process writes into it: its owner (the ``kedro run`` that opened it) or an
attempt (a ``kedro run`` attached to it) that is alive. An attempt is dead once it missed three
heartbeats, once its process is gone (known at once on this machine), or once a later attempt ran
all its nodes again and ended (the orchestrator gave it up). The sweeper asks more: a run is stale
only when no attempt is alive and its last sign of life (a heartbeat, its start) is older than
``--older-than``.
``kedro mlflow close-run --stale`` ends only runs that are not live; ``close-run`` refuses to end a
run with a live attempt unless forced; ``--status auto`` reads the attempts' outcomes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .attempts import HEARTBEAT_EVERY_TAG, HEARTBEAT_TAG, RUNNING, AttemptState, attempt_states, beat_is_fresh
from .tags import TAG_HOST, TAG_PID

__all__ = ["Liveness", "auto_status", "liveness", "never_finished", "process_alive"]


def process_alive(host: str | None, pid: int | str | None) -> bool | None:
    """Whether process ``pid`` of ``host`` is alive: None when that cannot be told (another host)."""
    if host != socket.gethostname() or not str(pid or "").isdigit() or os.name == "nt":
        return None  # (on Windows os.kill(pid, 0) would terminate the process, not probe it)
    try:
        os.kill(int(str(pid)), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return None
    return True


@dataclass(frozen=True)
class Liveness:
    """What a run's tags say about who still writes into it."""

    last_sign: float  # epoch seconds: the newest heartbeat, else the run's start
    live: tuple[AttemptState, ...]  # attempts still running, heartbeat fresh
    dead: tuple[AttemptState, ...]  # attempts that never ended and whose heartbeat stopped
    owner_alive: bool | None  # the opening process: alive, gone, or cannot tell (another host)
    attempts: tuple[AttemptState, ...]
    owner_beating: bool = False  # the opening process's heartbeat missed fewer than MISSED_BEATS beats

    def is_live(self, now: float, older_than: float) -> bool:
        """Someone writes into the run: a live attempt, a live owner, or a sign of life too recent.

        A process on another machine cannot be probed: its heartbeat tells, whatever ``older_than``."""
        if self.live or self.owner_alive:
            return True
        if self.owner_alive is False and not self.attempts:
            return False  # its owner is gone (this machine): nothing else can write into it
        return self.owner_beating or now - self.last_sign < older_than


def liveness(tags: Mapping[str, str], start_time: float, now: float) -> Liveness:
    """Who writes into a run, from its tags (``start_time`` in epoch seconds)."""
    attempts = attempt_states(tags)
    signs = [start_time, *(a.beat for a in attempts)]
    beating = False
    try:
        owner_beat = float(tags.get(HEARTBEAT_TAG) or 0)
        signs.append(owner_beat)
        beating = beat_is_fresh(owner_beat, float(tags.get(HEARTBEAT_EVERY_TAG) or 0), now)
    except ValueError:
        pass
    live: list[AttemptState] = []
    dead: list[AttemptState] = []
    for attempt in attempts:
        if attempt.state != RUNNING:
            continue
        gone = process_alive(attempt.host, attempt.pid) is False
        given_up = any(attempt.redone_by(later) for later in attempts)
        (dead if gone or given_up or not attempt.alive(now) else live).append(attempt)
    return Liveness(max(signs), tuple(live), tuple(dead), process_alive(tags.get(TAG_HOST), tags.get(TAG_PID)),
                    tuple(attempts), beating)


def auto_status(attempts: tuple[AttemptState, ...], expected: Collection[str] = ()) -> str:
    """FINISHED when the last attempt of every node finished, FAILED otherwise (superseded attempts do
    not count; an attempt whose nodes are unknown counts for itself). No attempt at all: FINISHED.
    ``expected``: nodes that must have been finished by an attempt (see :func:`never_finished`)."""
    latest = _latest_attempts(attempts)
    if never_finished(attempts, expected):
        return "FAILED"
    return "FINISHED" if all(a.state == "FINISHED" for a in latest.values()) else "FAILED"


def never_finished(attempts: tuple[AttemptState, ...], expected: Collection[str]) -> list[str]:
    """The ``expected`` nodes no attempt recorded (their step failed before it attached to the run: its
    container never started, the project did not load), sorted. Attempts whose nodes are too many for
    their tag are counted from what their tag says (nothing): pass ``expected`` only for pipelines
    whose node names fit."""
    ran = {node for a in attempts if a.nodes is not None for node in a.nodes}
    return sorted(set(expected) - ran)


def _latest_attempts(attempts: tuple[AttemptState, ...]) -> dict[str, AttemptState]:
    current = [a for a in attempts if not a.superseded_by]
    latest: dict[str, AttemptState] = {}
    for attempt in sorted(current, key=lambda a: a.start):
        for node in attempt.nodes if attempt.nodes is not None else {f"<attempt {attempt.id}>"}:
            latest[node] = attempt
    return latest
