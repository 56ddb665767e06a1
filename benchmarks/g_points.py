"""Many metric points (``run_all.py``-independent; run with the ``ours`` venv or the dev venv)::

    <venv>/bin/python benchmarks/g_points.py --points 1000000 --repeats 2

One metric of ``--points`` values (steps 0, 1, ...) saved into a run of a fresh sqlite store two ways:
``kedro_mlflow_runs.io.metrics.MlflowMetricHistoryDataset.save`` and raw ``MlflowClient.log_batch``
calls of MLflow's largest batch (1,000 metrics: ``MAX_METRICS_PER_BATCH``), each side in a store of its
own, the order alternated between repeats. Requests are counted as in ``w5_metric_history.py`` (calls
into the tracking store's API, outermost only: one HTTP request each against ``mlflow server``).
Prints one JSON object: per side, wall seconds per repeat, points stored, requests by method.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from w5_metric_history import StoreCounter  # noqa: E402


def _raw(run_id: str, values: list[float]) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from mlflow.utils.validation import MAX_METRICS_PER_BATCH

    client = MlflowClient()
    now = int(time.time() * 1000)
    for start in range(0, len(values), MAX_METRICS_PER_BATCH):
        chunk = values[start:start + MAX_METRICS_PER_BATCH]
        client.log_batch(run_id, metrics=[Metric("loss", v, now, start + i) for i, v in enumerate(chunk)])


def _dataset(run_id: str, values: list[float]) -> None:
    from kedro_mlflow_runs.io.metrics import MlflowMetricHistoryDataset

    MlflowMetricHistoryDataset(key="loss").save(values)


def measure(side: str, values: list[float], folder: Path) -> dict[str, Any]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{(folder / f'{side}.db').as_posix()}")
    mlflow.MlflowClient().search_experiments()  # create the store, untimed
    counter = StoreCounter()
    with mlflow.start_run(run_name=side) as run:
        with counter.installed():
            start = time.perf_counter()
            (_raw if side == "raw log_batch" else _dataset)(run.info.run_id, values)
            elapsed = time.perf_counter() - start
            calls = counter.take()
        stored = len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss"))
    mlflow.set_tracking_uri(None)
    return {"s": elapsed, "stored": stored, "requests": calls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    values = [1.0 / (i + 1) for i in range(args.points)]
    sides = ["raw log_batch", "MlflowMetricHistoryDataset"]
    out: dict[str, Any] = {side: {"s": [], "stored": None, "requests": None} for side in sides}
    for r in range(args.repeats):
        for side in sides if r % 2 == 0 else sides[::-1]:
            with tempfile.TemporaryDirectory() as tmp:
                os.chdir(tmp)  # MLflow's default artifact root is ./mlruns: keep it in the temporary folder
                found = measure(side, values, Path(tmp))
            out[side]["s"].append(found["s"])
            out[side]["stored"], out[side]["requests"] = found["stored"], found["requests"]
            print(f"{side}: {found['s']:.2f} s, {sum(found['requests'].values())} requests",
                  file=sys.stderr, flush=True)
    print(json.dumps({"points": args.points, **out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
