"""A disabled run against bare Kedro, in the same environment (MLflow installed), interleaved A/B.

The project disables tracking for its pipeline; "bare" is the same project with the plugin's hooks
disabled (``DISABLE_HOOKS_FOR_PLUGINS``), so both pay the same Kedro, the same catalog and the same
interpreter start. Prints the median of each and their ratio (the target: 1.05 at most).

    .venv/bin/python benchmarks/disabled_ab.py --runs 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from kedro_project import kedro_cmd, kedro_env, make_project  # noqa: E402

SETTINGS = 'import os\nif os.environ.get("KMR_BARE"):\n    DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow-runs",)\n'


def _time(project: Path, **env: str) -> float:
    start = time.perf_counter()
    subprocess.run(kedro_cmd("run"), cwd=project, env=kedro_env(**env), check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        project = make_project(Path(root), settings=SETTINGS,
                               mlflow_yml={"tracking": {"disable_tracking": {"pipelines": ["__default__"]}}})
        _time(project), _time(project, KMR_BARE="1")  # warm the caches of both
        plugin, bare = [], []
        for _ in range(args.runs):
            plugin.append(_time(project))
            bare.append(_time(project, KMR_BARE="1"))
    ratio = statistics.median(plugin) / statistics.median(bare)
    print(f"disabled run: median {statistics.median(plugin):.3f} s; bare Kedro: {statistics.median(bare):.3f} s; "
          f"ratio {ratio:.3f} ({args.runs} runs each, interleaved; load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
