"""The heap is frozen for the collector while a tracked run runs (what MLflow's import left is not walked
at every full collection), and given back when it ends: cyclic garbage made meanwhile is still collected,
and ``KEDRO_MLFLOW_RUNS_GC_FREEZE=0`` turns it off."""

from __future__ import annotations

import gc

import pytest
from kedro_project import run_session

NODES = '''
import gc
import weakref


class Cycle:
    pass


SEEN = {}


def make_cycle(data):
    a, b = Cycle(), Cycle()
    a.other, b.other = b, a  # cyclic garbage once the node returns
    SEEN["freeze_count"] = gc.get_freeze_count()
    SEEN["cycle"] = weakref.ref(a)
    return int(data["n"])
'''

REGISTRY = '''
from kedro.pipeline import node, pipeline

from .nodes import make_cycle


def register_pipelines():
    return {"__default__": pipeline([node(make_cycle, "params:data", "n", name="make_cycle")])}
'''


@pytest.mark.parametrize("switch", [None, "0"])
def test_the_heap_is_frozen_while_the_run_runs_and_given_back_after(project_factory, mlflow_store, monkeypatch,
                                                                    switch):
    import importlib

    if switch is not None:
        monkeypatch.setenv("KEDRO_MLFLOW_RUNS_GC_FREEZE", switch)
    project = project_factory(nodes=NODES, registry=REGISTRY)
    assert gc.get_freeze_count() == 0
    run_session(project)
    seen = importlib.import_module(f"{project.name}.nodes").SEEN
    assert (seen["freeze_count"] > 10_000) is (switch is None), seen["freeze_count"]  # MLflow's objects, frozen
    assert gc.get_freeze_count() == 0  # given back
    gc.collect()
    assert seen["cycle"]() is None  # the run's cyclic garbage was collected
    mlflow_store.assert_one_run(status="FINISHED")


def test_overlapping_runs_unfreeze_once_the_last_ends():
    from kedro_mlflow_runs.core.heap_freeze import freeze_heap

    first, second = freeze_heap(), freeze_heap()
    assert gc.get_freeze_count() > 0
    first()
    first()  # twice: still counted once
    assert gc.get_freeze_count() > 0  # the second run still runs
    second()
    assert gc.get_freeze_count() == 0
