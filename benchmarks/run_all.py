"""Every benchmark in one command: bare Kedro vs this plugin vs kedro-mlflow, side by side.

    python3.11 benchmarks/run_all.py [--repeats 5] [--only w1,w2,...] [--json out.json]
                                     [--venvs DIR] [--repo DIR] [--profile] [--keep DIR]

What it does (standard library only; any Python 3.10+ can drive it):

1. Builds, or reuses from ``--venvs`` (default ``~/.cache/kmr-bench-venvs``), three venvs with
   ``python3.11 -m venv`` + pip (see ``_venvs.py``): ``bare`` (Kedro 1.7+, kedro-datasets,
   scikit-learn, pandas), ``ours`` (the same plus ``--repo``, non-editable; reinstalled when its
   sources change) and ``kedro-mlflow`` (the bare set plus ``kedro-mlflow==2.0.3``).
2. Writes real Kedro projects into a temporary folder (see ``_projects.py``).
3. Times ``kedro run`` subprocesses (the venv's ``kedro``, ``KEDRO_DISABLE_TELEMETRY=1``, cwd =
   the project, no ``MLFLOW_*`` variables inherited): one untimed warm-up run per contender (it
   creates the sqlite store and the ``.pyc`` files), then ``--repeats`` rounds in which every
   contender runs once, the order rotated each round; the median is reported. A failing run
   aborts with its output.

Workloads (``--only`` takes a comma-separated subset):

- ``w1`` the 6-node training pipeline: bare; ours disabled; ours tracked; kedro-mlflow disabled;
  kedro-mlflow tracked (sqlite). Seconds and ratio to bare.
- ``w2`` 200 trivial nodes each reading a ``params:`` entry: (tracked - bare) / 200 per node, and
  the slope against a 20-node twin (the per-node cost without the run's fixed cost).
- ``w3`` ParallelRunner on 4 independent branches, ``KEDRO_MP_CONTEXT`` spawn and fork: tracked
  / bare.
- ``w4`` model save in the ``ours`` venv (``w4_model_save.py``): the dataset vs
  ``mlflow.sklearn.log_model(..., pip_requirements=[...])``, first save and later saves.
- ``w5`` 10,000 metric points (``w5_metric_history.py``): wall time and store requests, ours and
  kedro-mlflow's history dataset vs ``mlflow.log_metric`` in a loop (loops extrapolated).
- ``nodes`` (not run unless asked for): 1,000 and 5,000 trivial nodes on the Sequential and Parallel
  runners; wall and CPU seconds, peak RSS, and the end of the tracked run (``_growing.py``).
- ``points``, ``artifacts``, ``server`` (not run unless asked for; ``--only growing`` runs them with
  ``nodes``): a million metric points, a 500 MB file and 1,000 partitions through the artifact dataset
  (local store and ``mlflow server``), twenty concurrent runs on one server on PostgreSQL (``_growing.py``).
- ``w6`` the floor (``ours`` venv): ``python -c "import mlflow"``, opening an existing sqlite
  store, bare ``kedro run`` of w1 (from w1 when it ran); ``-X importtime`` of the plugin and
  whether importing it, or a tracking-disabled ``kedro run``, imports mlflow.

Then a summary of the targets (target, measured, met). ``--profile`` adds a
``-X importtime`` and a cProfile of the tracked w1 run in the ``ours`` venv (top imports, top
functions of kedro_mlflow_runs and mlflow). ``--json`` writes every raw timing.

Importing this module does nothing; ``main()`` runs it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _growing  # noqa: E402
import _projects  # noqa: E402
import _venvs  # noqa: E402
from _common import clean_env, med, say, spread, table  # noqa: E402
from _projects import Project  # noqa: E402
from _venvs import BARE, BARE_MLFLOW, KEDRO_MLFLOW, OURS, Venv  # noqa: E402

WORKLOADS = ("w1", "w2", "w3", "w4", "w5", "w6", "nodes", "points", "artifacts", "server")
#: the workloads that grow (`--only growing`): how the cost grows with the work
GROWING = ("nodes", "points", "artifacts", "server")
#: what runs without --only (the growing workloads take long: ask for them)
DEFAULT_WORKLOADS = ("w1", "w2", "w3", "w4", "w5", "w6")
_NEEDS = {
    "nodes": {BARE, OURS, KEDRO_MLFLOW},
    "points": {OURS},
    "artifacts": {OURS},
    "server": {OURS},
    "w1": {BARE, BARE_MLFLOW, OURS, KEDRO_MLFLOW},
    "w2": {BARE, OURS, KEDRO_MLFLOW},
    "w3": {BARE, OURS, KEDRO_MLFLOW},
    "w4": {OURS},
    "w5": {OURS, KEDRO_MLFLOW},
    "w6": {BARE, OURS},
}
HERE = Path(__file__).resolve().parent
RUN_TIMEOUT = 600.0


# ------------------------------------------------------------------------------------ running


def run(cmd: Sequence[str | Path], *, cwd: Path, env: dict[str, str] | None = None,
        what: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``cmd`` in ``cwd``; return its wall time and result. A non-zero exit aborts the benchmark.

    ``cwd`` is always a generated folder, never the checkout: ``python -c`` would import the package
    from it, and MLflow's default artifact root (``./mlruns``) would land in it.
    """
    start = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env or clean_env(), capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(
            f"\n{what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n  cwd: {cwd}\n"
            f"--- stdout (tail) ---\n{proc.stdout[-3000:]}\n--- stderr (tail) ---\n{proc.stderr[-6000:]}"
        )
    return elapsed, proc


@dataclass(frozen=True)
class Contender:
    """One timed command: a label, the command, its folder and environment."""

    label: str
    cmd: tuple[str, ...]
    cwd: Path
    env: dict[str, str] = field(default_factory=clean_env, compare=False)


def kedro_run(venvs: dict[str, Venv], project: Project, *args: str, label: str | None = None,
              **env: str) -> Contender:
    """``kedro run [args]`` of ``project`` with its contender's venv."""
    return Contender(label or project.label, (str(venvs[project.venv].kedro), "run", *args), project.path,
                     clean_env(**env))


def interleaved(contenders: Sequence[Contender], repeats: int, *, warmup: bool = True) -> dict[str, list[float]]:
    """Warm each contender up once, then ``repeats`` rounds, the order rotated each round."""
    times: dict[str, list[float]] = {c.label: [] for c in contenders}
    if warmup:
        for c in contenders:
            say(f"  warm-up: {c.label}")
            run(c.cmd, cwd=c.cwd, env=c.env, what=f"warm-up of '{c.label}'")
    n = len(contenders)
    for r in range(repeats):
        order = [contenders[(r + i) % n] for i in range(n)]
        for c in order:
            elapsed, _ = run(c.cmd, cwd=c.cwd, env=c.env, what=f"'{c.label}' (round {r + 1})")
            times[c.label].append(elapsed)
        say(f"  round {r + 1}/{repeats}: " + ", ".join(f"{c.label} {times[c.label][-1]:.2f}s" for c in contenders))
    return times


# ------------------------------------------------------------------------------------ tables


@dataclass
class Report:
    """Everything measured: tables for stdout, raw data for ``--json``, target checks."""

    sections: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    targets: list[tuple[str, str, str, str]] = field(default_factory=list)  # workload, target, measured, met

    def add(self, title: str, text: str) -> None:
        self.sections.append(f"### {title}\n\n{text}\n")
        print(f"\n### {title}\n\n{text}", flush=True)

    def target(self, workload: str, target: str, measured: str, met: bool | None) -> None:
        self.targets.append((workload, target, measured, "n/a" if met is None else ("yes" if met else "NO")))


# ------------------------------------------------------------------------------------ workloads


def w1(venvs: dict[str, Venv], root: Path, repeats: int, report: Report) -> None:
    bare = _projects.w1_project(root, BARE, tracked=False)
    projects = [
        bare,
        _projects.Project(bare.path, BARE_MLFLOW, "bare, MLflow installed (no plugin)"),
        _projects.w1_project(root, OURS, tracked=False),
        _projects.w1_project(root, OURS, tracked=True),
        _projects.w1_project(root, KEDRO_MLFLOW, tracked=False),
        _projects.w1_project(root, KEDRO_MLFLOW, tracked=True),
    ]
    say("w1: small training pipeline (6 nodes)")
    times = interleaved([kedro_run(venvs, p) for p in projects], repeats)
    bare = med(times["bare"])
    rows = [(label, f"{med(t):.2f}", spread(t), f"{med(t) / bare:.2f}") for label, t in times.items()]
    report.add("w1: small training pipeline (6 nodes, `kedro run`)",
               table(["contender", "median s", "min-max s", "/ bare"], rows)
               + "\n\nTracked: model via the plugin's model dataset (`mlflow.sklearn`, the plugin's default "
                 "requirements handling), accuracy via its metric dataset, report via its artifact dataset "
                 "(JSON) into `sqlite:///<project>/mlflow.db`. Disabled: the pipeline listed in "
                 "`disable_tracking.pipelines`, outputs to pickle/json, the MLflow datasets declared in the "
                 "catalog but not written (neither plugin can save a model without a run). 'bare, MLflow "
                 "installed' is the bare project in a venv that also has MLflow and its dependencies: Kedro "
                 "(dynaconf), pandas and kedro-datasets import flask, pyarrow and sqlalchemy when they are "
                 "installed, so that row is the floor of any run in an environment with MLflow.")
    report.data["w1"] = {"times": times, "median": {k: med(v) for k, v in times.items()}}
    ours_t, ours_d = med(times["ours tracked"]) / bare, med(times["ours disabled"]) / bare
    km_t, km_d = med(times["kedro-mlflow tracked"]) / bare, med(times["kedro-mlflow disabled"]) / bare
    report.target("w1", "tracked / bare <= 2.0", f"{ours_t:.2f}", ours_t <= 2.0)
    report.target("w1", "disabled / bare <= 1.05", f"{ours_d:.2f}", ours_d <= 1.05)
    env = med(times["bare, MLflow installed (no plugin)"])
    ours_env = med(times["ours disabled"]) / env
    report.target("w1", "disabled / (bare, MLflow installed) <= 1.05", f"{ours_env:.2f}", ours_env <= 1.05)
    report.target("w1", "tracked: ahead of kedro-mlflow", f"{ours_t:.2f} vs {km_t:.2f}", ours_t < km_t)
    report.target("w1", "disabled: ahead of kedro-mlflow", f"{ours_d:.2f} vs {km_d:.2f}", ours_d < km_d)


def w2(venvs: dict[str, Venv], root: Path, repeats: int, report: Report) -> None:
    n, m = _projects.WIDE_NODES, _projects.NARROW_NODES
    projects = [_projects.w2_project(root, c, k) for k in (n, m) for c in (BARE, OURS, KEDRO_MLFLOW)]
    say(f"w2: wide pipeline ({n} nodes, and {m} for the slope)")
    times = interleaved([kedro_run(venvs, p) for p in projects], repeats)
    names = {BARE: "bare", OURS: "ours tracked", KEDRO_MLFLOW: "kedro-mlflow tracked"}
    wide = {c: med(times[f"{names[c]}, {n} nodes"]) for c in names}
    narrow = {c: med(times[f"{names[c]}, {m} nodes"]) for c in names}
    per_node, slope = {}, {}
    rows = []
    for c, label in names.items():
        t = times[f"{label}, {n} nodes"]
        if c != BARE:
            per_node[c] = (wide[c] - wide[BARE]) / n * 1000
            slope[c] = ((wide[c] - narrow[c]) - (wide[BARE] - narrow[BARE])) / (n - m) * 1000
        rows.append((label, f"{wide[c]:.2f}", spread(t), f"{narrow[c]:.2f}", f"{wide[c] / wide[BARE]:.2f}",
                     "-" if c == BARE else f"{per_node[c]:.2f}", "-" if c == BARE else f"{slope[c]:.2f}"))
    report.add(f"w2: wide pipeline ({n} trivial nodes, one `params:` entry each)",
               table(["contender", f"{n} nodes median s", "min-max s", f"{m} nodes median s", "/ bare",
                      "ms per node over bare", "ms per extra node over bare"], rows)
               + f"\n\n'ms per node over bare' = (tracked - bare) / {n}: it includes the run's fixed cost "
                 f"(import mlflow, store, run start and end). 'ms per extra node' = the slope between the "
                 f"{m}- and {n}-node projects, tracked minus bare: the per-node cost without the fixed one "
                 f"(noisier: a difference of differences).")
    report.data["w2"] = {"times": times, "per_node_ms": per_node, "per_extra_node_ms": slope}
    report.target("w2", "<= 1 ms per node tracked (slope, fixed cost excluded)", f"{slope[OURS]:.2f} ms",
                  slope[OURS] <= 1.0)
    report.target("w2", "(tracked - bare) / 200, fixed cost included", f"{per_node[OURS]:.2f} ms", None)
    report.target("w2", "ahead of kedro-mlflow (slope)", f"{slope[OURS]:.2f} vs {slope[KEDRO_MLFLOW]:.2f} ms",
                  slope[OURS] < slope[KEDRO_MLFLOW])


def w3(venvs: dict[str, Venv], root: Path, repeats: int, report: Report) -> None:
    projects = [_projects.w3_project(root, c) for c in (BARE, OURS, KEDRO_MLFLOW)]
    rows = []
    report.data["w3"] = {}
    for ctx in ("spawn", "fork"):
        say(f"w3: ParallelRunner, {_projects.BRANCHES} branches, {ctx}")
        contenders = [kedro_run(venvs, p, "--runner", "ParallelRunner", label=f"{p.label} ({ctx})",
                                KEDRO_MP_CONTEXT=ctx) for p in projects]
        times = interleaved(contenders, repeats)
        bare = med(times[f"bare ({ctx})"])
        for label, t in times.items():
            rows.append((label, f"{med(t):.2f}", spread(t), f"{med(t) / bare:.2f}"))
        report.data["w3"][ctx] = times
        ours, km = med(times[f"ours tracked ({ctx})"]) / bare, med(times[f"kedro-mlflow tracked ({ctx})"]) / bare
        report.target("w3", f"ParallelRunner {ctx}: tracked / bare <= 1.3", f"{ours:.2f}", ours <= 1.3)
        report.target("w3", f"ParallelRunner {ctx}: ahead of kedro-mlflow", f"{ours:.2f} vs {km:.2f}", ours < km)
    report.add(f"w3: ParallelRunner ({_projects.BRANCHES} independent 2-node branches, `--runner ParallelRunner`)",
               table(["contender (KEDRO_MP_CONTEXT)", "median s", "min-max s", "/ bare"], rows))


def w4(venvs: dict[str, Venv], root: Path, repeats: int, report: Report) -> None:
    say("w4: model save, dataset vs raw log_model")
    py = venvs[OURS].python
    root.mkdir(parents=True, exist_ok=True)
    results = {}
    for first in ("dataset", "raw"):
        _, proc = run([py, HERE / "w4_model_save.py", "--first", first, "--repeats", str(repeats)],
                      cwd=root, what=f"w4 ({first} first)")
        results[first] = json.loads(proc.stdout.strip().splitlines()[-1])
    first_ds, first_raw = results["dataset"]["first"]["s"], results["raw"]["first"]["s"]
    second_ds, second_raw = results["raw"]["other_first"]["s"], results["dataset"]["other_first"]["s"]
    later_ds = results["dataset"]["dataset"] + results["raw"]["dataset"]
    later_raw = results["dataset"]["raw"] + results["raw"]["raw"]
    ratio = med(later_ds) / med(later_raw)
    rows = [
        ("MlflowModelLoggerDataset.save (default requirements)", f"{first_ds:.3f}", f"{second_ds:.3f}",
         f"{med(later_ds):.3f}", spread(later_ds)),
        ("mlflow.sklearn.log_model(pip_requirements=[...])", f"{first_raw:.3f}", f"{second_raw:.3f}",
         f"{med(later_raw):.3f}", spread(later_raw)),
        ("dataset / raw", f"{first_ds / first_raw:.2f}", f"{second_ds / second_raw:.2f}", f"{ratio:.2f}", "-"),
    ]
    report.add("w4: model save (LogisticRegression, one run, sqlite)",
               table(["how", "first save s", "its first save, after the other's s", "later saves median s",
                      "later min-max s"], rows)
               + f"\n\nFirst save: the first model save of a fresh process (mlflow imported, run started), each "
                 f"side first in its own process; the next column is each side's first save made right after "
                 f"the other side's first (shared imports paid). Later saves: {2 * repeats} per side, "
                 f"alternating.")
    report.data["w4"] = results
    report.target("w4", "later saves: dataset / raw log_model <= 1.1", f"{ratio:.2f}", ratio <= 1.1)
    report.target("w4", "first save < raw first save + 1 s", f"{first_ds - first_raw:+.2f} s", first_ds - first_raw < 1.0)


def w5(venvs: dict[str, Venv], root: Path, repeats: int, report: Report) -> None:
    say("w5: 10,000 metric points")
    points = 10_000
    loop_points = 1_000
    out = {}
    root.mkdir(parents=True, exist_ok=True)
    for impl, venv in (("ours", OURS), ("kedro-mlflow", KEDRO_MLFLOW)):
        # kedro-mlflow's history dataset logs one point per request: capped like the loop, extrapolated
        n = points if impl == "ours" else loop_points
        runs = []
        for _ in range(max(1, min(repeats, 3))):
            _, proc = run([venvs[venv].python, HERE / "w5_metric_history.py", "--impl", impl, "--points", str(n),
                           "--loop-points", str(loop_points)], cwd=root, what=f"w5 ({impl})")
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        out[impl] = runs
    rows = []
    scale_loop = points / loop_points

    def requests(calls: dict[str, int]) -> tuple[int, str]:
        return sum(calls.values()), ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))

    ours_ds = out["ours"]
    ds_s = med([r["dataset"]["s"] for r in ours_ds])
    ds_n, ds_what = requests(ours_ds[0]["dataset"]["requests"])
    rows.append(("kedro_mlflow_runs MlflowMetricHistoryDataset.save", f"{ds_s:.3f}", str(ds_n), ds_what,
                 f"{ours_ds[0]['dataset']['stored']} stored"))
    km = out["kedro-mlflow"]
    km_s = med([r["dataset"]["s"] for r in km]) * (points / km[0]["dataset"]["points"])
    km_n, km_what = requests(km[0]["dataset"]["requests"])
    rows.append(("kedro_mlflow MlflowMetricHistoryDataset.save", f"{km_s:.3f}", str(int(km_n * points / km[0]['dataset']['points'])),
                 km_what, f"extrapolated x{points // km[0]['dataset']['points']} from {km[0]['dataset']['points']} points"))
    loop_s = med([r["loop"]["s"] for r in ours_ds]) * scale_loop
    loop_n, loop_what = requests(ours_ds[0]["loop"]["requests"])
    rows.append(("mlflow.log_metric loop", f"{loop_s:.3f}", str(int(loop_n * scale_loop)), loop_what,
                 f"extrapolated x{int(scale_loop)} from {loop_points} points"))
    report.add(f"w5: {points:,} metric points (one run, sqlite)",
               table(["how", "wall s", "requests", "store calls measured", "note"], rows)
               + "\n\nRequests = outermost calls into MLflow's tracking store API (`SqlAlchemyStore.<method>`); "
                 "against `mlflow server` each is one HTTP request of the REST store. Median of "
                 f"{len(ours_ds)} processes.")
    report.data["w5"] = out
    report.target("w5", "10,000 points in <= 10 requests", str(ds_n), ds_n <= 10)
    report.target("w5", "ahead of kedro-mlflow", f"{ds_s:.2f} s vs {km_s:.2f} s", ds_s < km_s)


def _importtime(stderr: str) -> list[tuple[int, int, int, str]]:
    """``-X importtime`` lines as (self us, cumulative us, depth, module)."""
    out = []
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            out.append((int(m[1]), int(m[2]), len(m[3]) // 2, m[4]))
    return out


def _mlflow_modules(stderr: str) -> list[str]:
    return [name for *_, name in _importtime(stderr) if name == "mlflow" or name.startswith("mlflow.")]


def w6(venvs: dict[str, Venv], root: Path, repeats: int, report: Report) -> None:
    say("w6: the floor")
    ours = venvs[OURS]
    store = root / "w6_store" / "mlflow.db"
    store.parent.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{store.as_posix()}"
    open_code = f"import mlflow; mlflow.MlflowClient({uri!r}).search_experiments()"
    contenders = [
        Contender("python -c pass", (str(ours.python), "-c", "pass"), root),
        Contender('python -c "import mlflow"', (str(ours.python), "-c", "import mlflow"), root),
        Contender("import mlflow + open existing sqlite store", (str(ours.python), "-c", open_code), root),
    ]
    times = interleaved(contenders, max(repeats, 3))  # the warm-up creates the store
    start_s, imp_s, open_s = (med(times[c.label]) for c in contenders)
    import_mlflow = imp_s - start_s
    open_store = open_s - imp_s
    bare_w1 = report.data.get("w1", {}).get("median", {}).get("bare")
    bare_note = "from w1"
    if bare_w1 is None:
        project = _projects.w1_project(root, BARE, tracked=False)
        bare_w1 = med(interleaved([kedro_run(venvs, project)], repeats)["bare"])
        bare_note = "measured here"
    floor = bare_w1 + import_mlflow + open_store
    rows = [
        ("python startup (`python -c pass`)", f"{start_s:.3f}"),
        ("`import mlflow` (over startup)", f"{import_mlflow:.3f}"),
        ("open an existing sqlite store (search_experiments, over import)", f"{open_store:.3f}"),
        (f"bare `kedro run` of w1 ({bare_note})", f"{bare_w1:.3f}"),
        ("floor of a tracked w1 run = bare + import mlflow + open store", f"{floor:.3f}"),
        ("floor / bare", f"{floor / bare_w1:.2f}"),
    ]
    # the plugin's import: cold, and after Kedro's own modules (what `kedro` adds for the plugin)
    cold, warm = [], []
    mlflow_on_import: list[str] = []
    for _ in range(max(repeats, 3)):
        _, proc = run([ours.python, "-X", "importtime", "-c", "import kedro_mlflow_runs"], cwd=root, what="importtime")
        lines = _importtime(proc.stderr)
        cold.append(next(c for _, c, d, n in lines if n == "kedro_mlflow_runs" and d == 0) / 1000)
        mlflow_on_import = _mlflow_modules(proc.stderr)
        _, proc = run([ours.python, "-X", "importtime", "-c",
                       "import kedro.framework.cli.cli, kedro.framework.session, kedro.framework.hooks\n"
                       "import kedro_mlflow_runs.hooks, kedro_mlflow_runs.cli"], cwd=root,
                       what="importtime (entry points)")
        lines = _importtime(proc.stderr)
        warm.append(sum(c for _, c, d, n in lines if d == 0 and n.startswith("kedro_mlflow_runs")) / 1000)
        mlflow_on_import += _mlflow_modules(proc.stderr)
    rows += [
        ("`import kedro_mlflow_runs` (-X importtime cumulative, cold) ms", f"{med(cold):.1f}"),
        ("`import kedro_mlflow_runs.hooks, .cli` after Kedro's own modules ms", f"{med(warm):.1f}"),
        ("mlflow modules imported by importing the plugin", str(len(set(mlflow_on_import)))),
    ]
    # a tracking-disabled `kedro run`: does it import mlflow?
    disabled = _projects.w1_project(root / "w6", OURS, tracked=False)
    _, proc = run([ours.python, "-X", "importtime", "-m", "kedro", "run"], cwd=disabled.path, env=clean_env(),
                  what="tracking-disabled kedro run (-X importtime)")
    disabled_mlflow = sorted(set(_mlflow_modules(proc.stderr)))
    rows.append(("mlflow modules imported by a tracking-disabled `kedro run` of w1", str(len(disabled_mlflow))))
    report.add("w6: the floor (ours venv)", table(["what", "s (or as named)"], rows)
               + f"\n\nMedian of {max(repeats, 3)} interleaved subprocesses each.")
    report.data["w6"] = {"times": times, "python_startup": start_s, "import_mlflow": import_mlflow,
                         "open_store": open_store, "bare_w1": bare_w1, "floor": floor,
                         "plugin_import_ms_cold": cold, "plugin_entry_points_ms_after_kedro": warm,
                         "mlflow_modules_on_plugin_import": sorted(set(mlflow_on_import)),
                         "mlflow_modules_in_disabled_run": disabled_mlflow}
    report.target("w6", "plugin import <= 50 ms (cold `import kedro_mlflow_runs`)", f"{med(cold):.1f} ms", med(cold) <= 50)
    report.target("w6", "plugin entry points after Kedro's modules <= 50 ms", f"{med(warm):.1f} ms", med(warm) <= 50)
    report.target("w6", "no mlflow import on plugin import", f"{len(set(mlflow_on_import))} modules", not mlflow_on_import)
    report.target("w6", "no mlflow import in a tracking-disabled run", f"{len(disabled_mlflow)} modules", not disabled_mlflow)
    tracked = report.data.get("w1", {}).get("median", {}).get("ours tracked")
    if tracked is not None:
        report.target("w1+w6", "tracked w1 within 0.3 s of the floor", f"{tracked - floor:+.2f} s", tracked - floor <= 0.3)


# ------------------------------------------------------------------------------------ profile


def profile(venvs: dict[str, Venv], root: Path, report: Report) -> None:
    """``-X importtime`` and cProfile of one tracked w1 ``kedro run`` in the ``ours`` venv."""
    say("profile: tracked w1 run (ours)")
    project = _projects.w1_project(root / "profile", OURS, tracked=True)
    py = venvs[OURS].python
    run([venvs[OURS].kedro, "run"], cwd=project.path, what="profile warm-up")
    wall, proc = run([py, "-X", "importtime", "-m", "kedro", "run"], cwd=project.path, what="importtime run")
    lines = _importtime(proc.stderr)
    top: dict[str, int] = {}
    for _, cum, _, name in lines:
        top[name] = max(top.get(name, 0), cum)
    best = sorted(top.items(), key=lambda kv: -kv[1])[:15]
    report.add(f"profile: `-X importtime` of a tracked w1 `kedro run` (wall {wall:.2f} s incl. importtime overhead)",
               table(["module", "cumulative ms"], [(n, f"{c / 1000:.0f}") for n, c in best]))
    prof = root / "profile" / "w1.prof"
    wall, _ = run([py, "-m", "cProfile", "-o", prof, "-m", "kedro", "run"], cwd=project.path, what="cProfile run")
    stats = pstats.Stats(str(prof), stream=io.StringIO())
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = []
    for (filename, line, func), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "kedro_mlflow_runs" in filename or "/mlflow/" in filename:
            short = filename.split("site-packages/")[-1]
            entries.append((cumtime, tottime, ncalls, f"{short}:{line}({func})"))
    entries.sort(reverse=True)
    report.add(f"profile: cProfile of a tracked w1 `kedro run` (wall {wall:.2f} s under cProfile, "
               f"{total:.2f} s profiled), top 20 cumulative in kedro_mlflow_runs and mlflow",
               table(["cumulative s", "own s", "calls", "function"],
                     [(f"{c:.3f}", f"{t:.3f}", str(n), f) for c, t, n, f in entries[:20]]))
    report.data["profile"] = {"importtime_top": best, "cprofile_top": [list(e) for e in entries[:40]]}


# ------------------------------------------------------------------------------------ main


def machine(venvs: dict[str, Venv]) -> str:
    versions: dict[str, str] = {}
    for v in venvs.values():
        for dist, ver in v.versions.items():
            versions.setdefault(dist, ver)
            if versions[dist] != ver:
                versions[dist] = f"{versions[dist]} / {ver} ({v.name})"
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    py = platform.python_version() if not venvs else subprocess.run(
        [str(next(iter(venvs.values())).python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, cwd=tempfile.gettempdir()).stdout.strip()
    return (f"{os.cpu_count()} CPUs, Python {py}, {platform.platform()}, load average at start "
            f"{', '.join(f'{x:.2f}' for x in load)}\n"
            + ", ".join(f"{d} {versions[d]}" for d in ("kedro", "mlflow", "kedro-mlflow", "kedro-mlflow-runs",
                                                        "kedro-datasets", "scikit-learn", "pandas") if d in versions))


WORKLOAD_FUNCS: dict[str, Callable[[dict[str, Venv], Path, int, Report], None]] = {
    "w1": w1, "w2": w2, "w3": w3, "w4": w4, "w5": w5, "w6": w6,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per workload (median; default 5)")
    parser.add_argument("--only", default=",".join(DEFAULT_WORKLOADS),
                        help="comma-separated workloads (default w1-w6); `growing` = nodes,points,artifacts,server")
    parser.add_argument("--nodes", default=",".join(map(str, _growing.DEFAULT_NODES)),
                        help="node counts of the `nodes` workload (default 1000,5000)")
    parser.add_argument("--runners", default=",".join(_growing.RUNNERS),
                        help="runners of the `nodes` workload (default SequentialRunner,ParallelRunner)")
    parser.add_argument("--json", type=Path, help="write every raw timing here")
    parser.add_argument("--venvs", type=Path, default=_venvs.default_cache(), help="venv cache folder")
    parser.add_argument("--repo", type=Path, default=HERE.parent, help="the kedro-mlflow-runs checkout to measure")
    parser.add_argument("--profile", action="store_true", help="add -X importtime and cProfile of tracked w1")
    parser.add_argument("--keep", type=Path, help="generate the projects here and keep them (default: a temp dir)")
    args = parser.parse_args(argv)
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    if "growing" in args.only:
        args.only = [w for w in args.only if w != "growing"] + [w for w in GROWING if w not in args.only]
    args.nodes = [int(n) for n in args.nodes.split(",") if n.strip()]
    args.runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    unknown = set(args.only) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(sorted(unknown))}; choose from {', '.join(WORKLOADS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    needs = set().union(*(_NEEDS[w] for w in args.only)) | ({OURS} if args.profile else set())
    venvs = _venvs.build_all(args.venvs.expanduser(), args.repo.resolve(), needs, say)
    report = Report()
    header = machine(venvs)
    print(f"## kedro-mlflow-runs benchmarks: median of {args.repeats}\n\n{header}", flush=True)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="kmr-bench-", dir=args.keep))
    else:
        root = Path(tempfile.mkdtemp(prefix="kmr-bench-"))
    try:
        for name in WORKLOADS:  # always in this order: w6 reads w1's bare and tracked medians
            if name == "nodes" and name in args.only:
                _growing.nodes(venvs, root / name, args.repeats, report, sizes=args.nodes, runners=args.runners)
            elif name in GROWING and name in args.only:
                getattr(_growing, name)(venvs, root / name, args.repeats, report)
            elif name in args.only:
                WORKLOAD_FUNCS[name](venvs, root / name, args.repeats, report)
        if args.profile:
            profile(venvs, root, report)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    elapsed = time.perf_counter() - started
    summary = table(["workload", "target", "measured (ours vs kedro-mlflow)", "met"], report.targets)
    report.add("targets", summary + f"\n\nWhole benchmark: {elapsed / 60:.1f} min.")
    if args.json:
        args.json.write_text(json.dumps({"machine": header, "repeats": args.repeats, "elapsed_s": elapsed,
                                         "targets": report.targets, **report.data}, indent=2, default=str))
        say(f"raw results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
