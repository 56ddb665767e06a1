"""The heartbeat of a process that writes into a run: a tag it rewrites every few seconds while it runs.

``kedro mlflow close-run --stale`` ends only runs whose every heartbeat is older than a threshold,
so it never ends a run that a process (on any machine) is still writing into. At each beat the run's
status is read too: when someone else ended the run meanwhile (``close-run``), the process knows, its
datasets stop writing into it, and the step fails saying so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..tracking import Tracker

__all__ = ["Heartbeat"]

logger = logging.getLogger(__name__)


class Heartbeat:
    """A daemon thread that sets ``beat(now)``'s tags on a run every ``interval`` seconds, and calls
    ``on_ended(status)`` (then stops) when it finds the run no longer RUNNING."""

    __slots__ = ("_beat", "_interval", "_on_ended", "_run_id", "_stop", "_thread", "_tracker")

    def __init__(self, tracker: Tracker, run_id: str, beat: Callable[[float], Mapping[str, str]], interval: float,
                 on_ended: Callable[[str], None]) -> None:
        self._tracker = tracker
        self._run_id = run_id
        self._beat = beat
        self._interval = interval
        self._on_ended = on_ended
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Callable[[], None]:
        """Start beating (the first beat is the caller's, with the run's start tags); returns the stop."""
        self._thread = threading.Thread(target=self._run, name="kedro-mlflow-runs-heartbeat", daemon=True)
        self._thread.start()
        return self.stop

    def stop(self) -> None:
        """Stop beating (waits for a beat in flight, briefly)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._tracker.log_batch(self._run_id, tags=self._beat(time.time()), what="beat in")
                status = self._tracker.run_status(self._run_id)
            except Exception as exc:  # a store that does not answer now may answer at the next beat
                logger.debug("Heartbeat of MLflow run %s failed: %s", self._run_id, exc)
                continue
            if status != "RUNNING" and not self._stop.is_set():
                self._on_ended(status)
                return
