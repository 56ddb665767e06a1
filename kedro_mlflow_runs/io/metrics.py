"""Metric datasets: one value, one metric's history, or a dict of metrics.

```yaml
accuracy:                      # key defaults to the catalog entry: "accuracy"
  type: kedro_mlflow_runs.io.metrics.MlflowMetricDataset
loss_curve:
  type: kedro_mlflow_runs.io.metrics.MlflowMetricHistoryDataset
  key: loss
scores:
  type: kedro_mlflow_runs.io.metrics.MlflowMetricsDataset
  prefix: eval
```

Every save is sent with ``Tracker.log_batch`` (at most 1000 metrics a request), never one
request per point. The run follows the run-selection table (``docs/datasets.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from kedro.io.core import AbstractDataset

from .._redact import safe_cause
from ..errors import KedroMlflowRunsError, MlflowDatasetError
from ._metric_values import MetricPoint, as_history, as_sequence, checked_args, history_points, now_ms, whole_step
from ._run import RunTarget, select_run, tracker, wrapped_errors
from .naming import NamedDataset

__all__ = ["MlflowMetricDataset", "MlflowMetricHistoryDataset", "MlflowMetricsDataset", "MlflowMetricsHistoryDataset"]


class _MetricBase(NamedDataset, AbstractDataset[Any, Any]):
    """Run selection, batching and reading shared by the metric datasets."""

    def __init__(self, run_id: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        self._run_id = str(run_id) if run_id else None
        self.metadata = metadata

    def _label(self) -> str:
        entry = f"catalog entry '{self._catalog_name}'" if self._catalog_name else "no catalog entry"
        return f"{type(self).__name__}({entry})"

    def _send(self, points: list[MetricPoint], target: RunTarget | None = None) -> None:
        target = target or select_run(self._label(), self._run_id, "save", self._kedro_run_id)
        with wrapped_errors(self._label(), "log metrics to", target):
            if target.attempt_id:  # an attached run: a retried step must not double what it logged before
                points = self._not_logged_yet(target, points)
            if points:
                tracker(target).log_batch(target.run_id, metrics=points, what="log metrics to")

    def _not_logged_yet(self, target: RunTarget, points: list[MetricPoint]) -> list[MetricPoint]:
        """``points`` without those the run has already (same key, step and value): what an earlier
        attempt of the same step logged is not logged twice. One request per metric key."""
        logged: set[tuple[str, int, float]] = set()
        for key in {point[0] for point in points}:
            logged |= {(key, int(m.step), float(m.value)) for m in tracker(target).metric_history(target.run_id, key)}
        return [point for point in points if (point[0], int(point[3]), float(point[1])) not in logged]

    def _history(self, target: RunTarget, key: str) -> list[Any]:
        with wrapped_errors(self._label(), f"read metric '{key}' from", target):
            history = tracker(target).metric_history(target.run_id, key)
        if not history:
            raise MlflowDatasetError(
                f"{self._label()}: MLflow run '{target.run_id}' has no metric '{key}'. Save it first, "
                f"or check the key and run_id.",
                run_id=target.run_id,
                dataset=self._label(),
            )
        return history

    def _value(self, value: Any, key: str) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise MlflowDatasetError(
                f"{self._label()}: metric '{key}' must be a number, got {type(value).__name__} {value!r}.",
                dataset=self._label()) from safe_cause(exc)
        return number

    def _exists(self) -> bool:
        try:
            self.load()
        except (KedroMlflowRunsError, Exception):
            return False
        return True


class _KeyedMetric(_MetricBase):
    """A metric dataset of one metric, named by ``key`` or its catalog entry."""

    _key: str | None = None

    @property
    def key(self) -> str:
        """The metric name: ``key``, else the catalog entry."""
        key = self._key or self._catalog_name
        if not key:
            raise MlflowDatasetError(
                f"{self._label()}: no metric key. Set `key:` in the catalog entry, or use the "
                f"dataset through a Kedro catalog in `kedro run` so that it defaults to the entry name.",
                dataset=self._label())
        return key


class MlflowMetricDataset(_KeyedMetric):
    """One metric value per save; load returns the value at the latest step.

    Args:
        key: the metric name; defaults to the catalog entry name.
        run_id: the run to log into / read from; None: the active run.
        step: the step of saved values (default 0). A saved dict ``{"value": v, "step": s}``
            sets both.
        metadata: free-form metadata, ignored by the dataset.
        load_args: kedro-mlflow's ``{step: s}``: load the value at step ``s`` instead of the latest.
        save_args: kedro-mlflow's ``{mode: overwrite | append, step: s}``: ``overwrite`` saves at the
            run's latest step of this metric (0 when none), ``append`` one step after it; ``step``
            fixes the step. Both modes read the metric's history first (one request).
    """

    def __init__(
        self,
        key: str | None = None,
        run_id: str | None = None,
        step: int = 0,
        metadata: dict[str, Any] | None = None,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(run_id, metadata)
        self._key = key
        self._step = whole_step(self, step, key or "(catalog entry)")
        self._load_args = checked_args(self, "load_args", load_args, {"step": ()})
        self._save_args = checked_args(self, "save_args", save_args, {"mode": ("overwrite", "append"), "step": ()})

    def _describe(self) -> dict[str, Any]:
        return {"key": self._key or self._catalog_name, "run_id": self._run_id, "step": self._step}

    def save(self, data: Any) -> None:
        key = self.key
        step = self._step
        target = select_run(self._label(), self._run_id, "save", self._kedro_run_id)
        if "step" in self._save_args:
            step = whole_step(self, self._save_args["step"], key)
        elif "mode" in self._save_args:
            step = self._next_step(target, key, append=self._save_args["mode"] == "append")
        if isinstance(data, Mapping) and "value" in data:
            step = whole_step(self, data.get("step", step), key)
            data = data["value"]
        self._send([(key, self._value(data, key), now_ms(), step)], target)

    def _next_step(self, target: RunTarget, key: str, *, append: bool) -> int:
        with wrapped_errors(self._label(), f"read metric '{key}' from", target):
            steps = [m.step for m in tracker(target).metric_history(target.run_id, key)]
        return (max(steps) + 1 if steps else 0) if append else (max(steps) if steps else 0)

    def load(self) -> float:
        target = select_run(self._label(), self._run_id, "load", self._kedro_run_id)
        history = self._history(target, self.key)
        if self._load_args.get("step") is None:
            return float(history[-1].value)
        step = whole_step(self, self._load_args["step"], self.key)
        at_step = [m for m in history if m.step == step]
        if not at_step:
            raise MlflowDatasetError(
                f"{self._label()}: MLflow run '{target.run_id}' has no value of metric '{self.key}' at step "
                f"{step} (load_args.step); its steps are {sorted({m.step for m in history})}.",
                run_id=target.run_id, dataset=self._label())
        return float(at_step[-1].value)


class MlflowMetricHistoryDataset(_KeyedMetric):
    """A metric's history: save a list (steps 0, 1, ...) or ``{step: value}``, in one batch.

    Args:
        key: the metric name; defaults to the catalog entry name.
        run_id: the run to log into / read from; None: the active run.
        load_as: ``list`` (values ordered by step, the default), ``dict`` (``{step: value}``) or
            ``history`` (``[{"step": s, "value": v, "timestamp": t}, ...]``).
        metadata: free-form metadata, ignored by the dataset.
        load_args: kedro-mlflow's ``{mode: list | dict | history}``, the same as ``load_as``.
        save_args: kedro-mlflow's ``{mode: list | dict | history}``; every form is accepted on save
            anyway (a list of values, ``{step: value}``, or a list of ``{"value", "step"}`` dicts).
    """

    _FORMS: ClassVar[tuple[str, ...]] = ("list", "dict", "history")

    def __init__(
        self,
        key: str | None = None,
        run_id: str | None = None,
        load_as: str = "list",
        metadata: dict[str, Any] | None = None,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(run_id, metadata)
        load_as = checked_args(self, "load_args", load_args, {"mode": self._FORMS}).get("mode", load_as)
        checked_args(self, "save_args", save_args, {"mode": self._FORMS})
        if load_as not in self._FORMS:
            raise MlflowDatasetError(f"{type(self).__name__}: load_as must be one of {', '.join(self._FORMS)}, "
                                     f"got {load_as!r}.", dataset=type(self).__name__)
        self._key = key
        self._load_as = load_as

    def _describe(self) -> dict[str, Any]:
        return {"key": self._key or self._catalog_name, "run_id": self._run_id, "load_as": self._load_as}

    def save(self, data: Any) -> None:
        key = self.key
        self._send(history_points(self, key, data))

    def load(self) -> list[float] | dict[int, float] | list[dict[str, Any]]:
        target = select_run(self._label(), self._run_id, "load", self._kedro_run_id)
        history = self._history(target, self.key)
        if self._load_as == "dict":
            return {int(m.step): float(m.value) for m in history}
        if self._load_as == "history":
            return as_history(history)
        return [float(m.value) for m in history]


class MlflowMetricsDataset(_MetricBase):
    """A dict of metrics in one batch; load returns ``{key: latest value}``.

    Values may be a number, a list (a history, steps 0, 1, ...), a ``{step: value}`` dict, or
    ``{"value": v, "step": s}``.

    Args:
        prefix: prepended to every key as ``<prefix>.<key>`` (and stripped on load).
        run_id: the run to log into / read from; None: the active run.
        metadata: free-form metadata, ignored by the dataset.
    """

    def __init__(
        self,
        prefix: str | None = None,
        run_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(run_id, metadata)
        self._prefix = prefix

    def _describe(self) -> dict[str, Any]:
        return {"prefix": self._prefix, "run_id": self._run_id}

    def _full(self, key: str) -> str:
        return f"{self._prefix}.{key}" if self._prefix else str(key)

    def save(self, data: Any) -> None:
        if not isinstance(data, Mapping):
            raise MlflowDatasetError(
                f"{self._label()}: expects a dict of metrics {{name: value}}, got {type(data).__name__}.",
                dataset=self._label())
        points: list[MetricPoint] = []
        now = now_ms()
        for key, value in data.items():
            name = self._full(key)
            value = as_sequence(self, value, name)
            if isinstance(value, Mapping) and "value" in value:
                step = whole_step(self, value.get("step", 0), name)
                points.append((name, self._value(value["value"], name), now, step))
            elif isinstance(value, (Mapping, list, tuple)):
                points.extend(history_points(self, name, value))
            else:
                points.append((name, self._value(value, name), now, 0))
        if points:
            self._send(points)

    def load(self) -> dict[str, float]:
        return self._latest(select_run(self._label(), self._run_id, "load", self._kedro_run_id))

    def _latest(self, target: RunTarget) -> dict[str, float]:
        """``{name: latest value}`` of this dataset's metrics in ``target``'s run (prefix stripped)."""
        with wrapped_errors(self._label(), "read metrics from", target):
            metrics = tracker(target).latest_metrics(target.run_id)
        if not self._prefix:
            return metrics
        start = f"{self._prefix}."
        return {k[len(start):]: float(v) for k, v in metrics.items() if k.startswith(start)}


class MlflowMetricsHistoryDataset(MlflowMetricsDataset):
    """kedro-mlflow's dict of metric histories: saves like :class:`MlflowMetricsDataset` (also
    ``{name: {"value": v, "step": s}}`` and ``{name: [{"value": v, "step": s}, ...]}``); loads
    ``{name: [{"step": s, "value": v, "timestamp": t}, ...]}``."""

    def load(self) -> dict[str, list[dict[str, Any]]]:  # type: ignore[override]
        target = select_run(self._label(), self._run_id, "load", self._kedro_run_id)
        names = self._latest(target)
        return {name: as_history(self._history(target, self._full(name))) for name in names}
