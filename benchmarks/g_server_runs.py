"""Many runs on one server (``run_all.py --only server``, or alone with the ``ours`` venv or the dev venv)::

    <venv>/bin/python benchmarks/g_server_runs.py [--runs 20] [--nodes 50] [--alone 2]

One ``mlflow server`` on a fresh PostgreSQL database (127.0.0.1:5432, user ``postgres``; dropped at the
end) with proxied artifacts, run by gunicorn with an access log that gives every request's duration
(``%(D)s``, microseconds). A Kedro project of ``--nodes`` trivial nodes (one ``params:`` input each),
tracked by this plugin into that server, is copied once per run (each run has its own folder, as each
machine of a fleet has its own checkout). Then:

1. one untimed warm-up run (it creates the experiment and the ``.pyc`` files);
2. ``--alone`` runs one after the other: the requests each makes, from the access log;
3. ``--runs`` runs started at once, then waited for.

Per phase: the requests per run, what they are (method and path), the server-side time per run (the sum of
its requests' durations in the access log, divided by the runs), the slowest request, the wall time of the
phase and each run's own wall time. Every run of the phase is checked to be FINISHED in the store.

Needs ``mlflow``, ``kedro``, this plugin and ``psycopg`` in the Python that runs it (the server's driver),
and ``psql`` on the PATH. Prints one JSON object on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _projects  # noqa: E402
from _common import clean_env, say  # noqa: E402
from _server import MlflowServer  # noqa: E402

PG = ("-h", "127.0.0.1", "-p", "5432", "-U", "postgres")
#: the access log: method, path, status, duration in microseconds (gunicorn's atoms)
_FORMAT = "%(m)s %(U)s %(s)s %(D)s"


def _psql(sql: str) -> None:
    subprocess.run(["psql", *PG, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True,
                   capture_output=True, text=True)


class Server(MlflowServer):
    """``mlflow server`` on PostgreSQL database ``db``, run by gunicorn with its access log in
    ``folder/access.log``."""

    def __init__(self, folder: Path, db: str, workers: int) -> None:
        self.access = folder / "access.log"
        super().__init__(folder, f"postgresql://postgres@127.0.0.1:5432/{db}", workers=workers, extra=(
            "--gunicorn-opts", f"--access-logfile {self.access} --access-logformat '{_FORMAT}'"))

    def log_size(self) -> int:
        return self.access.stat().st_size if self.access.exists() else 0

    def requests_since(self, offset: int) -> list[tuple[str, int]]:
        """(``METHOD /path``, microseconds) of every request logged after byte ``offset``, /health left out."""
        with open(self.access, "rb") as f:
            f.seek(offset)
            lines = f.read().decode().splitlines()
        found = []
        for line in lines:
            parts = line.split()
            if len(parts) == 4 and parts[1] != "/health":
                found.append((f"{parts[0]} {_route(parts[1])}", int(parts[3])))
        return found


def _route(path: str) -> str:
    """The endpoint of ``path`` (artifact uploads named by their kind, not by run)."""
    if path.startswith("/api/2.0/mlflow-artifacts/artifacts/"):
        return "/api/2.0/mlflow-artifacts/artifacts/<run artifact>"
    return path


def _phase(server: Server, folders: list[Path], kedro: Path, env: dict[str, str], label: str,
           at_once: bool) -> dict[str, Any]:
    offset = server.log_size()
    start = time.perf_counter()
    walls: list[float] = []
    if at_once:
        procs = []
        for folder in folders:
            out = open(folder / ".bench-out.txt", "w")  # noqa: SIM115 - closed below
            procs.append((folder, time.perf_counter(),
                          subprocess.Popen([str(kedro), "run"], cwd=folder, env=env, stdout=out,
                                           stderr=subprocess.STDOUT), out))
        left = list(procs)
        while left:  # each run's own wall time: polled, so that a run is timed when it ends
            for item in list(left):
                folder, began, proc, out = item
                code = proc.poll()
                if code is None:
                    continue
                walls.append(time.perf_counter() - began)
                out.close()
                left.remove(item)
                if code:
                    text = (folder / ".bench-out.txt").read_text()[-4000:]
                    raise SystemExit(f"{label}: kedro run in {folder} failed:\n{text}")
            time.sleep(0.05)
    else:
        for folder in folders:
            began = time.perf_counter()
            proc = subprocess.run([str(kedro), "run"], cwd=folder, env=env, capture_output=True, text=True,
                                  timeout=1800)
            walls.append(time.perf_counter() - began)
            if proc.returncode:
                raise SystemExit(f"{label}: kedro run in {folder} failed:\n{proc.stderr[-4000:]}")
    wall = time.perf_counter() - start
    time.sleep(1)  # gunicorn writes the access log line after the response
    requests = server.requests_since(offset)
    kinds = collections.Counter(kind for kind, _ in requests)
    n = len(folders)
    server_s = sum(us for _, us in requests) / 1e6
    return {"runs": n, "wall_s": wall, "run_wall_s": walls, "requests": len(requests),
            "requests_per_run": len(requests) / n, "server_s_per_run": server_s / n,
            "slowest_request_ms": max((us for _, us in requests), default=0) / 1000,
            "median_request_ms": statistics.median(us for _, us in requests) / 1000 if requests else 0,
            "kinds_per_run": {k: v / n for k, v in sorted(kinds.items())}}


def _statuses(url: str, experiment: str) -> collections.Counter[str]:
    from mlflow import MlflowClient

    client = MlflowClient(url)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000) if exp else []
    return collections.Counter(r.info.status for r in runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--alone", type=int, default=2, help="runs measured one at a time first")
    parser.add_argument("--workers", type=int, default=4, help="the server's workers (MLflow's default: 4)")
    args = parser.parse_args(argv)
    kedro = Path(sys.executable).with_name("kedro")
    root = Path(tempfile.mkdtemp(prefix="kmr-server-runs-"))
    db = f"kmr_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _psql(f'CREATE DATABASE "{db}"')
    out: dict[str, Any] = {"nodes": args.nodes, "workers": args.workers}
    try:
        (root / "server").mkdir()
        with Server(root / "server", db, args.workers) as server:
            template = _projects.w2_project(root / "template", "ours", args.nodes).path
            experiment = "many-runs"
            env = clean_env(MLFLOW_TRACKING_URI=server.url, MLFLOW_EXPERIMENT_NAME=experiment)

            def copies(label: str, n: int) -> list[Path]:
                made = []
                for i in range(n):
                    target = root / label / f"run{i:02d}"
                    shutil.copytree(template, target)
                    made.append(target)
                return made

            say("warm-up run")
            _phase(server, copies("warmup", 1), kedro, env, "warm-up", at_once=False)
            say(f"{args.alone} runs one at a time")
            out["alone"] = _phase(server, copies("alone", args.alone), kedro, env, "alone", at_once=False)
            say(f"  {out['alone']['requests_per_run']:.1f} requests per run, "
                f"{out['alone']['server_s_per_run']:.3f} s server time per run")
            say(f"{args.runs} runs at once")
            out["at_once"] = _phase(server, copies("at_once", args.runs), kedro, env, "at once", at_once=True)
            at_once = out["at_once"]
            say(f"  {at_once['requests_per_run']:.1f} requests per run, {at_once['server_s_per_run']:.3f} s server "
                f"time per run, wall {at_once['wall_s']:.1f} s")
            out["statuses"] = dict(_statuses(server.url, experiment))
            out["expected_runs"] = 1 + args.alone + args.runs
    finally:
        shutil.rmtree(root, ignore_errors=True)
        _psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
