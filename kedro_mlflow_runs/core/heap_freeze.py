"""Keep Python's cyclic garbage collector off the objects that exist when a tracked run opens.

Importing MLflow (and what it imports) leaves some hundreds of thousands of long-lived objects in the
heap. Python's collector walks every tracked object at each full collection, and a Kedro run of many
nodes allocates enough to trigger full collections again and again: with MLflow loaded each one walks
MLflow's objects too, which made a tracked run of thousands of trivial nodes seconds slower than the
same run untracked. ``gc.freeze()`` once the run is open moves the objects alive then into the
permanent generation, which collections skip; the run's own objects are collected as before.
``gc.unfreeze()`` when the run ends puts them back (objects that became cyclic garbage meanwhile are
collected then: nothing is lost, at worst kept until the end of the run).
``KEDRO_MLFLOW_RUNS_GC_FREEZE=0`` turns it off.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable
from typing import Final

__all__ = ["GC_FREEZE_ENV", "freeze_heap"]

GC_FREEZE_ENV: Final = "KEDRO_MLFLOW_RUNS_GC_FREEZE"
_lock = threading.Lock()
_holders = [0]  # runs in this process that froze the heap and did not end yet


def freeze_heap() -> Callable[[], None]:
    """Freeze the heap for a run; returns the undo (the last run to end unfreezes it)."""
    if os.environ.get(GC_FREEZE_ENV, "").strip().lower() in ("0", "false", "off", "no"):
        return lambda: None
    with _lock:
        _holders[0] += 1
        gc.freeze()
    done = [False]

    def unfreeze() -> None:
        with _lock:
            if done[0]:
                return
            done[0] = True
            _holders[0] -= 1
            if _holders[0] == 0:
                gc.unfreeze()

    return unfreeze
