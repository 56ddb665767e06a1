"""What the node timeline and data lineage (issue 11) cost per node, and per run.

A wide pipeline: N independent nodes, each reading one persisted pandas CSV (a free input, so
lineage describes it and records its schema) and writing a memory dataset. The same project runs
through KedroSession, in this process, with `tracking.timeline` and `tracking.lineage` on and
off (both tracked, against their own sqlite store), for two widths; the slope between the widths
is the per-node cost (hooks, events), the rest is the per-run cost (digests, the end-of-run
requests: one artifact upload, one log_inputs, one log_batch).

    .venv/bin/python benchmarks/bench_lineage_timeline.py [--runs 5] [--widths 50 400]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kedro_project import make_project, run_session  # noqa: E402

NODES = '''
def step(raw):
    return len(raw)
'''


def registry(width: int) -> str:
    return (
        "from kedro.pipeline import node, pipeline\n"
        "from .nodes import step\n"
        "def register_pipelines():\n"
        f"    return {{'__default__': pipeline([node(step, 'raw', f'out_{{i}}', name=f'step_{{i}}') "
        f"for i in range({width})])}}\n"
    )


def project(root: Path, width: int, on: bool) -> Path:
    switch = {"enabled": on}
    return make_project(
        root, nodes=NODES, registry=registry(width),
        catalog={"raw": {"type": "pandas.CSVDataset", "filepath": "data/raw.csv"}},
        local_files={"data/raw.csv": "a,b,c\n" + "".join(f"{i},{i * 2},x{i}\n" for i in range(100))},
        mlflow_yml={"tracking": {"timeline": switch, "lineage": {**switch, "digest": "auto"}}},
    )


def timed(path: Path, runs: int) -> float:
    cwd = os.getcwd()
    os.chdir(path)
    try:
        run_session(path)  # warm-up
        out = []
        for _ in range(runs):
            start = time.perf_counter()
            run_session(path)
            out.append(time.perf_counter() - start)
    finally:
        os.chdir(cwd)
    return statistics.median(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--widths", type=int, nargs=2, default=[50, 400])
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    small, large = args.widths
    with tempfile.TemporaryDirectory() as tmp:
        medians = {(w, on): timed(project(Path(tmp), w, on), args.runs) for w in (small, large) for on in (False, True)}
    print(f"runs each: {args.runs} (median wall time of one `kedro run`, SequentialRunner)")
    print("| nodes | timeline+lineage off | on | difference |")
    print("|---|---|---|---|")
    for w in (small, large):
        off, on = medians[(w, False)], medians[(w, True)]
        print(f"| {w} | {off * 1000:.0f} ms | {on * 1000:.0f} ms | {(on - off) * 1000:+.0f} ms |")
    diff_small = medians[(small, True)] - medians[(small, False)]
    diff_large = medians[(large, True)] - medians[(large, False)]
    per_node = (diff_large - diff_small) / (large - small)
    print(f"per node (slope between {small} and {large} nodes): {per_node * 1000:.3f} ms")
    print(f"per run (the rest, at {small} nodes): {(diff_small - per_node * small) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
