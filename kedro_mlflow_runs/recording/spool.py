"""The private folder where a run's worker processes leave their events, and reclaiming the folders of
runs that were killed (``kill -9``, a lost container) before they could remove their own.

A spool folder is ``<temp dir>/kedro-mlflow-runs-spool-<random>``, mode 0700. The process that owns
the run holds an exclusive ``flock`` on ``owner.lock`` inside it for as long as the run lasts (forked
workers share that lock; the kernel drops it when the last of them dies, however it dies). The
folder appears under its final name only once the lock is held, so every spool folder that can be
seen either has a live owner (its lock is held) or none. When a run starts, the folders whose lock
can be taken are removed: their owner is gone. This holds across PID namespaces (containers sharing
a temporary folder), where process ids would mislead. Without ``fcntl`` (Windows) nothing is
reclaimed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile

__all__ = ["SPOOL_PREFIX", "Spool", "reclaim_abandoned"]

logger = logging.getLogger(__name__)

SPOOL_PREFIX = "kedro-mlflow-runs-spool-"
_LOCK_FILE = "owner.lock"


class Spool:
    """A run's spool folder, held by its owner process until :meth:`remove`."""

    __slots__ = ("_lock", "path")

    def __init__(self, path: str, lock: int | None) -> None:
        self.path = path
        self._lock = lock  # the descriptor holding the owner's flock, None where flock is missing

    @classmethod
    def create(cls) -> Spool:
        """Reclaim abandoned spool folders, then make and lock a new one."""
        reclaim_abandoned()
        staging = tempfile.mkdtemp(prefix="kedro-mlflow-runs-new-")
        lock = _lock(os.path.join(staging, _LOCK_FILE), create=True)
        path = staging.replace("kedro-mlflow-runs-new-", SPOOL_PREFIX, 1)
        try:
            os.rename(staging, path)  # visible under its final name only once locked
        except OSError:
            if lock is not None:
                os.close(lock)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls(path, lock)

    def remove(self) -> None:
        """Delete the folder and let go of the lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._lock is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock)
            self._lock = None


def reclaim_abandoned(folder: str | None = None) -> list[str]:
    """Remove the spool folders in ``folder`` (the temporary folder) whose owner is gone; return them."""
    removed: list[str] = []
    try:
        entries = [e for e in os.scandir(folder or tempfile.gettempdir()) if e.name.startswith(SPOOL_PREFIX)]
    except OSError:
        return removed
    for entry in entries:
        try:
            lock = _lock(os.path.join(entry.path, _LOCK_FILE), create=False)
        except OSError:  # held by a live run, another user's, or gone meanwhile
            continue
        if lock is None:  # no flock here: nothing can be told
            return removed
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
        finally:
            os.close(lock)
    if removed:
        logger.debug("Removed %d spool folder(s) of killed runs: %s", len(removed), ", ".join(removed))
    return removed


def _lock(path: str, *, create: bool) -> int | None:
    """A descriptor of ``path`` holding an exclusive flock (None without fcntl).

    Raises:
        OSError: the file cannot be opened, or another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if create else fcntl.LOCK_NB))
    except OSError:
        os.close(fd)
        raise
    return fd
