"""Workloads that grow (``run_all.py --only nodes``): how the cost of tracking grows with the work.

``nodes``: 1,000 and 5,000 trivial nodes (one ``params:`` input each; ``--nodes`` changes the sizes), on
the SequentialRunner and the ParallelRunner, for bare Kedro, this plugin tracked and disabled, and
kedro-mlflow tracked (up to 1,000 nodes: it takes minutes beyond). Per run: wall seconds, CPU seconds
and peak resident memory of the ``kedro`` process (``os.wait4``; ParallelRunner workers are separate
processes, not counted), and for this plugin's tracked run the end of the run: from the end of its
last node (its ``kedro/timeline.json``) to the run's end time in the store (timeline, lineage, trace,
the final batch, the status).

``points``, ``artifacts``, ``server``: a million metric points (``g_points.py``), one 500 MB file and 1,000
partitions through ``MlflowArtifactDataset`` on a local store and through ``mlflow server``
(``g_artifacts.py``), twenty concurrent tracked runs on one server on PostgreSQL (``g_server_runs.py``):
each script runs in the ``ours`` venv and its JSON becomes a table and the targets.

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

__all__ = ["DEFAULT_NODES", "artifacts", "measure", "nodes", "points", "server"]

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


# ------------------------------------------------------------------------------------ points, artifacts, server


def _script(venv: Venv, script: str, args: Sequence[str], cwd: Path, what: str) -> dict[str, Any]:
    """Run ``benchmarks/<script>`` with ``venv``'s Python; its JSON result (a failure aborts)."""
    cwd.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    proc = subprocess.run([str(venv.python), str(here / script), *args], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=4 * 3600)
    if proc.returncode:
        raise SystemExit(f"\n{what} failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def points(venvs: dict[str, Venv], root: Path, repeats: int, report: Any, count: int = 1_000_000) -> None:
    """A million metric points (``g_points.py``): the dataset against raw ``log_batch`` of 1,000."""
    say(f"points: {count:,} metric points")
    found = _script(venvs[OURS], "g_points.py", ["--points", str(count), "--repeats", str(min(repeats, 3))], root,
                    "points")
    raw, ours = found["raw log_batch"], found["MlflowMetricHistoryDataset"]
    rows = [(side, ", ".join(f"{s:.1f}" for s in d["s"]), f"{med(d['s']):.1f}", str(sum(d["requests"].values())),
             f"{d['stored']:,}") for side, d in (("raw log_batch (1,000 a call)", raw),
                                                  ("MlflowMetricHistoryDataset.save", ours))]
    ratio = med(ours["s"]) / med(raw["s"])
    report.add(f"points: {count:,} metric points (one run, sqlite)",
               table(["how", "seconds", "median s", "requests", "points stored"], rows)
               + f"\n\nThe dataset takes {ratio:.2f}x the raw calls' time.")
    report.data["points"] = found
    requests = sum(ours["requests"].values())
    report.target("points", "<= 1.1x raw log_batch", f"{ratio:.2f}x", ratio <= 1.1)
    report.target("points", f"requests <= {count // 1000:,}", f"{requests:,}", requests <= count // 1000)


def artifacts(venvs: dict[str, Venv], root: Path, repeats: int, report: Any, size_mb: int = 500,
              partitions: int = 1000) -> None:
    """One big file and many partitions through ``MlflowArtifactDataset`` (``g_artifacts.py``)."""
    say(f"artifacts: one {size_mb} MB file, {partitions} partitions; local store and mlflow server")
    found = _script(venvs[OURS], "g_artifacts.py", ["--size-mb", str(size_mb), "--partitions", str(partitions),
                                                     "--repeats", str(max(repeats, 3))], root, "artifacts")
    rows = []
    for store in ("local", "server"):
        for workload in ("file", "partitions"):
            sides = found[store][workload]
            write = med([x["s"] for x in sides["write only"]])
            raw, ours = med([x["s"] for x in sides["raw"]]), med([x["s"] for x in sides["ours"]])
            # throughput of the logging alone: the same bytes over (time - writing them)
            ratio = max(raw - write, 1e-3) / max(ours - write, 1e-3)
            whole = raw / ours
            memory = max(x["peak_added_mb"] for x in sides["ours"])
            raw_memory = max(x["peak_added_mb"] for x in sides["raw"])
            logged = {x["files_logged"] for x in sides["ours"]}
            rows.append((store, workload, f"{write:.2f}", f"{raw:.2f}", f"{ours:.2f}", f"{whole:.2f}", f"{ratio:.2f}",
                         f"{raw_memory:.0f}", f"{memory:.0f}", ",".join(map(str, sorted(logged)))))
            report.target("artifacts", f"{store}, {workload}: >= 0.9x raw throughput (write included)",
                          f"{whole:.2f}x", whole >= 0.9)
            report.target("artifacts", f"{store}, {workload}: memory flat (< 64 MB added)", f"+{memory:.0f} MB",
                          memory < 64)
    report.add(f"artifacts: one {size_mb} MB file, {partitions:,} partitions of {found['partition_kb']} kB",
               table(["store", "workload", "write only s", "raw s", "ours s", "throughput ours / raw",
                      "logging alone ours / raw", "raw MB added", "ours MB added", "files logged"], rows)
               + f"\n\nMedians of {found['repeats']} fresh processes per side, each of the six orders of the sides in turn. 'raw' = the same "
                 "save, then `MlflowClient.log_artifact(s)`. 'logging alone' = (raw - write) / (ours - write): "
                 "the logging's throughput without the write both do (noisier).")
    report.data["artifacts"] = found


def server(venvs: dict[str, Venv], root: Path, repeats: int, report: Any, runs: int = 20, nodes: int = 50) -> None:
    """Concurrent tracked ``kedro run``s against one ``mlflow server`` on PostgreSQL (``g_server_runs.py``)."""
    say(f"server: {runs} concurrent runs of {nodes} nodes on one mlflow server (PostgreSQL)")
    found = _script(venvs[OURS], "g_server_runs.py", ["--runs", str(runs), "--nodes", str(nodes)], root, "server")
    rows = []
    for phase, label in (("alone", "one at a time"), ("at_once", f"{runs} at once")):
        p = found[phase]
        rows.append((label, str(p["runs"]), f"{p['requests_per_run']:.1f}", f"{p['server_s_per_run']:.3f}",
                     f"{p['median_request_ms']:.1f}", f"{p['slowest_request_ms']:.0f}", f"{p['wall_s']:.1f}",
                     f"{med(p['run_wall_s']):.1f}"))
    kinds = sorted(set(found["alone"]["kinds_per_run"]) | set(found["at_once"]["kinds_per_run"]))
    alone_kinds, at_once_kinds = found["alone"]["kinds_per_run"], found["at_once"]["kinds_per_run"]
    per_kind = [(k, f"{alone_kinds.get(k, 0):.2f}", f"{at_once_kinds.get(k, 0):.2f}") for k in kinds]
    finished = found["statuses"].get("FINISHED", 0)
    report.add(f"server: {runs} concurrent `kedro run`s of {nodes} nodes, one mlflow server (PostgreSQL)",
               table(["phase", "runs", "requests per run", "server s per run", "median request ms",
                      "slowest request ms", "phase wall s", "median run wall s"], rows)
               + "\n\n" + table(["request", "per run alone", f"per run, {runs} at once"], per_kind)
               + f"\n\nRuns in the store: {found['statuses']} (expected {found['expected_runs']} FINISHED, the "
                 f"warm-up included). Server time = the sum of the requests' durations in gunicorn's access log.")
    report.data["server"] = found
    alone, at_once = found["alone"]["requests_per_run"], found["at_once"]["requests_per_run"]
    report.target("server", "every run FINISHED", f"{finished} of {found['expected_runs']}",
                  finished == found["expected_runs"])
    report.target("server", "requests per run unchanged from one alone", f"{at_once:.1f} vs {alone:.1f}",
                  at_once <= alone)
