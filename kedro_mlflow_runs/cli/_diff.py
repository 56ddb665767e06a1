"""What changed between two runs of a project (``kedro mlflow diff``): computed from what MLflow holds
(``RunSide``), rendered as text or JSON. No MLflow import: the command hands the runs in."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["RunSide", "compare", "render"]

#: Metrics of the plugin itself, compared in their own sections (node durations) or not at all.
_NODE_DURATION: Final = "kedro.node_duration_s."
_NOT_USER_METRICS: Final = ("kedro.", "system/")
#: How many node duration changes the text shows (``--json`` has them all).
DURATIONS_SHOWN: Final = 5


@dataclass
class RunSide:
    """One run as the diff sees it."""

    run_id: str
    name: str
    status: str
    start_time: int | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    inputs: dict[str, str] = field(default_factory=dict)  # dataset name -> digest
    nodes: list[str] | None = None  # None: the run recorded no pipeline


def _dict_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {"changed": {k: [a[k], b[k]] for k in sorted(a.keys() & b.keys()) if a[k] != b[k]},
            "added": {k: b[k] for k in sorted(b.keys() - a.keys())},
            "removed": {k: a[k] for k in sorted(a.keys() - b.keys())}}


def _user_metrics(side: RunSide) -> dict[str, float]:
    return {k: v for k, v in side.metrics.items() if not k.startswith(_NOT_USER_METRICS)}


def compare(a: RunSide, b: RunSide) -> dict[str, Any]:
    """The differences between run ``a`` and run ``b`` (JSON-ready)."""
    metrics = _dict_diff(_user_metrics(a), _user_metrics(b))
    metrics["changed"] = {k: {"a": va, "b": vb, "delta": vb - va if math.isfinite(vb - va) else None}
                          for k, (va, vb) in metrics["changed"].items()}
    inputs = {name: {"a": a.inputs.get(name), "b": b.inputs.get(name),
                     "changed": a.inputs.get(name) != b.inputs.get(name)}
              for name in sorted(a.inputs.keys() | b.inputs.keys())}
    commit_a, commit_b = a.tags.get("mlflow.source.git.commit"), b.tags.get("mlflow.source.git.commit")
    durations_a = {k[len(_NODE_DURATION):]: v for k, v in a.metrics.items() if k.startswith(_NODE_DURATION)}
    durations_b = {k[len(_NODE_DURATION):]: v for k, v in b.metrics.items() if k.startswith(_NODE_DURATION)}
    common = sorted(durations_a.keys() & durations_b.keys(), key=lambda n: (-abs(durations_b[n] - durations_a[n]), n))
    durations = [{"node": n, "a": durations_a[n], "b": durations_b[n], "delta": durations_b[n] - durations_a[n]}
                 for n in common]
    nodes = None
    if a.nodes is not None and b.nodes is not None:
        nodes = {"added": sorted(set(b.nodes) - set(a.nodes)), "removed": sorted(set(a.nodes) - set(b.nodes))}
    return {
        "runs": {"a": _header(a), "b": _header(b)},
        "status": {"a": a.status, "b": b.status, "changed": a.status != b.status},
        "code": {"a": commit_a, "b": commit_b, "changed": commit_a != commit_b,
                 "command": {"a": a.tags.get("kedro.command"), "b": b.tags.get("kedro.command")}},
        "params": _dict_diff(a.params, b.params),
        "metrics": metrics,
        "inputs": inputs,
        "nodes": nodes,
        "durations": durations,
    }


def _header(side: RunSide) -> dict[str, Any]:
    return {"run_id": side.run_id, "name": side.name, "status": side.status, "start_time": side.start_time}


def _clip(value: Any, width: int = 60) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def render(diff: dict[str, Any]) -> str:
    """The diff as text, one section per kind of change."""
    a, b = diff["runs"]["a"], diff["runs"]["b"]
    lines = [f"A: {a['run_id']} ({a['name']}, {a['status']})", f"B: {b['run_id']} ({b['name']}, {b['status']})"]
    status = diff["status"]
    lines.append(f"Status: {status['a']} -> {status['b']}" if status["changed"] else f"Status: {status['a']} (same)")
    code = diff["code"]
    if code["a"] is None and code["b"] is None:
        lines.append("Code: no git commit recorded")
    elif code["changed"]:
        lines.append(f"Code: git {(code['a'] or 'none')[:12]} -> {(code['b'] or 'none')[:12]}")
    else:
        lines.append(f"Code: git {code['a'][:12]} (same)")
    if code["command"]["a"] != code["command"]["b"]:
        lines.append(f"  command  {code['command']['a']} -> {code['command']['b']}")
    params = diff["params"]
    lines.append(_count_line("Parameters", params))
    lines += _aligned([(k, f"{_clip(va, 40)} -> {_clip(vb, 40)}") for k, (va, vb) in params["changed"].items()]
                      + [(f"+ {k}", _clip(v)) for k, v in params["added"].items()]
                      + [(f"- {k}", _clip(v)) for k, v in params["removed"].items()])
    metrics = diff["metrics"]
    lines.append(_count_line("Metrics", metrics))
    rows = []
    for k, change in metrics["changed"].items():
        delta = change["delta"]
        rows.append((k, f"{_number(change['a'])} -> {_number(change['b'])}"
                     + (f" ({'+' if delta >= 0 else ''}{_number(delta)})" if delta is not None else "")))
    lines += _aligned(rows + [(f"+ {k}", _number(v)) for k, v in metrics["added"].items()]
                      + [(f"- {k}", _number(v)) for k, v in metrics["removed"].items()])
    inputs = diff["inputs"]
    changed = [n for n, i in inputs.items() if i["changed"]]
    lines.append(f"Input data: {len(changed)} of {len(inputs)} dataset(s) changed" if inputs
                 else "Input data: none recorded")
    lines += _aligned([(name, f"digest {inputs[name]['a'] or 'absent'} -> {inputs[name]['b'] or 'absent'}")
                       for name in changed])
    nodes = diff["nodes"]
    if nodes is None:
        lines.append("Pipeline: not recorded by one of the runs")
    else:
        lines.append(f"Pipeline: {len(nodes['added'])} node(s) added, {len(nodes['removed'])} removed")
        lines += [f"  + {n}" for n in nodes["added"]] + [f"  - {n}" for n in nodes["removed"]]
    durations = diff["durations"]
    if durations:
        lines.append("Node durations (largest changes):")
        lines += _aligned([(d["node"], f"{d['a']:.3g} s -> {d['b']:.3g} s ({'+' if d['delta'] >= 0 else ''}"
                                       f"{d['delta']:.3g} s)") for d in durations[:DURATIONS_SHOWN]])
    return "\n".join(lines)


def _aligned(rows: list[tuple[str, str]]) -> list[str]:
    """``  name  rest`` lines, the rests in one column."""
    width = max((len(name) for name, _ in rows), default=0)
    return [f"  {name.ljust(width)}  {rest}" for name, rest in rows]


def _count_line(title: str, diff: dict[str, Any]) -> str:
    counts = (len(diff["changed"]), len(diff["added"]), len(diff["removed"]))
    if not any(counts):
        return f"{title}: same"
    return f"{title}: {counts[0]} changed, {counts[1]} added, {counts[2]} removed"
