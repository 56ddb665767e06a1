"""``kedro/timeline.html``: a self-contained Gantt chart of the node timeline (no script, no network).

One lane per worker (process and thread), one bar per node run coloured by its outcome, a hover
title on each bar, then a table of every node run and each worker's busy share of the run. Inline
SVG and CSS only, so the MLflow UI's artifact viewer shows it as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from types import MappingProxyType
from typing import Any

from .timeline import worker_label

__all__ = ["render"]

_COLOURS = MappingProxyType({"completed": "#4c78a8", "failed": "#e45756", "interrupted": "#f58518",
                             "killed": "#72393f"})
_WIDTH, _LANE, _LABEL, _AXIS = 960, 26, 190, 24


def render(timeline: Sequence[Mapping[str, Any]], *, title: str, status: str) -> str:
    """The HTML page of ``timeline`` (``kedro/timeline.json``'s entries) of a run that ended ``status``."""
    lanes: dict[str, list[Mapping[str, Any]]] = {}
    for entry in timeline:
        lanes.setdefault(worker_label(entry["worker"]), []).append(entry)
    start = min((e["start"] for e in timeline), default=0.0)
    end = max((e["end"] for e in timeline), default=start)
    span = max(end - start, 1e-6)
    plot = _WIDTH - _LABEL - 10
    height = _AXIS + _LANE * max(len(lanes), 1) + 6

    def x(t: float) -> float:
        return _LABEL + (t - start) / span * plot

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
           f'viewBox="0 0 {_WIDTH} {height}" role="img" aria-label="node timeline">']
    for i in range(6):  # time axis
        tx = _LABEL + plot * i / 5
        svg.append(f'<line x1="{tx:.1f}" y1="{_AXIS - 4}" x2="{tx:.1f}" y2="{height}" class="grid"/>')
        svg.append(f'<text x="{tx:.1f}" y="{_AXIS - 8}" class="tick">{span * i / 5:.2f} s</text>')
    for row, (label, items) in enumerate(lanes.items()):
        y = _AXIS + row * _LANE
        svg.append(f'<text x="4" y="{y + _LANE * 0.65:.1f}" class="lane">{escape(label)}</text>')
        for entry in items:
            x0, x1 = x(entry["start"]), x(entry["end"])
            colour = _COLOURS.get(str(entry["status"]), "#999999")
            tip = (f"{entry['node']}: {entry['duration_s']:.3f} s (load {entry.get('load_s', 0):.3f}, run "
                   f"{entry.get('compute_s', entry['duration_s']):.3f}, save {entry.get('save_s', 0):.3f}), "
                   f"{entry['status']}")
            svg.append(f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1.5):.1f}" height="{_LANE - 6}" '
                       f'fill="{colour}" rx="2"><title>{escape(tip)}</title></rect>')
            if x1 - x0 > 40:  # room for a label
                svg.append(f'<text x="{x0 + 3:.1f}" y="{y + _LANE * 0.65:.1f}" class="bar">'
                           f'{escape(_clip(entry["node"], int((x1 - x0) / 7)))}</text>')
    svg.append("</svg>")

    rows = "".join(
        f"<tr><td>{escape(e['node'])}</td><td>{escape(worker_label(e['worker']))}</td>"
        f"<td class=num>{e['start'] - start:.3f}</td><td class=num>{e['duration_s']:.3f}</td>"
        f"<td class=num>{e.get('load_s', 0):.3f}</td><td class=num>{e.get('compute_s', e['duration_s']):.3f}</td>"
        f"<td class=num>{e.get('save_s', 0):.3f}</td>"
        f"<td><span class=dot style=\"background:{_COLOURS.get(str(e['status']), '#999999')}\"></span>"
        f"{escape(str(e['status']))}</td></tr>"
        for e in timeline
    )
    busy = "".join(
        f"<tr><td>{escape(label)}</td><td class=num>{len(items)}</td>"
        f"<td class=num>{sum(e['duration_s'] for e in items):.3f}</td>"
        f"<td class=num>{100 * sum(e['duration_s'] for e in items) / span:.0f}%</td></tr>"
        for label, items in lanes.items()
    )
    legend = " ".join(f'<span class=dot style="background:{c}"></span>{s}' for s, c in _COLOURS.items())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; font-size: 13px; margin: 16px; color: #222; }}
h1 {{ font-size: 17px; margin: 0 0 4px; }}
p.meta {{ color: #555; margin: 0 0 12px; }}
table {{ border-collapse: collapse; margin: 12px 0; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.dot {{ display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 8px; }}
svg text {{ font-size: 11px; fill: #333; }}
svg text.bar {{ fill: #fff; }}
svg text.tick {{ fill: #777; text-anchor: middle; }}
svg line.grid {{ stroke: #eee; }}
</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="meta">{len(timeline)} node runs on {len(lanes)} worker(s), {span:.3f} s from the first start to the last end; run {escape(status)}. {legend}</p>
{''.join(svg)}
<h2 style="font-size:15px">Workers</h2>
<table><thead><tr><th>worker</th><th>nodes</th><th>busy (s)</th><th>busy share</th></tr></thead><tbody>{busy}</tbody></table>
<h2 style="font-size:15px">Node runs</h2>
<table><thead><tr><th>node</th><th>worker</th><th>start (s)</th><th>duration (s)</th><th>load (s)</th><th>run (s)</th><th>save (s)</th><th>status</th></tr></thead><tbody>{rows}</tbody></table>
</body>
</html>
"""


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: max(length - 1, 0)] + "…"
