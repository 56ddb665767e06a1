"""What writing the node timeline as an MLflow trace (`tracking.timeline.trace`) adds to the end of a
run: a 200-node pipeline tracked into its own sqlite store, run through KedroSession in this process,
with the trace on and off, interleaved; the median wall time of each, and their difference.

    .venv/bin/python benchmarks/bench_trace.py [--runs 9] [--nodes 200]
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
def step(x):
    return x
'''


def project(root: Path, nodes: int, trace: bool) -> Path:
    registry = ("from kedro.pipeline import node, pipeline\nfrom .nodes import step\ndef register_pipelines():\n"
                f"    return {{'__default__': pipeline([node(step, 'params:x', f'out_{{i}}', name=f'step_{{i}}') "
                f"for i in range({nodes})])}}\n")
    return make_project(root / ("on" if trace else "off"), nodes=NODES, registry=registry, parameters={"x": 1},
                        mlflow_yml={"tracking": {"timeline": {"trace": trace}}})


def once(path: Path) -> float:
    cwd = os.getcwd()
    os.chdir(path)
    try:
        start = time.perf_counter()
        run_session(path)
        return time.perf_counter() - start
    finally:
        os.chdir(cwd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--nodes", type=int, default=200)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {on: project(Path(tmp), args.nodes, on) for on in (False, True)}
        for path in paths.values():
            once(path)  # warm-up: imports, the store's tables
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.runs):
            for on in (False, True):
                times[on].append(once(paths[on]))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"{args.nodes} nodes, {args.runs} interleaved runs each (median wall time of one `kedro run`):")
    print(f"trace off {off * 1000:.0f} ms, on {on * 1000:.0f} ms, difference {(on - off) * 1000:+.0f} ms")


if __name__ == "__main__":
    main()
