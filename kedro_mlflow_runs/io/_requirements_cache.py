"""The requirements cache: pinned requirements per (flavor, set of modules), in memory and on disk.

Deriving requirements maps modules to installed distributions (a scan of every installed
distribution, about 0.25 s). The result is kept in the process, and on disk in a small JSON file in
``KEDRO_MLFLOW_RUNS_CACHE_DIR``, else ``$XDG_CACHE_HOME/kedro-mlflow-runs``, else
``~/.cache/kedro-mlflow-runs``, keyed by the Python environment and invalidated when a
``site-packages`` folder on ``sys.path`` changes (a package installed, upgraded or removed): the scan
is paid once per environment, not once per ``kedro run``. A cache that cannot be read or written is
ignored.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Final

__all__ = ["CACHE_DIR_ENV", "REQUIREMENTS_CACHE", "RequirementsCache"]

logger = logging.getLogger(__name__)

#: Environment variable naming the folder of the on-disk requirements cache.
CACHE_DIR_ENV: Final = "KEDRO_MLFLOW_RUNS_CACHE_DIR"


class RequirementsCache:
    """Pinned requirements per ``flavor|module,module``: in memory, backed by one JSON file per environment."""

    __slots__ = ("_distributions", "_entries", "_fingerprint", "_loaded", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, list[str]] = {}
        self._loaded = False
        self._fingerprint: list[list[object]] = []
        self._distributions: Mapping[str, list[str]] | None = None

    def module_distributions(self) -> Mapping[str, list[str]]:
        """Top-level module -> installed distributions (a scan of every distribution: done once)."""
        with self._lock:
            if self._distributions is None:
                self._distributions = metadata.packages_distributions()
            return self._distributions

    def get(self, key: str) -> list[str] | None:
        """The requirements stored under ``key`` (a copy), or None; the file is read on first use."""
        with self._lock:
            if not self._loaded:
                self._load()
            found = self._entries.get(key)
            return list(found) if found is not None else None

    def put(self, key: str, requirements: list[str]) -> None:
        """Store ``requirements`` under ``key``, and write the file."""
        with self._lock:
            self._entries[key] = list(requirements)
            self._save()

    def clear(self) -> None:
        """Forget everything (tests): the next lookup reads the file again."""
        with self._lock:
            self._entries.clear()
            self._loaded = False

    @staticmethod
    def _file() -> Path:
        home = os.path.expanduser("~")
        if home.startswith("~"):  # no HOME and no passwd entry (some containers): not the project folder
            home = tempfile.gettempdir()
        root = os.environ.get(CACHE_DIR_ENV) or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"), "kedro-mlflow-runs")
        environment = hashlib.sha1(f"{sys.prefix}|{sys.executable}|{sys.version}".encode()).hexdigest()[:16]
        return Path(root) / f"requirements-{environment}.json"

    @staticmethod
    def _environment_fingerprint() -> list[list[object]]:
        """Each folder packages are installed into (``site-packages``, ``dist-packages``, on sys.path)
        with its modification time: installing, upgrading or removing a package changes it. Other
        entries (the working directory, a project's ``src``) change all the time and are left out."""
        stamps: list[list[object]] = []
        for entry in sys.path:
            if not entry.rstrip("/\\").endswith(("site-packages", "dist-packages")):
                continue
            try:
                stamps.append([entry, os.stat(entry).st_mtime_ns])
            except OSError:
                continue
        return stamps

    def _load(self) -> None:
        self._loaded = True
        self._fingerprint = self._environment_fingerprint()
        try:
            stored = json.loads(self._file().read_text(encoding="utf-8"))
            if stored.get("fingerprint") == self._fingerprint and isinstance(stored.get("entries"), dict):
                self._entries.update(stored["entries"])
        except (OSError, ValueError, AttributeError):
            return  # no cache yet, or one we cannot read: derive afresh

    def _save(self) -> None:
        path = self._file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False,
                                             encoding="utf-8") as out:
                json.dump({"fingerprint": self._fingerprint, "entries": self._entries}, out)
            try:
                os.replace(out.name, path)
            except OSError:
                os.unlink(out.name)
                raise
        except OSError:
            logger.debug("Could not write the requirements cache %s", path, exc_info=True)


#: The one cache of this process.
REQUIREMENTS_CACHE: Final = RequirementsCache()
