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

import time
from collections.abc import Iterable, Mapping
from typing import Any

from kedro.io.core import AbstractDataset

from .._redact import safe_cause
from ..errors import KedroMlflowRunsError, MlflowDatasetError
from ._naming import NamedDataset
from ._run import RunTarget, select_run, tracker, tracking_error

__all__ = ["MlflowMetricDataset", "MlflowMetricHistoryDataset", "MlflowMetricsDataset"]

MetricPoint = tuple[str, float, int, int]


class _MetricBase(NamedDataset, AbstractDataset[Any, Any]):
    """Run selection, batching and reading shared by the metric datasets."""

    def __init__(self, run_id: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        self._run_id = str(run_id) if run_id else None
        self.metadata = metadata

    def _label(self) -> str:
        entry = f"catalog entry '{self._catalog_name}'" if self._catalog_name else "no catalog entry"
        return f"{type(self).__name__}({entry})"

    def _send(self, points: list[MetricPoint]) -> None:
        target = select_run(self._label(), self._run_id, "save", self._kedro_run_id)
        try:
            tracker(target).log_batch(target.run_id, metrics=points, what="log metrics to")
        except Exception as exc:
            raise tracking_error(self._label(), "log metrics to", target, exc) from safe_cause(exc)

    def _history(self, target: RunTarget, key: str) -> list[Any]:
        try:
            history = tracker(target).metric_history(target.run_id, key)
        except Exception as exc:
            raise tracking_error(self._label(), f"read metric '{key}' from", target, exc) from safe_cause(exc)
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
                f"{self._label()}: metric '{key}' must be a number, got {type(value).__name__} {value!r}.", dataset=self._label()) from safe_cause(exc)
        return number

    def _exists(self) -> bool:
        try:
            self.load()
        except (KedroMlflowRunsError, Exception):
            return False
        return True


def _now() -> int:
    return int(time.time() * 1000)


def _step(owner: _MetricBase, step: Any, key: str) -> int:
    """``step`` as an int; a fractional or non-numeric step is an error, never truncated."""
    try:
        number = float(step)
    except (TypeError, ValueError):
        number = float("nan")
    if not number.is_integer():
        raise MlflowDatasetError(
            f"{owner._label()}: step {step!r} of metric '{key}' is not a whole number. MLflow steps are "
            f"integers: use 0, 1, 2, ...", dataset=owner._label()
        )
    return int(number)


def _as_sequence(owner: _MetricBase, data: Any, key: str) -> Any:
    """A 1-D numpy array (or anything with ``tolist`` and ``ndim == 1``) as a list; others unchanged."""
    if hasattr(data, "tolist") and hasattr(data, "ndim"):
        if data.ndim != 1:
            raise MlflowDatasetError(
                f"{owner._label()}: metric history '{key}' must be 1-D, got an array of shape "
                f"{getattr(data, 'shape', '?')}.", dataset=owner._label()
            )
        return data.tolist()
    return data


class MlflowMetricDataset(_MetricBase):
    """One metric value per save; load returns the value at the latest step.

    Args:
        key: the metric name; defaults to the catalog entry name.
        run_id: the run to log into / read from; None: the active run.
        step: the step of saved values (default 0). A saved dict ``{"value": v, "step": s}``
            sets both.
        metadata: free-form metadata, ignored by the dataset.
    """

    def __init__(
        self,
        key: str | None = None,
        run_id: str | None = None,
        step: int = 0,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(run_id, metadata)
        self._key = key
        self._step = _step(self, step, key or "(catalog entry)")

    @property
    def key(self) -> str:
        """The metric name: ``key``, else the catalog entry."""
        key = self._key or self._catalog_name
        if not key:
            raise MlflowDatasetError(
                f"{self._label()}: no metric key. Set `key:` in the catalog entry, or use the "
                f"dataset through a Kedro catalog in `kedro run` so that it defaults to the entry name.", dataset=self._label())
        return key

    def _describe(self) -> dict[str, Any]:
        return {"key": self._key or self._catalog_name, "run_id": self._run_id, "step": self._step}

    def save(self, data: Any) -> None:
        key = self.key
        step = self._step
        if isinstance(data, Mapping) and "value" in data:
            step = _step(self, data.get("step", step), key)
            data = data["value"]
        self._send([(key, self._value(data, key), _now(), step)])

    def load(self) -> float:
        target = select_run(self._label(), self._run_id, "load", self._kedro_run_id)
        return float(self._history(target, self.key)[-1].value)


class MlflowMetricHistoryDataset(_MetricBase):
    """A metric's history: save a list (steps 0, 1, ...) or ``{step: value}``, in one batch.

    Args:
        key: the metric name; defaults to the catalog entry name.
        run_id: the run to log into / read from; None: the active run.
        load_as: ``list`` (values ordered by step, the default) or ``dict`` (``{step: value}``).
        metadata: free-form metadata, ignored by the dataset.
    """

    def __init__(
        self,
        key: str | None = None,
        run_id: str | None = None,
        load_as: str = "list",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(run_id, metadata)
        if load_as not in ("list", "dict"):
            raise MlflowDatasetError(f"{type(self).__name__}: load_as must be 'list' or 'dict', got {load_as!r}.", dataset=type(self).__name__)
        self._key = key
        self._load_as = load_as

    key = MlflowMetricDataset.key

    def _describe(self) -> dict[str, Any]:
        return {"key": self._key or self._catalog_name, "run_id": self._run_id, "load_as": self._load_as}

    def save(self, data: Any) -> None:
        key = self.key
        self._send(_history_points(self, key, data))

    def load(self) -> list[float] | dict[int, float]:
        target = select_run(self._label(), self._run_id, "load", self._kedro_run_id)
        history = self._history(target, self.key)
        if self._load_as == "dict":
            return {int(m.step): float(m.value) for m in history}
        return [float(m.value) for m in history]


def _history_points(owner: _MetricBase, key: str, data: Any) -> list[MetricPoint]:
    now = _now()
    data = _as_sequence(owner, data, key)
    if isinstance(data, Mapping):
        pairs: Iterable[tuple[Any, Any]] = data.items()
    elif isinstance(data, (list, tuple)):
        pairs = enumerate(data)
    else:
        raise MlflowDatasetError(
            f"{owner._label()}: metric history '{key}' must be a list of values or a "
            f"{{step: value}} dict (a 1-D array is fine too), got {type(data).__name__}.", dataset=owner._label()
        )
    return [(key, owner._value(value, key), now, _step(owner, step, key)) for step, value in pairs]


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
                f"{self._label()}: expects a dict of metrics {{name: value}}, got {type(data).__name__}.", dataset=self._label())
        points: list[MetricPoint] = []
        now = _now()
        for key, value in data.items():
            name = self._full(key)
            value = _as_sequence(self, value, name)
            if isinstance(value, Mapping) and "value" in value:
                points.append((name, self._value(value["value"], name), now, _step(self, value.get("step", 0), name)))
            elif isinstance(value, (Mapping, list, tuple)):
                points.extend(_history_points(self, name, value))
            else:
                points.append((name, self._value(value, name), now, 0))
        if points:
            self._send(points)

    def load(self) -> dict[str, float]:
        target = select_run(self._label(), self._run_id, "load", self._kedro_run_id)
        try:
            metrics = tracker(target).latest_metrics(target.run_id)
        except Exception as exc:
            raise tracking_error(self._label(), "read metrics from", target, exc) from safe_cause(exc)
        if not self._prefix:
            return metrics
        start = f"{self._prefix}."
        return {k[len(start):]: float(v) for k, v in metrics.items() if k.startswith(start)}
