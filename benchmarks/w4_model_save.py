"""Workload 4: ``MlflowModelLoggerDataset.save`` vs ``mlflow.sklearn.log_model(..., pip_requirements=[...])``.

Run by ``run_all.py`` with the ``ours`` venv's interpreter (it can also be run by hand)::

    <venv>/bin/python benchmarks/w4_model_save.py --first dataset --repeats 5

In one process: a fresh sqlite store in a temporary folder, ``import mlflow`` and one run started
with ``mlflow.start_run()`` (the dataset attaches to a run the user started, and never ends it),
then a fitted ``LogisticRegression`` is saved

1. once by whichever side ``--first`` names: that save pays the one-off costs of the process
   (the flavor's modules, its serializer, requirement derivation). ``run_all.py`` runs this script
   twice, once with each side first, so each side's first save is measured in the same state;
2. once by the other side (its own first save in this process: reported, not a later save);
3. then ``--repeats`` times by each side, alternating: the later saves.

The raw call is given ``pip_requirements=["scikit-learn==<installed>"]``, so MLflow does not infer
them in a subprocess; the dataset uses its default (fast, in-process derived requirements).
Prints one JSON object: ``{"first": {"side": ..., "s": ...}, "other_first": {...}, "dataset": [s...],
"raw": [s...]}``.
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


def _model() -> Any:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 8))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    return LogisticRegression(max_iter=200).fit(x, y)


def measure(first: str, repeats: int, store: Path) -> dict[str, Any]:
    """Save the model ``1 + repeats`` times each way into one run of the sqlite store ``store``."""
    import mlflow
    import sklearn

    from kedro_mlflow_runs.io.models import MlflowModelLoggerDataset

    mlflow.set_tracking_uri(f"sqlite:///{store.as_posix()}")
    model = _model()
    requirements = [f"scikit-learn=={sklearn.__version__}"]
    counter = iter(range(10_000))

    def dataset_save() -> float:
        dataset = MlflowModelLoggerDataset(flavor="mlflow.sklearn", save_args={"name": f"ds{next(counter)}"})
        start = time.perf_counter()
        dataset.save(model)
        return time.perf_counter() - start

    def raw_save() -> float:
        start = time.perf_counter()
        mlflow.sklearn.log_model(model, name=f"raw{next(counter)}", pip_requirements=requirements)
        return time.perf_counter() - start

    sides = {"dataset": dataset_save, "raw": raw_save}
    other = "raw" if first == "dataset" else "dataset"
    with mlflow.start_run(run_name="w4_model_save"):
        first_s = sides[first]()
        other_first_s = sides[other]()  # the other side's one-off costs: not a later save
        later: dict[str, list[float]] = {"dataset": [], "raw": []}
        for i in range(repeats):
            for side in (first, other) if i % 2 else (other, first):
                later[side].append(sides[side]())
    return {"first": {"side": first, "s": first_s}, "other_first": {"side": other, "s": other_first_s}, **later}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", choices=("dataset", "raw"), required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # MLflow's default artifact root is ./mlruns: keep it in the temporary folder
        # create the store first, outside the timed part (a new sqlite store costs seconds once)
        import mlflow

        mlflow.MlflowClient(f"sqlite:///{(Path(tmp) / 'mlflow.db').as_posix()}").search_experiments()
        result = measure(args.first, args.repeats, Path(tmp) / "mlflow.db")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
