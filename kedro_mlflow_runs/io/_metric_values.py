"""Checking and shaping metric values, steps and kedro-mlflow's load/save arguments (no MLflow import).

The metric datasets (``metrics.py``) hand themselves in as the :class:`MetricOwner` the errors name.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from ..errors import MlflowDatasetError

__all__ = ["MetricOwner", "MetricPoint", "as_history", "as_sequence", "checked_args", "history_points", "now_ms",
           "whole_step"]

#: ``(key, value, timestamp in ms, step)``, as ``Tracker.log_batch`` takes metrics.
MetricPoint = tuple[str, float, int, int]


class MetricOwner(Protocol):
    """The metric dataset a value belongs to: how errors name it, and how it checks a value."""

    def _label(self) -> str:
        """The dataset as errors name it (class and catalog entry)."""

    def _value(self, value: Any, key: str) -> float:
        """``value`` of metric ``key`` as a float, or an error naming the dataset."""


def now_ms() -> int:
    """The time now, in milliseconds (MLflow's metric timestamps)."""
    return int(time.time() * 1000)


def whole_step(owner: MetricOwner, step: Any, key: str) -> int:
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


def as_sequence(owner: MetricOwner, data: Any, key: str) -> Any:
    """A 1-D numpy array (or anything with ``tolist`` and ``ndim == 1``) as a list; others unchanged."""
    if hasattr(data, "tolist") and hasattr(data, "ndim"):
        if data.ndim == 0:  # a numpy scalar (np.float64): a single value
            return data.item()
        if data.ndim != 1:
            raise MlflowDatasetError(
                f"{owner._label()}: metric history '{key}' must be 1-D, got an array of shape "
                f"{getattr(data, 'shape', '?')}.", dataset=owner._label()
            )
        return data.tolist()
    return data


def checked_args(owner: MetricOwner, name: str, args: Mapping[str, Any] | None,
                 allowed: Mapping[str, tuple[Any, ...]]) -> dict[str, Any]:
    """kedro-mlflow's ``load_args`` / ``save_args``: only the keys (and values) we honour."""
    args = dict(args or {})
    for key, value in args.items():
        if key not in allowed:
            raise MlflowDatasetError(
                f"{owner._label()}: unknown {name} key '{key}'; accepted: {', '.join(sorted(allowed)) or 'none'}.",
                dataset=owner._label(), key=f"{name}.{key}")
        if allowed[key] and value not in allowed[key]:
            raise MlflowDatasetError(
                f"{owner._label()}: {name}.{key} must be one of {', '.join(map(str, allowed[key]))}, got {value!r}.",
                dataset=owner._label(), key=f"{name}.{key}")
    return args


def history_points(owner: MetricOwner, key: str, data: Any) -> list[MetricPoint]:
    """The points of a metric history: a list of values (steps 0, 1, ...), ``{step: value}``, or a list of
    kedro-mlflow's ``{"value": v, "step": s}``."""
    now = now_ms()
    data = as_sequence(owner, data, key)
    if isinstance(data, Mapping):
        pairs: Iterable[tuple[Any, Any]] = data.items()
    elif isinstance(data, (list, tuple)):
        pairs = enumerate(data)
    else:
        raise MlflowDatasetError(
            f"{owner._label()}: metric history '{key}' must be a list of values or a "
            f"{{step: value}} dict (a 1-D array is fine too), got {type(data).__name__}.", dataset=owner._label()
        )
    points: list[MetricPoint] = []
    for step, value in pairs:
        if isinstance(value, Mapping) and "value" in value:  # kedro-mlflow's {"value": v, "step": s}
            step, value = value.get("step", step), value["value"]
        points.append((key, owner._value(value, key), now, whole_step(owner, step, key)))
    return points


def as_history(history: list[Any]) -> list[dict[str, Any]]:
    """MLflow metric entities as kedro-mlflow's ``[{"step", "value", "timestamp"}, ...]``."""
    return [{"step": int(m.step), "value": float(m.value), "timestamp": int(m.timestamp)} for m in history]
