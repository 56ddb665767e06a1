"""Signal guard: Kedro's error hooks never see signals, so a run would stay RUNNING.

Guarded: SIGINT (Ctrl-C), SIGTERM (``kill``, orchestrators), SIGHUP (the terminal or ssh session
closed) and SIGQUIT (Ctrl-\\). While a run is active, the guard's handler reports the signal (the
run is ended KILLED and the process's multiprocessing workers are stopped), restores the previous
handlers, then hands the signal on to them: SIGINT still raises KeyboardInterrupt, the others still
end the process as they would have. Forked children (ParallelRunner) inherit the handler; there it
only hands the signal on.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

GUARDED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name)
)


class SignalGuard:
    """Calls ``on_signal(signum)`` once when a guarded signal arrives in this process.

    For a signal that ends the process, ``stop_workers`` (if given) is called first to stop the
    runner's helper processes cleanly (a multiprocessing manager removes its temporary folder when
    asked to shut down, not when terminated); then every multiprocessing child still alive is
    terminated.
    """

    def __init__(self, on_signal: Callable[[int], None], stop_workers: Callable[[], None] | None = None):
        self._on_signal = on_signal
        self._stop_workers = stop_workers
        self._previous: dict[int, Any] = {}
        self._pid = os.getpid()
        self._fired = False

    def install(self) -> bool:
        """Install the handlers; False (and nothing changed) outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            logger.debug("Not in the main thread: signals will not end the MLflow run.")
            return False
        for signum in GUARDED_SIGNALS:
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN:
                continue
            self._previous[signum] = previous
            signal.signal(signum, self._handle)
        return True

    def restore(self) -> None:
        """Put back the handlers that were there before, where ours is still installed."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in list(self._previous.items()):
            try:
                if signal.getsignal(signum) == self._handle:
                    signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            except (ValueError, OSError):  # pragma: no cover - interpreter shutting down
                pass
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous.get(signum, signal.SIG_DFL)
        if os.getpid() == self._pid and not self._fired:
            self._fired = True
            try:
                self._on_signal(signum)
            except Exception:
                logger.exception("Could not end the MLflow run on %s", signal.Signals(signum).name)
            if signum != signal.SIGINT:  # the process is going down: do not leave its workers behind
                if self._stop_workers is not None:
                    try:
                        self._stop_workers()
                    except Exception:
                        logger.debug("Could not stop the runner's workers cleanly", exc_info=True)
                _stop_workers()
        self.restore()
        if callable(previous):
            previous(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)


def _stop_workers() -> None:
    """Terminate this process's multiprocessing children (ParallelRunner's pool): the run they
    would log into has ended KILLED, and the process is going down."""
    import multiprocessing

    for child in multiprocessing.active_children():
        try:
            child.terminate()
        except Exception:  # pragma: no cover - already gone
            logger.debug("Could not terminate %r", child, exc_info=True)
