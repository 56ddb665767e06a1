"""MLflow's fluent active run of each thread: the binding of a run to the threads that run its nodes.

MLflow's active-run stack is thread-local and reset in forked processes, so node code calling
``mlflow.log_metric`` in a runner's worker would otherwise create a stray run. A thread *binds* a
run (it becomes the top of that thread's stack) and *unbinds* it; nested runs a node left open
above it are ended KILLED. In a process that has not imported MLflow yet, a binding waits for the
thread's ``import mlflow`` (a one-shot import hook), so a worker pays for MLflow only when its code
uses it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..compat.mlflow import ActiveRun, fluent_stack, global_uris
from ..handle import RunHandle
from ..tracking import Tracker
from .imports import AfterImport

__all__ = ["ThreadBindings", "end_leftovers"]


class ThreadBindings:
    """The runs bound to each thread (see the module docstring)."""

    __slots__ = ("_local", "_lock")

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._local = threading.local()

    def reinit_after_fork(self, lock: threading.RLock) -> None:
        self._lock = lock

    def bind(self, run: Callable[[], Any], tracking_uri: str) -> None:
        """Make the run ``run()`` returns (of the store ``tracking_uri``) the calling thread's MLflow
        active run until :meth:`unbind` (nests).

        In a process that has not imported MLflow (a spawned worker whose nodes do not log), the
        binding waits: it is made when the thread imports ``mlflow``, so a worker pays for MLflow
        only when its code uses it (see ``imports.AfterImport``)."""
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        if "mlflow" not in sys.modules:
            stack.append(_Deferred(run, tracking_uri))
            self._bind_when_mlflow_is_imported()
            if "mlflow" in sys.modules:  # another thread imported it meanwhile: its hook may not bind this one
                self._bind_deferred()
            return
        self._bind_deferred()  # bindings this thread deferred while another thread imported MLflow
        stack.append(self._binding(run(), tracking_uri))

    def _binding(self, run: Any, tracking_uri: str) -> tuple[list[Any], Any, str] | None:
        current = fluent_stack()
        if current and current[-1].info.run_id == run.info.run_id:
            return None
        return (*self.push(run), tracking_uri)

    def _bind_when_mlflow_is_imported(self) -> None:
        with self._lock:
            if not any(isinstance(finder, AfterImport) and finder.name == "mlflow" for finder in sys.meta_path):
                sys.meta_path.insert(0, AfterImport("mlflow", self._bind_deferred,
                                                    "make the Kedro run's MLflow run active in this thread"))

    def _bind_deferred(self) -> None:
        """MLflow was just imported by this thread: make the bindings that waited for it."""
        stack = getattr(self._local, "stack", None) or []
        for index, entry in enumerate(stack):
            if isinstance(entry, _Deferred):
                stack[index] = self._binding(entry.run(), entry.tracking_uri)

    def unbind(self) -> None:
        """Undo the calling thread's latest :meth:`bind`."""
        stack = getattr(self._local, "stack", None)
        if stack:
            entry = stack.pop()
            if entry is not None and not isinstance(entry, _Deferred):
                fluent, ours, tracking_uri = entry
                end_leftovers(self.remove(fluent, ours), tracking_uri)

    def fluent_run_id(self) -> str | None:
        """The id of MLflow's active run in the calling thread (None when there is none)."""
        if "mlflow" not in sys.modules:
            return None
        stack = fluent_stack()
        return stack[-1].info.run_id if stack else None

    def user_run(self) -> RunHandle | None:
        """MLflow's active run in the calling thread, as a handle, when the user started one (no
        RunContext of ours is behind it). The plugin treats it as attached: it never ends it."""
        if "mlflow" not in sys.modules:  # nobody called mlflow.start_run
            return None
        stack = fluent_stack()
        if not stack:
            return None
        import mlflow

        info = stack[-1].info
        registry_uri = global_uris()[1]
        return RunHandle(info.run_id, mlflow.get_tracking_uri(), str(info.experiment_id), registry_uri)

    @staticmethod
    def push(run: Any) -> tuple[list[Any], Any]:
        stack, entry = fluent_stack(), ActiveRun(run)
        stack.append(entry)
        return stack, entry

    @staticmethod
    def remove(stack: list[Any], entry: Any) -> list[Any]:
        """Take ``entry`` off its thread's stack; return the runs user code left open above it."""
        if entry not in stack:
            return []
        index = stack.index(entry)
        leftovers = stack[index + 1 :]
        del stack[index:]
        return leftovers


@dataclass
class _Deferred:
    """A thread binding that waits for MLflow to be imported."""

    run: Callable[[], Any]
    tracking_uri: str


def end_leftovers(leftovers: list[Any], tracking_uri: str) -> None:
    """End (KILLED) nested runs a node started and never ended; best effort."""
    for leftover in leftovers:
        try:
            Tracker(tracking_uri).set_terminated(leftover.info.run_id, "KILLED")
        except Exception:  # the parent's own end matters more
            continue
