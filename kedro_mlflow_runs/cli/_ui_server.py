"""The keeper of ``kedro mlflow ui``'s server, run as ``python -m kedro_mlflow_runs.cli._ui_server FD CMD...``.

``mlflow ui`` starts uvicorn, uvicorn starts its workers and MLflow its job runner: ending ``mlflow ui``
alone leaves them serving. This small process starts the server ``CMD`` in a process group of its own
and ends that whole group (SIGTERM, then SIGKILL for what is left after a grace period):

- when it receives SIGINT, SIGTERM, SIGHUP or SIGQUIT (``kedro mlflow ui`` forwards its signals);
- when ``kedro mlflow ui`` dies in any way, SIGKILL included: ``FD`` is the read end of a pipe whose only
  write end ``kedro mlflow ui`` holds, so end-of-file on it means that its parent is gone;
- when the server's main process ends, so that none of its children outlives it.

A group still there ``GRACE_S`` seconds after SIGTERM (a server that ignores it, or hangs shutting
down) gets SIGKILL.

It exits with the server's exit code (128 + the signal number when the server ended on a signal).
The server's output goes to this process's stderr.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

__all__ = ["main"]

#: Seconds the server's processes get to stop after SIGTERM before SIGKILL.
GRACE_S = 10.0


class _Keeper:
    """The server's process group, and the one way to end it."""

    __slots__ = ("_lock", "_stopping", "child")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = False
        self.child: subprocess.Popen[bytes] | None = None

    def start(self, cmd: list[str]) -> bool:
        """Start the server in a new session (its own process group); False if told to stop first."""
        with self._lock:
            if self._stopping:
                return False
            self.child = subprocess.Popen(cmd, stdout=sys.stderr.fileno(), start_new_session=True)
            return True

    def stop(self) -> None:
        """Ask the whole group to stop (once: later calls do nothing)."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            child = self.child
        if child is not None and _signal_group(child.pid, signal.SIGTERM):
            timer = threading.Timer(GRACE_S, _signal_group, (child.pid, signal.SIGKILL))
            timer.daemon = True
            timer.start()

    def end(self) -> None:
        """After the server's main process ended: stop what is left of its group, SIGKILL after the grace period."""
        if self.child is None or not _signal_group(self.child.pid, signal.SIGTERM):
            return
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline and _signal_group(self.child.pid, 0):
            time.sleep(0.1)
        _signal_group(self.child.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the process group; False when no process is left in it."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a pid reused by another user's process group
        return False
    return True


def _watch_parent(fd: int, keeper: _Keeper) -> None:
    """Block on the pipe from ``kedro mlflow ui``: end-of-file (or an error) means that it is gone."""
    try:
        while os.read(fd, 1024):
            pass
    except OSError:  # pragma: no cover
        pass
    keeper.stop()


def main(argv: list[str]) -> int:
    """Run the server ``argv[1:]`` until it ends or is told to; ``argv[0]`` is the pipe's read end."""
    fd, cmd = int(argv[0]), argv[1:]
    keeper = _Keeper()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, lambda _signum, _frame: keeper.stop())
    threading.Thread(target=_watch_parent, args=(fd, keeper), daemon=True, name="kedro-mlflow-ui-parent").start()
    if not keeper.start(cmd):
        return 128 + signal.SIGTERM
    assert keeper.child is not None
    try:
        code = keeper.child.wait()
    finally:
        keeper.end()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
