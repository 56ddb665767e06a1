"""The run registry: the one object per process that knows every run, and the one road to the end.

:class:`RunRegistry` maps each Kedro run id to what that run holds (its :class:`TrackedRun`: the
RunContext, the signal guard, the config, the end steps), keeps the list of contexts ACTIVE in this
process (custom runners' and workers' included), and owns the :class:`ProcessState`. Any number
of hook instances share it: :data:`REGISTRY` is the process's one registry.

Every way a run ends (Kedro's hooks, the signal guard, the runner guard, atexit, stale-run
cleanup, ``RunContext.end`` and the ``with`` block) calls :meth:`RunRegistry.finish` with an
:class:`Outcome`; nothing else moves a context to a terminal state. The registry never creates a
RunContext: contexts are handed to it (:meth:`begin`, :meth:`activated`).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ..handle import Outcome, RunHandle, RunState
from ..tracking import CLIENTS
from . import worker_env
from .configs import ProjectConfigs
from .end_steps import KILLED_END_STEPS_TIMEOUT_S, run_end_steps
from .fast_exit import fast_exit
from .process import ProcessState
from .tracked import TrackedRun

if TYPE_CHECKING:  # pragma: no cover
    from .context import RunContext

__all__ = ["REGISTRY", "RunRegistry", "registry"]

logger = logging.getLogger(__name__)


class RunRegistry:
    """Every run of this process, under one lock (see the module docstring)."""

    __slots__ = ("_active", "_atexit", "_firsts", "_lock", "_tracked", "_worker_contexts", "_worker_recorders",
                 "configs", "process")

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.process: Final = ProcessState()
        self.configs: Final = ProjectConfigs()
        self._tracked: dict[str, TrackedRun] = {}
        self._active: list[RunContext] = []
        self._worker_contexts: dict[tuple[int, str], RunContext] = {}
        self._atexit = False
        self._firsts: set[tuple[int, str]] = set()
        self._worker_recorders: dict[tuple[int, str], Any] = {}

    # -- public view ---------------------------------------------------------------------

    def runs(self) -> dict[str, RunContext]:
        """``{kedro_run_id: RunContext}`` of the Kedro runs in progress in this process."""
        with self._lock:
            return {key: tracked.context for key, tracked in self._tracked.items()}

    def active(self, *, own_process_only: bool = False) -> list[RunContext]:
        """The ACTIVE contexts of this process, oldest first (optionally without those a fork inherited)."""
        with self._lock:
            pid = os.getpid()
            return [c for c in self._active if not own_process_only or c.pid == pid]

    def current(self, kedro_run_id: str | None = None) -> RunContext | None:
        """The ACTIVE context a dataset or user code of this thread should use, among those of this
        process: of ``kedro_run_id`` when given; else the newest one started in this thread, else
        the newest one (``core.current`` adds the context of a handle a parent process published)."""
        with self._lock:
            candidates = [c for c in self._active if kedro_run_id is None or c.kedro_run_id == kedro_run_id]
            if not candidates:
                return None
            me = threading.get_ident()
            return next((c for c in reversed(candidates) if c.thread == me), candidates[-1])

    def worker_context(self, handle: RunHandle, attach: Callable[[RunHandle], RunContext]) -> RunContext:
        """The context this process attached for a handle its parent published (``attach(handle)``
        makes it the first time, and again if it ended)."""
        key = (os.getpid(), handle.run_id)
        with self._lock:
            ctx = self._worker_contexts.get(key)
            if ctx is None or not ctx.is_active:
                ctx = self._worker_contexts[key] = attach(handle)
            return ctx

    def recorder(self, kedro_run_id: str | None, factory: Callable[[str | None], Any]) -> Any:
        """What records the node timeline and lineage of a Kedro run in this process, or None.

        The tracked run's own recorder (also in a forked worker, which inherited it); in a process
        that does not track the run (a spawned worker), ``factory(kedro_run_id)`` builds one from
        what the run published, once per process and Kedro run.
        """
        with self._lock:
            tracked = self._tracked.get(str(kedro_run_id)) if kedro_run_id is not None else None
            if tracked is not None:
                return tracked.recorder
            key = (os.getpid(), str(kedro_run_id))
            if key not in self._worker_recorders:
                self._worker_recorders[key] = factory(kedro_run_id)
            return self._worker_recorders[key]

    def set_worker_recorder(self, kedro_run_id: str, recorder: Any) -> None:
        """A cluster worker (Dask) was handed a Kedro run: ``recorder`` records its events in this process
        from now on (None: forget it, the run was taken back)."""
        key = (os.getpid(), str(kedro_run_id))
        with self._lock:
            if recorder is None:
                self._worker_recorders.pop(key, None)
            else:
                self._worker_recorders[key] = recorder

    def first_in_process(self, what: str) -> bool:
        """True the first time ``what`` is asked in this process (a forked child asks afresh)."""
        key = (os.getpid(), what)
        with self._lock:
            if key in self._firsts:
                return False
            self._firsts.add(key)
            return True

    # -- what RunContext transitions report ----------------------------------------------

    def activated(self, ctx: RunContext) -> None:
        """``ctx`` became ACTIVE in this process."""
        with self._lock:
            if ctx not in self._active:
                self._active.append(ctx)
            if not self._atexit:  # after MLflow's own atexit handler (imported by now): ours runs first
                atexit.register(self._at_exit)
                if hasattr(os, "register_at_fork"):
                    os.register_at_fork(after_in_child=self._after_fork)
                self._atexit = True

    # -- Kedro runs ----------------------------------------------------------------------

    def begin(self, ctx: RunContext) -> TrackedRun | None:
        """Register the (IDLE) context of a new Kedro run; None when that Kedro run is registered
        already (a second hook instance)."""
        key = str(ctx.kedro_run_id)
        with self._lock:
            if key in self._tracked:
                return None
            tracked = self._tracked[key] = TrackedRun(ctx, ctx.config)
            return tracked

    def tracked(self, kedro_run_id: str) -> TrackedRun | None:
        with self._lock:
            return self._tracked.get(str(kedro_run_id))

    def disable(self, kedro_run_id: str, environment: Mapping[str, str]) -> None:
        """Tracking is off for this Kedro run: publish only what datasets with a ``run_id`` need."""
        tracked = self.tracked(kedro_run_id)
        if tracked is None:
            return
        tracked.context.disable()
        store = worker_env.encode(worker_env.STORE, {"tracking_uri": tracked.config.server.tracking_uri,
                                                     "registry_uri": tracked.config.server.registry_uri})
        self.process.publish(tracked.context, {**environment, **store})

    # -- the one road to the end ---------------------------------------------------------

    def finish(self, target: str | RunContext, outcome: Outcome) -> RunContext | None:
        """End a Kedro run (by id) or a context with ``outcome``, and undo what it changed.

        A Kedro run with tracking disabled only gets its environment back. Returns the context,
        or None when there was nothing to end (ended already, or never started here).

        Raises:
            RunStateError: the context is not ACTIVE, or is an OWNED run of another process.
            TrackingError: MLflow could not be told; the state has changed all the same.
        """
        with self._lock:
            if isinstance(target, str):
                tracked = self._tracked.get(target)
                ctx = tracked.context if tracked is not None else None
            else:
                ctx = target
                tracked = self._tracked.get(str(ctx.kedro_run_id))
                if tracked is not None and tracked.context is not ctx:
                    tracked = None
            if ctx is None:
                return None
            if ctx.is_active:
                ctx.check_end(outcome.status)  # raises before anything changed
            if tracked is not None:
                del self._tracked[str(ctx.kedro_run_id)]
            if ctx in self._active:
                self._active.remove(ctx)
        interrupted: BaseException | None = None
        try:
            steps = tracked.before_end if tracked is not None and ctx.is_active and ctx.pid == os.getpid() else []
            killed = outcome.status is RunState.KILLED
            if steps and not killed:
                interrupted = run_end_steps(steps, ctx, outcome)
            if tracked is not None and tracked.recorder is not None:
                tracked.recorder.closed_at = time.time()  # interrupted nodes end when the run was closed
            if ctx.is_active:
                ctx.close(outcome)
            if steps and killed:  # a signal or exit: the true status first (a SIGKILL may follow a
                # SIGTERM), then the rest, briefly
                interrupted = run_end_steps(steps, ctx, outcome, timeout=KILLED_END_STEPS_TIMEOUT_S)
        finally:
            if tracked is not None:
                tracked.release()
            self.process.unpublish(ctx)
        if interrupted is not None:  # Ctrl-C during the end steps: the run is closed, now go on
            raise interrupted
        return ctx

    def succeed(self, kedro_run_id: str) -> RunContext | None:
        """The pipeline of a Kedro run succeeded: run its ``before_success`` steps, then ``finish`` it.

        A step that raises ends the run FAILED (with that error) and the error propagates.
        """
        tracked = self.tracked(kedro_run_id)
        if tracked is not None and tracked.context.is_active:
            try:
                for step in list(tracked.before_success):
                    step(tracked.context)
            except BaseException as exc:
                self.finish(kedro_run_id, Outcome.failed(exc) if isinstance(exc, Exception)
                            else Outcome.killed(f"{type(exc).__name__} while ending the run"))
                raise
        return self.finish(kedro_run_id, Outcome.finished())

    def kill(self, kedro_run_id: str, reason: str) -> RunContext | None:
        """``finish`` a Kedro run KILLED for ``reason`` (a signal, an exception no hook sees), saying so."""
        tracked = self.tracked(kedro_run_id)
        if tracked is not None and tracked.context.is_active:
            logger.warning("%s: ending MLflow run %s of Kedro run %s as KILLED.", reason, tracked.context.run_id,
                           kedro_run_id)
        return self.finish(kedro_run_id, Outcome.killed(reason))

    def close_stale(self, current: str) -> None:
        """End runs a previous Kedro run in this thread left ACTIVE (a BaseException escaped it)."""
        me = threading.get_ident()
        for ctx in self.active(own_process_only=True):
            if ctx.kedro_run_id != current and ctx.thread == me and self.tracked(str(ctx.kedro_run_id)):
                logger.warning("Ending MLflow run %s left open by an interrupted Kedro run.", ctx.run_id)
                self.finish(str(ctx.kedro_run_id), Outcome.killed(
                    "an exception that Kedro's error hooks do not see (KeyboardInterrupt, SystemExit, ...) "
                    "ended the Kedro run"
                ))

    def _after_fork(self) -> None:
        """A forked child (ParallelRunner): locks a parent thread held at the fork would never be released."""
        self._lock = threading.RLock()
        self.process.reinit_after_fork()
        CLIENTS.reinit_after_fork()

    def _at_exit(self) -> None:
        """A run still ACTIVE when the interpreter exits was interrupted. Then the fast exit, when
        nothing written could be lost by it (see ``fast_exit.py``)."""
        interrupted: BaseException | None = None
        for ctx in reversed(self.active(own_process_only=True)):
            try:
                self.finish(ctx, Outcome.killed("the Python process exited while the run was active"))
            except Exception:
                logger.debug("Could not end %r at exit", ctx, exc_info=True)
            except BaseException as exc:  # a Ctrl-C while ending one run: end the others, then go on
                interrupted = interrupted or exc
        logger.debug("Fast exit: %s", fast_exit())
        if interrupted is not None:
            raise interrupted


#: This process's run registry.
REGISTRY: Final = RunRegistry()


def registry() -> RunRegistry:
    """This process's run registry."""
    return REGISTRY
