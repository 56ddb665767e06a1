"""The fast exit never loses what node code wrote: files a node leaves open (in a module variable, or
in a reference cycle) are complete after `kedro run`, tracked as untracked, on every runner."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from kedro_project import kedro_env, kedro_run

NODES = '''
import gzip

LEFT_OPEN = None  # module variables holding files, as careless node code does
HOLDER = None


class Holder:
    """An object in a reference cycle: only the garbage collector frees it, and what it holds."""


def leave_open(data, out):
    global LEFT_OPEN, HOLDER
    LEFT_OPEN = open(out["plain"], "w")
    LEFT_OPEN.write("x" * 1100)
    HOLDER = Holder()
    HOLDER.me = HOLDER
    HOLDER.file = open(out["cycle"], "w")
    HOLDER.file.write("y" * 1100)
    if out.get("gzip"):  # a stream whose close writes more than its buffer (the gzip trailer)
        HOLDER.gz = gzip.open(out["gzip"], "wt")
        HOLDER.gz.write("z" * 1100)
    return 1
'''

REGISTRY = '''
from kedro.pipeline import Pipeline, node, pipeline

from .nodes import leave_open


def register_pipelines():
    return {"__default__": pipeline([node(leave_open, ["params:data", "params:out"], "done", name="leave_open")])}
'''

# registered when settings.py is imported, before the plugin's own atexit handler: runs after it
SETTINGS = '''
import atexit, gc, os
atexit.register(lambda: print("FROZEN", gc.get_freeze_count() > 0, "PID", os.getpid()))
'''


def _project(project_factory, tmp_path: Path, *, tracked: bool, gz: bool = False) -> tuple[Path, dict[str, Path]]:
    out = {"plain": tmp_path / "plain.txt", "cycle": tmp_path / "cycle.txt"}
    if gz:
        out["gzip"] = tmp_path / "z.txt.gz"
    mlflow_yml = None if tracked else {"tracking": {"disable_tracking": {"pipelines": ["__default__"]}}}
    project = project_factory(nodes=NODES, registry=REGISTRY, settings=SETTINGS, mlflow_yml=mlflow_yml,
                              parameters={"data": {"n": 1}, "out": {k: str(v) for k, v in out.items()}})
    return project, out


def _sizes(out: dict[str, Path]) -> dict[str, int]:
    return {name: path.stat().st_size if path.exists() else -1 for name, path in out.items()}


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["SequentialRunner", "ThreadRunner"])
def test_files_a_node_leaves_open_are_complete_and_the_exit_still_fast(project_factory, tmp_path, runner):
    project, out = _project(project_factory, tmp_path, tracked=True)
    ran = kedro_run(project, "--runner", runner)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert _sizes(out) == {"plain": 1100, "cycle": 1100}
    assert "FROZEN True" in ran.stdout  # plain files are flushed: the exit stays fast


@pytest.mark.slow
def test_an_open_stream_that_needs_its_close_turns_the_fast_exit_off(project_factory, tmp_path):
    project, out = _project(project_factory, tmp_path, tracked=True, gz=True)
    ran = kedro_run(project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert gzip.decompress(out["gzip"].read_bytes()) == b"z" * 1100  # the trailer was written
    assert _sizes(out)["plain"] == 1100 and _sizes(out)["cycle"] == 1100
    assert "FROZEN False" in ran.stdout


@pytest.mark.slow
@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_parallel_workers_keep_what_they_would_keep_untracked(project_factory, tmp_path, context):
    """Nodes run in worker processes, which exit on their own terms: tracked, they keep exactly what the
    same workers keep untracked."""
    results = {}
    for tracked in (True, False):
        folder = tmp_path / ("tracked" if tracked else "untracked")
        folder.mkdir()
        project, out = _project(project_factory, folder, tracked=tracked, gz=True)
        ran = kedro_run(project, "--runner", "ParallelRunner", env=kedro_env(KEDRO_MP_CONTEXT=context))
        assert ran.returncode == 0, ran.stderr[-3000:]
        sizes = _sizes(out)
        if sizes["gzip"] > 0:
            sizes["gzip_valid"] = int(gzip.decompress(out["gzip"].read_bytes()) == b"z" * 1100)
        results[tracked] = sizes
    assert results[True] == results[False]
