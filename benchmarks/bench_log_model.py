"""How long does MlflowModelLoggerDataset.save take, with fast vs full requirement inference?

Run from the repository root::

    .venv/bin/python benchmarks/bench_log_model.py [--repeats 5]

Each mode logs the same scikit-learn models into one run of a fresh sqlite store (in a
temporary folder) through the dataset, exactly as a ``kedro run`` would. The first save of the
process pays one-off imports and is reported separately; the table shows the median of the
following saves.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
logging.disable(logging.WARNING)


def _models() -> dict[str, object]:
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = (x[:, 0] > 0).astype(int)
    return {
        "LogisticRegression": LogisticRegression().fit(x, y),
        "Pipeline(scaler, RF 20 trees)*": make_pipeline(
            StandardScaler(), RandomForestClassifier(n_estimators=20, random_state=0)
        ).fit(x, y),
    }


def _time_saves(dataset: object, model: object, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dataset.save(model)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="saves per model and mode (default 5)")
    args = parser.parse_args()

    from kedro_mlflow_runs import RunContext, RunState, build_config
    from kedro_mlflow_runs.io import MlflowModelLoggerDataset

    modes = {
        "fast (default)": {},
        "infer (requirements: infer)": {"requirements": "infer"},
        "explicit pip_requirements": {"pip_requirements": ["scikit-learn"]},
    }
    models = _models()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(build_config({}, project_path=Path(tmp)), kedro_run_id="bench")
        ctx.start(run_name="bench_log_model")
        try:
            warm = MlflowModelLoggerDataset(flavor="mlflow.sklearn", save_args={"name": "warmup"})
            start = time.perf_counter()
            warm.save(next(iter(models.values())))
            first = time.perf_counter() - start
            rows = []
            for model_name, model in models.items():
                for mode, save_args in modes.items():
                    # MLflow's default skops format refuses tree models unless their types are
                    # trusted: the starred models use cloudpickle.
                    fmt = {"serialization_format": "cloudpickle"} if model_name.endswith("*") else {}
                    dataset = MlflowModelLoggerDataset(
                        flavor="mlflow.sklearn", save_args={"name": "m", **fmt, **save_args}
                    )
                    times = _time_saves(dataset, model, args.repeats)
                    rows.append((model_name, mode, statistics.median(times), min(times), max(times)))
        finally:
            ctx.end(RunState.FINISHED)

    import mlflow
    import sklearn

    print(f"Python {platform.python_version()}, mlflow {mlflow.__version__}, scikit-learn "
          f"{sklearn.__version__}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"first save of the process (imports, fast mode): {first:.2f} s; {args.repeats} saves per row; "
          f"* = serialization_format: cloudpickle\n")
    print(f"| {'model':<30} | {'requirements':<28} | median s | min s | max s |")
    print(f"|{'-' * 32}|{'-' * 30}|---------:|------:|------:|")
    for model_name, mode, median, low, high in rows:
        print(f"| {model_name:<30} | {mode:<28} | {median:8.3f} | {low:5.3f} | {high:5.3f} |")


if __name__ == "__main__":
    sys.exit(main())
