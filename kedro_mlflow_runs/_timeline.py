"""The node timeline: when each node ran, on which worker, how it ended; and the pipeline that ran.

Pure functions over the events the recorder collected (``_recorder.py``); no MLflow import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .params import MAX_KEY_LENGTH

__all__ = ["DURATION_METRIC_PREFIX", "duration_metrics", "entries", "pipeline_description", "worker_label"]

#: Metric key of a node's duration: ``kedro.node_duration_s.<node name, sanitised>``.
DURATION_METRIC_PREFIX = "kedro.node_duration_s."

#: MLflow metric names: letters, digits, ``_ - . / space``; anything else becomes ``_``.
_INVALID_METRIC_CHARS = re.compile(r"[^\w\-. /]")

#: Node statuses in ``kedro/timeline.json``.
COMPLETED, FAILED, INTERRUPTED = "completed", "failed", "interrupted"


def entries(events: Iterable[Mapping[str, Any]], end_time: float) -> list[dict[str, Any]]:
    """One entry per node run, in start order, from ``start``/``end`` events.

    A node that started and never ended (the run failed elsewhere, or was killed) is
    ``interrupted`` and ends at ``end_time``, when the run was closed.
    """
    open_runs: dict[tuple[Any, Any, str], dict[str, Any]] = {}
    done: list[dict[str, Any]] = []
    for event in sorted(events, key=lambda e: (e["t"], 0 if e["e"] == "start" else 1)):
        key = (event["pid"], event["tid"], event["node"])
        if event["e"] == "start":
            open_runs[key] = {"node": event["node"], "start": event["t"], "end": None, "duration_s": None,
                              "worker": {"pid": event["pid"], "thread": event["thread"]}, "status": None}
        elif event["e"] == "end":
            entry = open_runs.pop(key, None)
            if entry is None:  # an end without its start (a worker's spool lost a line): start unknown
                entry = {"node": event["node"], "start": event["t"], "end": None, "duration_s": None,
                         "worker": {"pid": event["pid"], "thread": event["thread"]}, "status": None}
            entry["end"], entry["status"] = event["t"], event["status"]
            if event.get("error"):
                entry["error"] = event["error"]
            done.append(entry)
    for entry in open_runs.values():
        entry["end"], entry["status"] = max(end_time, entry["start"]), INTERRUPTED
        done.append(entry)
    for entry in done:
        entry["duration_s"] = round(entry["end"] - entry["start"], 6)
    done.sort(key=lambda e: (e["start"], e["node"]))
    return done


def metric_key(node_name: str) -> str:
    """``kedro.node_duration_s.<node>``, with characters MLflow refuses replaced by ``_``."""
    return (DURATION_METRIC_PREFIX + _INVALID_METRIC_CHARS.sub("_", node_name))[:MAX_KEY_LENGTH]


def duration_metrics(timeline: Iterable[Mapping[str, Any]]) -> list[tuple[str, float, int]]:
    """``(key, seconds, timestamp_ms)`` of each node run that did not get interrupted."""
    return [(metric_key(e["node"]), float(e["duration_s"]), int(e["end"] * 1000))
            for e in timeline if e["status"] != INTERRUPTED]


def worker_label(worker: Mapping[str, Any]) -> str:
    return f"pid {worker['pid']} / {worker['thread']}"


def pipeline_description(pipeline: Any) -> dict[str, Any]:
    """``kedro/pipeline.json``: the nodes (name, function, inputs, outputs, tags, namespace) in
    topological order, and the pipeline's free inputs and final outputs."""
    nodes = []
    for node in pipeline.nodes:
        func = getattr(node, "func", None)
        nodes.append({
            "name": node.name,
            "func": f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}",
            "inputs": list(node.inputs),
            "outputs": list(node.outputs),
            "tags": sorted(node.tags),
            "namespace": node.namespace,
        })
    return {"nodes": nodes, "inputs": sorted(pipeline.inputs()), "outputs": sorted(pipeline.outputs())}
