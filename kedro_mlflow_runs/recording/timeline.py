"""The node timeline: when each node ran, on which worker, how it ended; and the pipeline that ran.

Pure functions over the events the recorder collected (``_recorder.py``); no MLflow import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from ..params import MAX_KEY_LENGTH

__all__ = ["DURATION_METRIC_PREFIX", "duration_metrics", "entries", "pipeline_description", "worker_label"]

#: Metric key of a node's duration: ``kedro.node_duration_s.<node name, sanitised>``.
DURATION_METRIC_PREFIX = "kedro.node_duration_s."

#: MLflow metric names: letters, digits, ``_ - . / space``; anything else becomes ``_``.
_INVALID_METRIC_CHARS = re.compile(r"[^\w\-. /]")

#: Node statuses in ``kedro/timeline.json`` (``killed``: an attempt killed before it logged its part).
COMPLETED, FAILED, INTERRUPTED, KILLED = "completed", "failed", "interrupted", "killed"


#: The order of a node run's events at one instant: its inputs load, it runs, its outputs are saved.
_ORDER = MappingProxyType({"load": 0, "start": 1, "end": 2, "saved": 3})


def entries(events: Iterable[Mapping[str, Any]], end_time: float) -> list[dict[str, Any]]:
    """One entry per node run, in start order, from ``load``/``start``/``end``/``saved`` events.

    A node run spans from its first input starting to load to its last output saved: ``start``,
    ``end`` and ``duration_s`` cover all of it, split into ``load_s`` (reading the inputs),
    ``compute_s`` (the node's function) and ``save_s`` (writing the outputs). A node that started
    and never ended (the run failed elsewhere, or was killed) is ``interrupted`` and ends at
    ``end_time``, when the run was closed.
    """
    open_runs: dict[tuple[Any, ...], dict[str, Any]] = {}
    loading: dict[tuple[Any, ...], float] = {}  # first input load of the node run about to start
    last: dict[tuple[Any, ...], dict[str, Any]] = {}  # the latest ended run: its outputs are being saved
    done: list[dict[str, Any]] = []
    for event in sorted(events, key=lambda e: (e["t"], _ORDER.get(e["e"], 1))):
        key = (event.get("host"), event["pid"], event["tid"], event["node"])
        kind, t = event["e"], event["t"]
        if kind == "load":
            loading.setdefault(key, t)
        elif kind == "start":
            open_runs[key] = _entry(event, loading.pop(key, t))
        elif kind == "end":
            entry = open_runs.pop(key, None)
            if entry is None:  # an end without its start (a worker's spool lost a line): start unknown
                entry = _entry(event, loading.pop(key, t))
            entry["end"] = entry["compute_end"] = t
            entry["status"] = event["status"]
            if event.get("error"):
                entry["error"] = event["error"]
            done.append(entry)
            last[key] = entry
        elif kind == "saved" and key in last:
            last[key]["end"] = max(last[key]["end"], t)
    for entry in open_runs.values():
        entry["end"] = entry["compute_end"] = max(end_time, entry["compute_start"])
        entry["status"] = INTERRUPTED
        done.append(entry)
    for entry in done:
        compute_start, compute_end = entry.pop("compute_start"), entry.pop("compute_end")
        entry["duration_s"] = round(entry["end"] - entry["start"], 6)
        entry["load_s"] = round(compute_start - entry["start"], 6)
        entry["compute_s"] = round(compute_end - compute_start, 6)
        entry["save_s"] = round(entry["end"] - compute_end, 6)
    done.sort(key=lambda e: (e["start"], e["node"]))
    return done


def _entry(event: Mapping[str, Any], first_load: float) -> dict[str, Any]:
    return {"node": event["node"], "start": min(first_load, event["t"]), "end": None, "duration_s": None,
            "worker": _worker(event), "status": None,
            "compute_start": event["t"], "compute_end": None}


def _worker(event: Mapping[str, Any]) -> dict[str, Any]:
    """Where a node ran: host, process and thread, and the attempt of an attached run."""
    worker = {"host": event.get("host"), "pid": event["pid"], "thread": event["thread"]}
    if event.get("dask_worker") is not None:
        worker["dask_worker"] = event["dask_worker"]
    if event.get("attempt"):
        worker["attempt"] = event["attempt"]
    return worker


def metric_key(node_name: str) -> str:
    """``kedro.node_duration_s.<node>``, with characters MLflow refuses replaced by ``_``."""
    return (DURATION_METRIC_PREFIX + _INVALID_METRIC_CHARS.sub("_", node_name))[:MAX_KEY_LENGTH]


def duration_metrics(timeline: Iterable[Mapping[str, Any]]) -> list[tuple[str, float, int]]:
    """``(key, seconds, timestamp_ms)`` of each node run that did not get interrupted."""
    return [(metric_key(e["node"]), float(e["duration_s"]), int(e["end"] * 1000))
            for e in timeline if e["status"] not in (INTERRUPTED, KILLED)]


def worker_label(worker: Mapping[str, Any]) -> str:
    """A worker's lane: its host (when known), process and thread; a Dask worker's lane is the worker
    (its threads share it)."""
    where = f"{worker['host']} / " if worker.get("host") else ""
    if worker.get("dask_worker") is not None:
        return f"{where}dask worker {worker['dask_worker']} / pid {worker['pid']}"
    return f"{where}pid {worker['pid']} / {worker['thread']}"


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
