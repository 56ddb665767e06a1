"""The node timeline of a run as one MLflow trace (``tracking.timeline.trace``): a root span for the
Kedro run and a span per node run, on MLflow's time axis, written when the run ends.

Each node span carries its worker (host, process, thread, Dask worker), attempt, the seconds spent
loading, computing and saving, and the datasets it read and wrote (from ``kedro/pipeline.json``); a
node that failed, was interrupted or killed is an error span. Built from the merged timeline, so a
run with parts from several processes or machines gets one trace over all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..tracking import Tracker

__all__ = ["trace_spans", "write_run_trace"]

logger = logging.getLogger(__name__)

_SECONDS = ("duration_s", "load_s", "compute_s", "save_s")


def trace_spans(timeline: Sequence[Mapping[str, Any]], pipeline: Mapping[str, Any], *, status: str,
                kedro_run_id: str | None) -> list[dict[str, Any]]:
    """The spans of a run's trace (the root first), from its timeline entries and pipeline description."""
    if not timeline:
        return []
    nodes = {str(n.get("name")): n for n in pipeline.get("nodes", []) if isinstance(n, Mapping)}
    start = min(float(e["start"]) for e in timeline)
    end = max(float(e["end"]) for e in timeline)
    root = {"name": "kedro run", "id": 1, "parent": None, "start_ns": int(start * 1e9), "end_ns": int(end * 1e9),
            "ok": status == "FINISHED", "message": "" if status == "FINISHED" else f"run {status}", "kind": "CHAIN",
            "attributes": {"kedro.run_id": kedro_run_id or "", "kedro.status": status, "kedro.nodes": len(timeline)}}
    spans = [root]
    for number, entry in enumerate(sorted(timeline, key=lambda e: (float(e["start"]), str(e["node"]))), start=2):
        name = str(entry["node"])
        state = str(entry.get("status", "completed"))
        attributes: dict[str, Any] = {"kedro.node": name, "kedro.status": state,
                                      **{f"kedro.{k}": entry[k] for k in _SECONDS if entry.get(k) is not None}}
        worker = entry.get("worker") or {}
        attributes.update({f"kedro.worker.{k}": v for k, v in worker.items() if v is not None})
        if entry.get("attempt"):
            attributes["kedro.attempt"] = entry["attempt"]
        described = nodes.get(name, {})
        for side in ("inputs", "outputs"):
            if described.get(side):
                attributes[f"kedro.{side}"] = list(described[side])
        spans.append({"name": name, "id": number, "parent": 1, "start_ns": int(float(entry["start"]) * 1e9),
                      "end_ns": int(float(entry["end"]) * 1e9), "ok": state == "completed",
                      "message": "" if state == "completed" else f"node {state}" + (
                          f": {entry['error']}" if entry.get("error") else ""),
                      "kind": "UNKNOWN", "attributes": attributes})
    return spans


def write_run_trace(tracker: Tracker, run_id: str, experiment_id: str, files: Mapping[str, str], *, status: str,
                    kedro_run_id: str | None) -> None:
    """Write the trace of the timeline in ``files`` (``timeline.json``, ``pipeline.json``); a failure is a
    warning: the run, its timeline page and its status are unchanged."""
    import json

    try:
        timeline = json.loads(files.get("timeline.json") or "[]")
        pipeline = json.loads(files.get("pipeline.json") or "{}")
        spans = trace_spans(timeline, pipeline, status=status, kedro_run_id=kedro_run_id)
        if spans:
            tracker.write_trace(run_id, experiment_id, spans, ok=status == "FINISHED",
                                tags={"kedro.run_id": kedro_run_id or ""})
    except Exception as exc:
        logger.warning("Could not write the node timeline of MLflow run %s as an MLflow trace (%s: %s); "
                       "kedro/timeline.html has it. Set tracking.timeline.trace: false to stop trying.",
                       run_id, type(exc).__name__, exc)
