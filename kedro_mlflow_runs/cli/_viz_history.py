"""What Kedro-Viz's experiment tracking kept on disk, read as one record per Kedro session.

The facts relied on (Kedro and Kedro-Viz 6-10):

* a versioned dataset saved in a Kedro session writes ``<filepath>/<version>/<file name>``, the
  version being the session id, ``YYYY-MM-DDTHH.MM.SS.fffZ`` in UTC;
* Viz's ``SQLiteStore`` keeps ``session_store.db`` (in ``SESSION_STORE_ARGS["path"]``): table ``runs``
  (``id`` the session id, ``blob`` the session store as JSON: ``git`` with ``commit_sha``, ``dirty``
  and ``branch``, ``cli`` with ``command_path``, ``args`` and ``params``, ``username``, ...), and table
  ``user_run_details`` (``run_id``, ``title``, ``notes``, ``bookmark``) for what users wrote in Viz;
* Viz showed, per session, the tracking datasets (``tracking.MetricsDataset``: ``{name: number}``;
  ``tracking.JSONDataset``: any JSON) and the versioned plot datasets of that version.

The catalog is read from the YAML files of ``conf/`` and their ``.bak`` copies (``kedro mlflow migrate
--write`` keeps the originals there), so the history is found before and after the migration.
"""

from __future__ import annotations

import json
import re
import sqlite3
from calendar import timegm
from dataclasses import dataclass, field
from pathlib import Path
from time import strptime
from typing import Any, Final

import yaml

from .._redact import _is_secret_name
from ..errors import KedroMlflowRunsError
from ._viz_rules import JSON, METRICS, PLOT_TYPES, viz_type

__all__ = ["VizSession", "find_session_store", "read_history", "version_ms"]

VERSION: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}\.\d{3}Z")
_CATALOG_FILES: Final = ("catalog*.yml", "catalog*.yaml", "catalog*.yml.bak", "catalog*.yaml.bak", "**/catalog*.yml",
                         "**/catalog*.yml.bak", "catalog*/**/*.yml", "catalog*/**/*.yml.bak")
_STORE_PLACES: Final = ("session_store.db", "data/session_store.db", ".viz/session_store.db")


@dataclass
class VizSession:
    """One Kedro session as Viz showed it: what the session store said, and the files of its version."""

    version: str
    info: dict[str, Any] = field(default_factory=dict)  # the session store's blob
    details: dict[str, Any] = field(default_factory=dict)  # title, notes, bookmark
    metrics: dict[str, float] = field(default_factory=dict)  # <entry>.<name> -> value
    params: dict[str, str] = field(default_factory=dict)  # <entry>.<key> -> a JSON file's scalar value
    files: list[Path] = field(default_factory=list)  # JSON files and plots, logged as artifacts

    @property
    def command(self) -> str:
        cli = self.info.get("cli") or {}
        path = str(cli.get("command_path") or "")
        args = cli.get("args") or []
        return " ".join([path, *map(str, args)]).strip() if path else ""


def version_ms(version: str) -> int:
    """A session id (``2024-05-01T10.20.30.456Z``) as milliseconds since the epoch."""
    seconds = timegm(strptime(version[:19], "%Y-%m-%dT%H.%M.%S"))
    return seconds * 1000 + int(version[20:23])


def tracking_entries(project: Path, env: str | None) -> dict[str, tuple[str, str]]:
    """``{entry: (type, filepath)}`` of the tracking and versioned plot datasets of the catalog files."""
    found: dict[str, tuple[str, str]] = {}
    folders = [project / "conf" / "base", project / "conf" / (env or "local")]
    for folder in folders:
        paths = sorted({p for pattern in _CATALOG_FILES for p in folder.glob(pattern) if p.is_file()})
        for path in paths:
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                raise KedroMlflowRunsError(f"kedro mlflow import-history: cannot read {path}: {exc}") from None
            for name, entry in (data or {}).items() if isinstance(data, dict) else ():
                kind, filepath = _tracked(entry)
                if kind and filepath and not str(name).startswith("_") and "{" not in str(name):
                    found.setdefault(str(name), (kind, filepath))
    return found


def _tracked(entry: Any) -> tuple[str | None, str | None]:
    """The Viz type and file path of a catalog entry as Viz's users wrote it (after ``migrate --write``,
    the catalog's ``.bak`` holds it)."""
    if not isinstance(entry, dict):
        return None, None
    kind = viz_type(str(entry.get("type", "")))
    if kind is None or (kind in PLOT_TYPES and not entry.get("versioned")):
        return None, None
    filepath = entry.get("filepath")
    return kind, str(filepath) if isinstance(filepath, str) and "${" not in filepath else None


def find_session_store(project: Path, given: Path | None) -> Path | None:
    """Viz's ``session_store.db``: ``given``, else where Viz's settings usually put it."""
    if given is not None:
        if not given.is_file():
            raise KedroMlflowRunsError(f"kedro mlflow import-history: no session store at {given}.")
        return given
    return next((project / p for p in _STORE_PLACES if (project / p).is_file()), None)


def read_history(project: Path, entries: dict[str, tuple[str, str]], store: Path | None) -> list[VizSession]:
    """One :class:`VizSession` per version found in the session store or in the tracking files, oldest first."""
    sessions: dict[str, VizSession] = {}
    if store is not None:
        for version, info, details in _store_rows(store):
            sessions[version] = VizSession(version, info, details)
    for name, (kind, filepath) in sorted(entries.items()):
        folder = project / filepath
        if not folder.is_dir():
            continue
        for version_dir in sorted(folder.iterdir()):
            target = version_dir / folder.name
            if not (VERSION.fullmatch(version_dir.name) and target.is_file()):
                continue
            session = sessions.setdefault(version_dir.name, VizSession(version_dir.name))
            _add_file(session, name, kind, target)
    runs = [s for s in sessions.values() if s.files or s.metrics or s.params or _ran(s)]
    return sorted(runs, key=lambda s: s.version)


def _ran(session: VizSession) -> bool:
    """A session of ``kedro run`` (not ``kedro viz`` or ``kedro ipython``), as Viz listed them."""
    name = (session.info.get("cli") or {}).get("command_name")
    return name in (None, "run")


def _add_file(session: VizSession, name: str, kind: str, path: Path) -> None:
    if kind not in (METRICS, JSON):
        session.files.append(path)
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise KedroMlflowRunsError(f"kedro mlflow import-history: {path} (dataset '{name}', version "
                                   f"{session.version}) is not valid JSON: {exc}. Fix or remove it, then run again.")
    if kind == JSON:
        session.files.append(path)
        if isinstance(data, dict):
            session.params.update({f"{name}.{k}": str(v) for k, v in data.items()  # never a credential-like key
                                   if isinstance(v, (str, int, float, bool)) and len(str(v)) <= 6000
                                   and not _is_secret_name(str(k))})
        return
    if not isinstance(data, dict):
        raise KedroMlflowRunsError(f"kedro mlflow import-history: {path} (dataset '{name}') holds no "
                                   f"{{name: number}} mapping of metrics. Fix or remove it, then run again.")
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise KedroMlflowRunsError(f"kedro mlflow import-history: {path} (dataset '{name}'): metric "
                                       f"'{key}' is {value!r}, not a number. Fix or remove it, then run again.")
        session.metrics[f"{name}.{key}"] = float(value)


def _store_rows(store: Path) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """``(session id, blob, user details)`` of every row of Viz's session store."""
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT id, blob FROM runs").fetchall()
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            details: dict[str, dict[str, Any]] = {}
            if "user_run_details" in tables:
                for run_id, title, notes, bookmark in db.execute(
                        "SELECT run_id, title, notes, bookmark FROM user_run_details"):
                    details[str(run_id)] = {"title": title, "notes": notes, "bookmark": bool(bookmark)}
    except sqlite3.Error as exc:
        raise KedroMlflowRunsError(f"kedro mlflow import-history: cannot read Kedro-Viz's session store {store}: "
                                   f"{exc}. Pass the right file with --session-store.") from None
    found = []
    for session_id, blob in rows:
        if not VERSION.fullmatch(str(session_id)):
            continue
        info = _blob(blob)
        found.append((str(session_id), info, details.get(str(session_id), {})))
    return found


def _blob(blob: Any) -> dict[str, Any]:
    """The session store's JSON (Viz wrote a JSON string into a JSON column: decoded once or twice)."""
    value = blob
    for _ in range(2):
        if isinstance(value, (str, bytes)):
            try:
                value = json.loads(value)
            except ValueError:
                return {}
    return value if isinstance(value, dict) else {}
