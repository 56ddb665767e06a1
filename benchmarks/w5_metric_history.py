"""Workload 5: 10,000 metric points through a metric-history dataset vs ``mlflow.log_metric`` in a loop.

Run by ``run_all.py`` with the ``ours`` venv (``--impl ours``) and the ``kedro-mlflow`` venv
(``--impl kedro-mlflow``)::

    <venv>/bin/python benchmarks/w5_metric_history.py --impl ours --points 10000 --loop-points 1000

In one process, against a sqlite store in a temporary folder (created before timing) and one run
started with ``mlflow.start_run()``:

- the dataset (``kedro_mlflow_runs.io.metrics.MlflowMetricHistoryDataset`` or kedro-mlflow's
  ``kedro_mlflow.io.metrics.MlflowMetricHistoryDataset``, ``key: loss``) saves a list of
  ``--points`` values (steps 0, 1, ...);
- ``mlflow.log_metric(key, value, step=i)`` is called ``--loop-points`` times (1,000 by default:
  the loop is linear, so 10,000 is extrapolated by ``run_all.py``, which says so).

What is counted as a request: every call into the tracking store's public API
(``SqlAlchemyStore.<method>``: ``log_batch``, ``log_metric``, ``get_run``, ...), outermost calls
only (a store method calling another counts once). Against ``mlflow server`` each such call is one
HTTP request of MLflow's REST store, so this is the request count a server would see. The counters
wrap the store class in this benchmark process only (measurement, not the product).

Prints one JSON object with, per side, wall seconds, points and requests by method.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class StoreCounter:
    """Counts outermost calls to the public methods of MLflow's SQLAlchemy tracking store."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self._depth = 0
        self._originals: dict[str, Callable[..., Any]] = {}

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def counted(*args: Any, **kwargs: Any) -> Any:
            if self._depth == 0:
                self.calls[name] += 1
            self._depth += 1
            try:
                return method(*args, **kwargs)
            finally:
                self._depth -= 1

        return counted

    @contextmanager
    def installed(self) -> Iterator[StoreCounter]:
        """Wrap the store's public methods for the duration of the block."""
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        for name, value in vars(SqlAlchemyStore).items():
            if not name.startswith("_") and callable(value) and not isinstance(value, (staticmethod, classmethod, type)):
                self._originals[name] = value
                setattr(SqlAlchemyStore, name, self._wrap(name, value))
        try:
            yield self
        finally:
            for name, value in self._originals.items():
                setattr(SqlAlchemyStore, name, value)
            self._originals.clear()

    def take(self) -> dict[str, int]:
        """The counts so far, then reset."""
        out = dict(self.calls)
        self.calls.clear()
        return out


def _dataset(impl: str) -> Any:
    if impl == "ours":
        from kedro_mlflow_runs.io.metrics import MlflowMetricHistoryDataset
    else:
        from kedro_mlflow.io.metrics import MlflowMetricHistoryDataset  # type: ignore[no-redef]
    return MlflowMetricHistoryDataset(key="loss")


def measure(impl: str, points: int, loop_points: int, store: Path) -> dict[str, Any]:
    """Time and count the dataset save of ``points`` values and ``loop_points`` ``log_metric`` calls."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{store.as_posix()}")
    mlflow.MlflowClient().search_experiments()  # create the store, untimed
    values = [1.0 / (i + 1) for i in range(points)]
    dataset = _dataset(impl)
    counter = StoreCounter()
    with mlflow.start_run(run_name=f"w5_{impl}") as run:
        with counter.installed():
            start = time.perf_counter()
            dataset.save(values)
            ds_s = time.perf_counter() - start
            ds_calls = counter.take()
            start = time.perf_counter()
            for i in range(loop_points):
                mlflow.log_metric("loss_loop", values[i], step=i)
            loop_s = time.perf_counter() - start
            loop_calls = counter.take()
        stored = len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss"))
    return {
        "impl": impl,
        "dataset": {"points": points, "stored": stored, "s": ds_s, "requests": ds_calls},
        "loop": {"points": loop_points, "s": loop_s, "requests": loop_calls},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("ours", "kedro-mlflow"), required=True)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--loop-points", type=int, default=1_000)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # MLflow's default artifact root is ./mlruns: keep it in the temporary folder
        result = measure(args.impl, args.points, args.loop_points, Path(tmp) / "mlflow.db")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
