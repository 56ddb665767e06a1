"""What ``kedro mlflow runs`` and ``kedro mlflow show`` print: runs of the project's store, as text or JSON.

Pure formatting over MLflow entities (``Run``, ``FileInfo``, ``LoggedModel``), which are only read by
attribute: nothing here imports MLflow.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .._redact import redact_uri
from ..core.tags import TAG_ERROR_DATASET, TAG_ERROR_MESSAGE, TAG_ERROR_NODE, TAG_ERROR_TYPE, TAG_KEDRO_RUN_ID

__all__ = ["RunDetails", "RunSummary", "format_duration", "render_details", "render_table", "ui_address"]

TAG_PIPELINES = "kedro.pipeline_names"
TAG_RUNNER = "kedro.runner"
#: Tags shown on their own line by ``show`` (label, tag), in this order.
KEDRO_TAGS = (
    ("kedro run", TAG_KEDRO_RUN_ID),
    ("pipeline", TAG_PIPELINES),
    ("runner", TAG_RUNNER),
    ("env", "kedro.env"),
    ("command", "kedro.command"),
    ("git commit", "mlflow.source.git.commit"),
    ("user", "mlflow.user"),
    ("parent run", "mlflow.parentRunId"),
)
ERROR_TAGS = (("type", TAG_ERROR_TYPE), ("node", TAG_ERROR_NODE), ("dataset", TAG_ERROR_DATASET),
              ("message", TAG_ERROR_MESSAGE))
#: Metrics the table leaves out: the node timeline's and MLflow's system metrics (``--json`` has them).
_PLUGIN_METRICS = ("kedro.", "system/")
#: The artifact folder of the node timeline, pipeline and outputs the plugin records.
_RECORDED = "kedro"
#: How many metrics the table shows per run (alphabetically; ``--json`` has them all).
TABLE_METRICS = 3
_SHORT_ID = 8
_MAX_CELL = 40


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


def _local(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float | None) -> str:
    """``0.4s``, ``12.0s``, ``3m05s``, ``2h03m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _number(value: float) -> str:
    return f"{value:.6g}"


def _clip(text: str, width: int = _MAX_CELL) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass(frozen=True)
class RunSummary:
    """One row of ``kedro mlflow runs``."""

    run_id: str
    name: str
    status: str
    start_ms: int | None
    end_ms: int | None
    pipeline: str
    runner: str
    kedro_run_id: str
    metrics: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, run: Any) -> RunSummary:
        tags = run.data.tags
        return cls(
            run_id=run.info.run_id,
            name=run.info.run_name or tags.get("mlflow.runName") or "",
            status=run.info.status,
            start_ms=run.info.start_time,
            end_ms=run.info.end_time,
            pipeline=tags.get(TAG_PIPELINES, ""),
            runner=tags.get(TAG_RUNNER, ""),
            kedro_run_id=tags.get(TAG_KEDRO_RUN_ID, ""),
            metrics=dict(sorted(run.data.metrics.items())),
        )

    def duration(self, now_ms: int | None = None) -> float | None:
        """Seconds from start to end; for a run still RUNNING, until ``now_ms``."""
        if self.start_ms is None:
            return None
        end = self.end_ms if self.end_ms is not None else (now_ms if self.status == "RUNNING" else None)
        return None if end is None else max(0, end - self.start_ms) / 1000

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "name": self.name,
            "status": self.status,
            "start_time": _iso(self.start_ms),
            "end_time": _iso(self.end_ms),
            "duration_s": self.duration(),
            "pipeline": self.pipeline,
            "runner": self.runner,
            "kedro_run_id": self.kedro_run_id,
            "metrics": dict(self.metrics),
        }

    def row(self, now_ms: int) -> list[str]:
        own = {k: v for k, v in self.metrics.items() if not k.startswith(_PLUGIN_METRICS)}
        shown = [f"{k}={_number(v)}" for k, v in list(own.items())[:TABLE_METRICS]]
        if len(own) > TABLE_METRICS:
            shown.append(f"+{len(own) - TABLE_METRICS} more")
        duration = format_duration(self.duration(now_ms))
        if self.status == "RUNNING" and duration != "-":
            duration += " so far"
        return [self.run_id[:_SHORT_ID], _clip(self.name, 24), self.status, _local(self.start_ms), duration,
                _clip(self.pipeline or "-", 24), self.runner or "-", " ".join(shown) or "-"]


_HEADERS = ("RUN", "NAME", "STATUS", "STARTED", "DURATION", "PIPELINE", "RUNNER", "METRICS")


def render_table(summaries: Sequence[RunSummary], now_ms: int | None = None) -> str:
    """The runs as an aligned text table, one line per run, in the order given."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    rows = [list(_HEADERS)] + [s.row(now_ms) for s in summaries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADERS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def ui_address(tracking_uri: str, experiment_id: str, run_id: str, ui_host: str, ui_port: int) -> str:
    """Where to open the run: its page on the tracking server, or on ``kedro mlflow ui`` for a local store."""
    uri = redact_uri(tracking_uri)
    page = f"#/experiments/{experiment_id}/runs/{run_id}"
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/{page}"
    return f"http://{ui_host}:{ui_port}/{page} (start the UI with: kedro mlflow ui)"


@dataclass(frozen=True)
class RunDetails:
    """Everything ``kedro mlflow show`` says about one run."""

    summary: RunSummary
    experiment_id: str
    experiment_name: str
    tags: Mapping[str, str]
    params: Mapping[str, str]
    models: Sequence[Mapping[str, Any]]
    artifacts: Sequence[Mapping[str, Any]]
    artifacts_truncated: bool
    ui: str

    @classmethod
    def of(cls, run: Any, *, experiment_name: str, models: Sequence[Any], artifacts: Sequence[Any],
           artifact_limit: int, ui: str) -> RunDetails:
        return cls(
            summary=RunSummary.of(run),
            experiment_id=str(run.info.experiment_id),
            experiment_name=experiment_name,
            tags=dict(sorted(run.data.tags.items())),
            params=dict(sorted(run.data.params.items())),
            models=[{"name": m.name, "model_id": m.model_id, "uri": f"models:/{m.model_id}",
                     "status": str(m.status).rpartition(".")[2]} for m in models],
            artifacts=[{"path": a.path, "size": a.file_size} for a in artifacts],
            artifacts_truncated=len(artifacts) >= artifact_limit,
            ui=ui,
        )

    @property
    def error(self) -> dict[str, str]:
        return {label: self.tags[tag] for label, tag in ERROR_TAGS if tag in self.tags}

    @property
    def user_tags(self) -> dict[str, str]:
        """The tags the user set: not MLflow's own (``mlflow.*``) nor the plugin's (``kedro.*``,
        ``kedro_mlflow_runs.*``: the Kedro tags, error, heartbeat, host, process; ``--json`` has them all)."""
        return {k: v for k, v in self.tags.items() if not k.startswith(("mlflow.", "kedro.", "kedro_mlflow_runs."))}

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary.to_json(),
            "experiment_id": self.experiment_id,
            "experiment": self.experiment_name,
            "tags": dict(self.tags),
            "params": dict(self.params),
            "error": self.error or None,
            "models": list(self.models),
            "artifacts": list(self.artifacts),
            "ui": self.ui,
        }


def _section(title: str, items: Mapping[str, str], empty: str = "none") -> list[str]:
    if not items:
        return [f"{title}: {empty}"]
    width = max(len(k) for k in items)
    return [f"{title}:"] + [f"  {k.ljust(width)}  {v}" for k, v in items.items()]


def render_details(details: RunDetails) -> str:
    """``kedro mlflow show``'s text: status, Kedro tags, error, params, metrics, models, artifacts, UI."""
    s = details.summary
    lines = [
        f"MLflow run {s.run_id}" + (f" ({s.name})" if s.name else "") + f": {s.status}",
        f"  experiment  {details.experiment_name} ({details.experiment_id})",
        f"  started     {_local(s.start_ms)}, duration {format_duration(s.duration())}",
    ]
    for label, tag in KEDRO_TAGS:
        if tag in details.tags:
            lines.append(f"  {label.ljust(10)}  {_clip(details.tags[tag], 120)}")
    if details.error:
        lines += _section("Error", details.error)
    if details.user_tags:
        lines += _section("Tags", {k: _clip(v, 120) for k, v in details.user_tags.items()})
    lines += _section(f"Params ({len(details.params)})", {k: _clip(v, 120) for k, v in details.params.items()})
    metrics = {k: v for k, v in s.metrics.items() if not k.startswith(_PLUGIN_METRICS)}
    lines += _section("Metrics (last values)", {k: _number(v) for k, v in metrics.items()})
    lines += _section("Models", {m["name"]: f"{m['uri']}  {m['status']}" for m in details.models})
    recorded = [a["path"] for a in details.artifacts if a["path"].startswith(f"{_RECORDED}/")]
    artifacts = {a["path"]: f"{a['size']} bytes" if a["size"] is not None else "" for a in details.artifacts}
    lines += _section("Artifacts", artifacts)  # every file, the plugin's own records (kedro/) included
    timing = "kedro.node_duration_s."
    timings = {k[len(timing):]: v for k, v in s.metrics.items() if k.startswith(timing)}
    if recorded or timings:
        slowest = max(timings.items(), key=lambda kv: kv[1]) if timings else None
        lines.append(f"Node timeline: {_RECORDED}/timeline.html ({len(timings)} node(s)"
                     + (f", slowest {slowest[0]} {_number(slowest[1])} s)" if slowest else ")"))
    if details.artifacts_truncated:
        lines.append(f"  (only the first {len(details.artifacts)} files are listed)")
    lines.append(f"Open it in the MLflow UI: {details.ui}")
    return "\n".join(lines)
