"""Child runs per pipeline or namespace (``tracking.child_runs.by``).

Each group of nodes (the smallest registered pipeline holding a node, or a node's top-level
namespace) gets one child run of the run: ``mlflow.parentRunId`` is the run, tag ``kedro.child_group``
names the group, and the run name is the group's. The process that opens the run creates every
child its pipeline needs at the start (:func:`ensure_children`), before any worker exists, and
publishes ``{node: group}`` and ``{group: child run}`` to its workers (``KEDRO_MLFLOW_RUNS_CHILDREN``).
A step attached to a run others share creates only the children still missing: it searches, creates,
and searches again, and when two steps created the same group at the same moment the oldest child is
kept and the others are deleted, so a group never has two children.

Which run a dataset uses (:func:`child_for`): a dataset a node of this run produces lives in its
producer's child run, for its save and for every load of it, whichever group the loading node is in;
a save of any other dataset goes to the saving node's child; anything else to the parent. While a
node runs, its child run is also MLflow's active run in its thread, so ``mlflow.log_metric`` in node
code logs there.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # pragma: no cover
    from ..handle import RunHandle
    from ..tracking import Tracker

__all__ = ["CHILDREN_ENV", "GROUP_TAG", "child_for", "end_children", "ensure_children", "node_child", "node_groups",
           "one_group", "publish_routing", "routing", "routing_of", "set_current", "set_dataset", "set_group",
           "withdraw_routing"]

GROUP_TAG: Final = "kedro.child_group"
CHILDREN_ENV: Final = "KEDRO_MLFLOW_RUNS_CHILDREN"
_THREAD = threading.local()
#: ``{kedro run id: routing}`` handed to this process by a cluster (a Dask worker runs nodes of runs it
#: did not start, maybe several at once): see :func:`publish_routing`.
_handed: dict[str, dict[str, Any]] = {}


def node_groups(nodes: Iterable[Any], by: str, registered: Mapping[str, Any]) -> dict[str, str]:
    """``{node name: group}`` of the nodes that belong to a group (the others stay in the parent)."""
    groups: dict[str, str] = {}
    if by == "namespace":
        for node in nodes:
            namespace = getattr(node, "namespace", None)
            if namespace:
                groups[node.name] = str(namespace).split(".")[0]
        return groups
    sizes = {name: (len(pipe.nodes), name, {n.name for n in pipe.nodes}) for name, pipe in registered.items()
             if name != "__default__"}
    for node in nodes:
        holding = [(size, name) for size, name, names in sizes.values() if node.name in names]
        if holding:
            groups[node.name] = min(holding)[1]
    return groups


def ensure_children(tracker: Tracker, handle: RunHandle, groups: Iterable[str]) -> dict[str, str]:
    """``{group: child run id}``: the run's existing children, and one created for each missing group
    (one per group, even when two processes create the same group at the same moment)."""
    wanted = sorted(set(groups))
    if not wanted:
        return {}
    found = _by_group(tracker.child_runs(handle.experiment_id, handle.run_id))
    missing = [g for g in wanted if g not in found]
    if not missing:
        return {g: found[g][0] for g in wanted}
    created = set()
    for group in missing:
        run = tracker.create_run(handle.experiment_id, run_name=group,
                                 tags={"mlflow.parentRunId": handle.run_id, GROUP_TAG: group,
                                       "kedro.run_id": str(handle.kedro_run_id or "")})
        created.add(run.info.run_id)
    found = _by_group(tracker.child_runs(handle.experiment_id, handle.run_id))
    for group in missing:  # the oldest wins; a duplicate this process created goes
        for extra in found[group][1:]:
            if extra in created:
                tracker.delete_run(extra)
    return {g: found[g][0] for g in wanted}


def _by_group(runs: Iterable[Any]) -> dict[str, list[str]]:
    """``{group: [child run ids, oldest first]}`` (runs as MLflow returns them, oldest first)."""
    ordered = sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id))
    found: dict[str, list[str]] = {}
    for run in ordered:
        group = run.data.tags.get(GROUP_TAG)
        if group:
            found.setdefault(group, []).append(run.info.run_id)
    return found


def end_children(tracker: Tracker, experiment_id: str, run_id: str, status: str) -> int:
    """End every child of run ``run_id`` still RUNNING with ``status`` (the parent's); how many."""
    ended = 0
    for run in tracker.child_runs(experiment_id, run_id):
        if run.info.status == "RUNNING":
            tracker.set_terminated(run.info.run_id, status)
            ended += 1
    return ended


def routing_of(kedro_run_id: str, groups: Mapping[str, str], runs: Mapping[str, str], pipeline: Any) -> dict[str, Any]:
    """What workers need to route a Kedro run's nodes and datasets to its child runs (JSON-ready)."""
    datasets = {out: groups[node.name] for node in pipeline.nodes if node.name in groups for out in node.outputs}
    return {"kedro_run_id": kedro_run_id, "nodes": dict(groups), "runs": dict(runs), "datasets": datasets}


def routing(kedro_run_id: str | None) -> dict[str, Any] | None:
    """The routing of the child runs of Kedro run ``kedro_run_id``: the tracked run's in the process that
    runs it, else what it published to its workers (None: no child runs)."""
    from .registry import REGISTRY

    tracked = REGISTRY.tracked(kedro_run_id) if kedro_run_id is not None else None
    if tracked is not None:
        found: dict[str, Any] | None = tracked.children
        return found
    if kedro_run_id is not None and kedro_run_id in _handed:
        return _handed[kedro_run_id]
    text = os.environ.get(CHILDREN_ENV)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or (kedro_run_id is not None and value.get("kedro_run_id") != kedro_run_id):
        return None
    return value


def publish_routing(route: Mapping[str, Any]) -> None:
    """In a worker of a cluster (Dask): route the nodes of the Kedro run ``route`` names to its children."""
    _handed[str(route["kedro_run_id"])] = dict(route)


def withdraw_routing(kedro_run_id: str) -> None:
    """Undo :func:`publish_routing` (the run was taken back from the worker)."""
    _handed.pop(kedro_run_id, None)


def one_group(kedro_run_id: str | None, node_names: Iterable[str]) -> tuple[str, str] | None:
    """``(group, child run id)`` when every one of ``node_names`` is in that one group (None when they are
    spread over several groups or the parent, or the run has no child runs)."""
    route = routing(kedro_run_id)
    if not route:
        return None
    groups = {(route.get("nodes") or {}).get(name) for name in node_names}
    if len(groups) != 1 or None in groups:
        return None
    (group,) = groups
    child = (route.get("runs") or {}).get(group)
    return (str(group), str(child)) if child else None


def set_group(group: str | None) -> None:
    """Make the calling thread's saves go to ``group``'s child (what a whole group made, not a node of it:
    a pipeline model); None undoes it."""
    _THREAD.group = group


def set_current(node_name: str | None) -> None:
    """The node the calling thread runs (None: none)."""
    _THREAD.node = node_name


def set_dataset(name: str | None) -> None:
    """The dataset the calling thread loads or saves (None: none)."""
    _THREAD.dataset = name


def child_for(kedro_run_id: str | None, operation: str) -> str | None:
    """The child run the calling thread's dataset ``operation`` uses (None: the parent)."""
    route = routing(kedro_run_id)
    if not route:
        return None
    runs = route.get("runs") or {}
    dataset = getattr(_THREAD, "dataset", None)
    group = (route.get("datasets") or {}).get(dataset) if dataset else None
    if group is None and operation == "save":
        group = getattr(_THREAD, "group", None)
    if group is None and operation == "save":
        node = getattr(_THREAD, "node", None)
        group = (route.get("nodes") or {}).get(node) if node else None
    return runs.get(group) if group else None


def node_child(kedro_run_id: str | None, node_name: str) -> str | None:
    """The child run of a node (None: it stays in the parent)."""
    route = routing(kedro_run_id)
    if not route:
        return None
    group = (route.get("nodes") or {}).get(node_name)
    return (route.get("runs") or {}).get(group) if group else None
