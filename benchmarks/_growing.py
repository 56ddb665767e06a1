"""Workloads that grow (``run_all.py --only nodes``): how the cost of tracking grows with the work.

``nodes``: 1,000 and 5,000 trivial nodes (one ``params:`` input each; ``--nodes`` changes the sizes), on
the SequentialRunner and the ParallelRunner, for bare Kedro, this plugin tracked and disabled, and
kedro-mlflow tracked (up to 1,000 nodes: it takes minutes beyond). Per run: wall seconds, CPU seconds
and peak resident memory of the ``kedro`` process (``os.wait4``; ParallelRunner workers are separate
processes, not counted), and for this plugin's tracked run the end of the run: from the end of its
last node (its ``kedro/timeline.json``) to the run's end time in the store (timeline, lineage, trace,
the final batch, the status).

Standard library only; importing this module does nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _projects
from _common import clean_env, med, say, table
from _venvs import BARE, KEDRO_MLFLOW, OURS, Venv

__all__ = ["DEFAULT_NODES", "measure", "nodes"]

DEFAULT_NODES = (1000, 5000)
#: kedro-mlflow takes some 47 s for 1,000 nodes (bare Kedro: 8 s): it runs up to this size only
KEDRO_MLFLOW_MAX_NODES = 1000
RUNNERS = ("SequentialRunner", "ParallelRunner")
#: OmegaConf caps the YAML nodes a config file may expand to; 5,000 parameters exceed the cap (a Kedro
#: limit that bare Kedro meets as well): the benchmark raises it for every contender alike.
_ENV = {"OMEGACONF_MAX_YAML_EXPANDED_NODES": "10000000"}

#: run in the ``ours`` venv in the project's folder: seconds from the last node's end to the run's end
_END_OF_RUN = r"""
import json, sys, tempfile
from pathlib import Path
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
run = client.search_runs([e.experiment_id for e in client.search_experiments()],
                         order_by=["attributes.start_time DESC"], max_results=1)[0]
with tempfile.TemporaryDirectory() as tmp:
    timeline = json.loads(Path(client.download_artifacts(run.info.run_id, "kedro/timeline.json", tmp)).read_text())
print(json.dumps({"status": run.info.status, "nodes": len(timeline),
                  "end_s": run.info.end_time / 1000 - max(e["end"] for e in timeline)}))
"""


def measure(cmd: Sequence[str], cwd: Path, env: dict[str, str], what: str) -> dict[str, float]:
    """Run ``cmd``; its wall and CPU seconds and peak RSS (MB). A failure aborts with its output."""
    start = time.perf_counter()
    with open(cwd / ".bench-out.txt", "w") as out:
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"\n{what} failed (exit {proc.returncode}) in {cwd}:\n"
                         f"{(cwd / '.bench-out.txt').read_text()[-5000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}


def _disabled_copy(project: _projects.Project, root: Path) -> _projects.Project:
    """``project`` (ours) with tracking disabled the way the docs say (``disable_tracking.pipelines``)."""
    target = root / f"{project.path.name}_off"
    shutil.copytree(project.path, target)
    (target / "mlflow.db").unlink(missing_ok=True)
    disabled = "tracking:\n  disable_tracking:\n    pipelines: [__default__]\n"
    (target / "conf" / "base" / "mlflow.yml").write_text(disabled)
    return _projects.Project(target, OURS, project.label.replace("tracked", "disabled"))


def nodes(venvs: dict[str, Venv], root: Path, repeats: int, report: Any, sizes: Sequence[int] = DEFAULT_NODES,
          runners: Sequence[str] = RUNNERS) -> None:
    """The ``nodes`` workload (see the module docstring); ``repeats`` rounds, order rotated."""
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for n in sizes:
        projects = {"bare": _projects.w2_project(root, BARE, n), "ours tracked": _projects.w2_project(root, OURS, n)}
        projects["ours disabled"] = _disabled_copy(projects["ours tracked"], root)
        if KEDRO_MLFLOW in venvs and n <= KEDRO_MLFLOW_MAX_NODES:
            projects["kedro-mlflow tracked"] = _projects.w2_project(root, KEDRO_MLFLOW, n)
        for runner in runners:
            key = f"{n} nodes, {runner}"
            say(f"nodes: {key}")
            rows: dict[str, list[dict[str, float]]] = {label: [] for label in projects}
            ends: list[float] = []
            labels = list(projects)
            for label in labels:  # warm-up: the store, the .pyc files
                p = projects[label]
                measure([str(venvs[p.venv].kedro), "run", "--runner", runner], p.path, clean_env(**_ENV),
                        f"warm-up {label}")
            for r in range(repeats):
                for label in labels[r % len(labels):] + labels[:r % len(labels)]:
                    p = projects[label]
                    rows[label].append(measure([str(venvs[p.venv].kedro), "run", "--runner", runner], p.path,
                                               clean_env(**_ENV), f"{key}: {label}"))
                    if label == "ours tracked":
                        ends.append(_end_of_run(venvs[OURS], p.path))
                say("  round " + ", ".join(f"{lb} {rows[lb][-1]['wall']:.1f}s" for lb in labels))
            results[key] = {"runs": rows, "end_of_run_s": ends}
            bare = {m: med([x[m] for x in rows["bare"]]) for m in ("wall", "cpu", "rss_mb")}
            lines = []
            for label in labels:
                m = {k: med([x[k] for x in rows[label]]) for k in ("wall", "cpu", "rss_mb")}
                per_node = (m["wall"] - bare["wall"]) / n * 1000
                lines.append((label, f"{m['wall']:.2f}", f"{m['cpu']:.2f}", f"{m['rss_mb']:.0f}",
                              "-" if label == "bare" else f"{per_node:.2f}",
                              "-" if label == "bare" else f"{m['rss_mb'] - bare['rss_mb']:+.0f}"))
            end = med(ends) if ends else float("nan")
            report.add(f"nodes: {key}", table(
                ["contender", "wall s", "cpu s", "peak RSS MB", "ms per node over bare", "MB over bare"], lines)
                + f"\n\nEnd of the run (ours tracked: last node's end to the run's end in the store): {end:.2f} s "
                  f"(median of {len(ends)}).")
            tracked = {k: med([x[k] for x in rows["ours tracked"]]) for k in ("wall", "rss_mb")}
            per_node = (tracked["wall"] - bare["wall"]) / n * 1000
            report.target("nodes", f"{key}: <= 0.1 ms per node over bare", f"{per_node:.2f} ms", per_node <= 0.1)
            report.target("nodes", f"{key}: end of run <= 0.5 s", f"{end:.2f} s", end <= 0.5)
            report.target("nodes", f"{key}: <= 50 MB over bare", f"{tracked['rss_mb'] - bare['rss_mb']:+.0f} MB",
                          tracked["rss_mb"] - bare["rss_mb"] <= 50)
    if len(sizes) >= 2:  # the slope between the smallest and the largest size: the per-node cost alone
        small, large = min(sizes), max(sizes)
        for runner in runners:
            walls = {n: {label: med([x["wall"] for x in runs])
                         for label, runs in results[f"{n} nodes, {runner}"]["runs"].items()} for n in (small, large)}
            slope = ((walls[large]["ours tracked"] - walls[small]["ours tracked"])
                     - (walls[large]["bare"] - walls[small]["bare"])) / (large - small) * 1000
            results[f"slope, {runner}"] = slope
            report.target("nodes", f"{runner}: per extra node over bare, {small} to {large} nodes (fixed cost "
                          f"excluded) <= 0.1 ms", f"{slope:.2f} ms", slope <= 0.1)
    report.data["nodes"] = results


def _end_of_run(venv: Venv, project: Path) -> float:
    done = subprocess.run([str(venv.python), "-c", _END_OF_RUN, f"sqlite:///{(project / 'mlflow.db').as_posix()}"],
                          cwd=project, env=clean_env(), capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise SystemExit(f"reading the end of the run in {project} failed:\n{done.stderr[-3000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    if found["status"] != "FINISHED":
        raise SystemExit(f"the tracked run in {project} is {found['status']}, not FINISHED")
    return float(found["end_s"])
