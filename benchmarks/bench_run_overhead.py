"""What kedro-mlflow-runs adds to a `kedro run`: wall time of the same pipeline with and without it.

Runs the test suite's small project (3 nodes, 10 parameters) through KedroSession, in this process,
N times each way, against a fresh sqlite store, and prints the medians. The untracked twin project
lists the pipeline in `tracking.disable_tracking.pipelines`, which makes no MLflow call at all.

    .venv/bin/python benchmarks/bench_run_overhead.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import logging  # noqa: E402

from kedro_project import make_project, run_session  # noqa: E402


def timed(project: Path, pipeline: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        run_session(project, pipeline_names=[pipeline])
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tracked_project = make_project(Path(tmp))
        untracked_project = make_project(
            Path(tmp), mlflow_yml={"tracking": {"disable_tracking": {"pipelines": ["training"]}}}
        )
        logging.disable(logging.INFO)
        run_session(tracked_project, pipeline_names=["training"])  # warm-up: imports mlflow, creates the store
        run_session(untracked_project, pipeline_names=["training"])
        tracked = timed(tracked_project, "training", args.runs)
        untracked = timed(untracked_project, "training", args.runs)
    med_t, med_u = statistics.median(tracked), statistics.median(untracked)
    print(f"runs each: {args.runs}")
    print(f"tracked   (new run, 10 params, 11 tags, end): median {med_t * 1000:.0f} ms")
    print(f"untracked (same pipeline, tracking disabled):  median {med_u * 1000:.0f} ms")
    print(f"overhead of tracking a run: {(med_t - med_u) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
