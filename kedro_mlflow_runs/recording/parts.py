"""The part of a run each attached ``kedro run`` writes, and the files merged from every part.

Several processes attached to one run (the orchestrator pattern) each log their part as
``kedro/parts/<attempt id>.json`` and rewrite the merged files (``kedro/timeline.json`` and
``.html``, ``pipeline.json``, ``outputs.json``) from every part there; ``kedro mlflow close-run``
merges them once more when it closes the run. An attempt killed before it could log its part (``kill
-9``, a lost machine) appears in the merged timeline as one ``killed`` entry spanning its start to its
last heartbeat, on its own lane, from what its tag says (``core/attempts.py``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from ..core.attempts import AttemptState, attempt_states
from ..tracking import Tracker
from .timeline import KILLED
from .timeline_page import render

__all__ = ["ARTIFACT_DIR", "PARTS_DIR", "killed_entry", "log_files", "merge_parts", "merged_files", "part_name"]

#: The run's artifact folder for what the plugin records.
ARTIFACT_DIR: Final = "kedro"
PARTS_DIR: Final = f"{ARTIFACT_DIR}/parts"


def merge_parts(tracker: Tracker, run_id: str, *, status: str,
                on_merged: Callable[[dict[str, str]], None] | None = None) -> int:
    """Rewrite ``kedro/timeline.*``, ``pipeline.json`` and ``outputs.json`` of ``run_id`` from every
    part under ``kedro/parts/`` (the orchestrator pattern); returns how many parts there were.
    ``on_merged`` gets the merged files (the closer of the run writes its trace from them)."""
    with tempfile.TemporaryDirectory(prefix="kedro-mlflow-runs-parts-") as tmp:
        parts, names = [], set()
        for path in tracker.list_artifacts(run_id, PARTS_DIR):
            if path.endswith(".json"):
                local = tracker.download_artifact(run_id, path, tmp)
                parts.append(json.loads(Path(local).read_text(encoding="utf-8")))
                names.add(Path(path).stem)
    killed = [a for a in attempt_states(tracker.run_tags(run_id)) if a.state == "KILLED" and a.id not in names]
    if parts or killed:
        files = merged_files(parts, status=status, run_id=run_id, killed=killed)
        log_files(tracker, run_id, files, ARTIFACT_DIR)
        if on_merged is not None:
            on_merged(files)
    return len(parts)


def merged_files(parts: list[Mapping[str, Any]], *, status: str, run_id: str,
                 killed: Sequence[AttemptState] = ()) -> dict[str, str]:
    """The artifact files of the merged ``parts``, with one timeline entry per attempt in ``killed``
    (attempts that logged no part)."""
    files: dict[str, str] = {}
    timelines = [p["timeline"] for p in parts if "timeline" in p]
    if timelines or killed:
        entries = [e for t in timelines for e in t] + [killed_entry(a) for a in killed]
        timeline = sorted(entries, key=lambda e: (e["start"], e["node"]))
        files["timeline.json"] = json.dumps(timeline, indent=1)
        kedro_runs = ", ".join(sorted({str(p.get("kedro_run_id")) for p in parts}))
        title = f"Node timeline of MLflow run {run_id} (Kedro run {kedro_runs})"
        files["timeline.html"] = render(timeline, title=title, status=status)
        nodes: dict[str, Any] = {}
        for p in parts:
            for node in p.get("pipeline", {}).get("nodes", []):
                nodes.setdefault(node["name"], node)
        if len(parts) == 1 and "pipeline" in parts[0]:
            files["pipeline.json"] = json.dumps(parts[0]["pipeline"], indent=1)
        elif nodes or not killed:
            files["pipeline.json"] = json.dumps({"nodes": list(nodes.values())}, indent=1)
    outputs = [o for p in parts for o in p.get("outputs", [])]
    if any("outputs" in p for p in parts):
        files["outputs.json"] = json.dumps(outputs, indent=1)
    return files


def killed_entry(attempt: AttemptState) -> dict[str, Any]:
    """The timeline entry of an attempt killed before it logged its part: from its start to its last
    heartbeat, named after its node (or how many nodes it ran), on the lane of its host and process."""
    nodes = sorted(attempt.nodes or ())
    name = nodes[0] if len(nodes) == 1 else f"attempt {attempt.id} ({len(nodes) or '?'} nodes)"
    end = max(attempt.beat, attempt.start)
    return {"node": name, "start": attempt.start, "end": end, "duration_s": round(end - attempt.start, 6),
            "worker": {"host": attempt.host, "pid": attempt.pid, "thread": "-", "attempt": attempt.id},
            "status": KILLED, "nodes": nodes, "load_s": 0.0, "compute_s": round(end - attempt.start, 6),
            "save_s": 0.0}


def log_files(tracker: Tracker, run_id: str, files: Mapping[str, str], artifact_path: str) -> None:
    """Log ``{file name: text}`` under ``artifact_path`` of ``run_id`` (one upload of a folder)."""
    if not files:
        return
    with tempfile.TemporaryDirectory(prefix="kedro-mlflow-runs-") as tmp:
        for name, text in files.items():
            Path(tmp, name).write_text(text, encoding="utf-8")
        tracker.log_artifact(run_id, tmp, artifact_path)


def part_name(kedro_run_id: str, attempt_id: str | None) -> str:
    """The file name of a process's part: its attempt (unique on every machine), else its Kedro run and
    process id."""
    return re.sub(r"[^\w.-]", "_", attempt_id or f"{kedro_run_id}-{os.getpid()}")

