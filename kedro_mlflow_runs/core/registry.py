"""The run registry: the one object per process that knows every run, and the one road to the end.

:class:`RunRegistry` maps each Kedro run id to what that run holds (its :class:`RunContext`, its
signal guard, its config), keeps the list of contexts ACTIVE in this process (custom runners'
and workers' included), and owns the :class:`ProcessState`. Any number of hook instances share it.

Every way a run ends (Kedro's hooks, the signal guard, the runner guard, atexit, stale-run
cleanup, ``RunContext.end`` and the ``with`` block) calls :meth:`RunRegistry.finish` with an
:class:`Outcome`; nothing else moves a context to a terminal state.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..handle import STORE_ENV_VAR, Outcome, RunState, handle_from_env
from .process import ProcessState

if TYPE_CHECKING:  # pragma: no cover
    from ..framework.signals import SignalGuard
    from ..config import MlflowConfig
    from .context import RunContext

__all__ = ["RunRegistry", "TrackedRun", "active_contexts", "current_run_context", "registry"]

logger = logging.getLogger(__name__)

class TrackedRun:
    """What one Kedro run holds while it is in progress in this process."""

    __slots__ = ("before_end", "before_success", "cleanups", "config", "context", "guard", "recorder")

    def __init__(self, context: RunContext, config: MlflowConfig) -> None:
        self.context = context
        self.config = config
        self.guard: SignalGuard | None = None
        self.cleanups: list[Callable[[], None]] = []  # the runner's own run method, autologging off, ...
        #: called with the context, oldest first, when the pipeline succeeded and before the run ends
        #: FINISHED (pipeline models, timeline, lineage); one that raises ends the run FAILED.
        self.before_success: list[Callable[[RunContext], None]] = []
        #: called with the context and the outcome, oldest first, by ``finish`` for ANY outcome, in the
        #: process that runs the Kedro run, before the run ends (system metrics stopped, timeline and
        #: lineage written). Bounded in time; a step that fails is logged and never changes the status.
        self.before_end: list[Callable[[RunContext, Outcome], None]] = []
        #: what the run records about itself (node timeline, lineage): see ``_recorder.py``
        self.recorder: Any = None

    def release(self) -> None:
        """Put back the signal handlers, then undo the cleanups, newest first."""
        try:
            if self.guard is not None:
                self.guard.restore()
        finally:
            for cleanup in reversed(self.cleanups):
                try:
                    cleanup()
                except Exception:  # one failing cleanup must not keep the others from running
                    logger.debug("A cleanup of Kedro run %s failed", self.context.kedro_run_id, exc_info=True)


class RunRegistry:
    """Every run of this process, under one lock (see the module docstring)."""

    __slots__ = ("_active", "_atexit", "_env_attached", "_firsts", "_last_config", "_lock", "_pending",
                 "_thread_config", "_tracked", "_worker_recorders", "process")

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.process = ProcessState()
        self._tracked: dict[str, TrackedRun] = {}
        self._active: list[RunContext] = []
        self._env_attached: dict[tuple[int, str], RunContext] = {}
        self._pending = threading.local()
        self._thread_config = threading.local()
        self._last_config: tuple[MlflowConfig, dict[str, str]] | None = None  # (config, its credentials)
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
        """The context a dataset or user code of this thread should use (see ``current_run_context``)."""
        with self._lock:
            candidates = [c for c in self._active if kedro_run_id is None or c.kedro_run_id == kedro_run_id]
            if candidates:
                me = threading.get_ident()
                return next((c for c in reversed(candidates) if c.thread == me), candidates[-1])
            if self._active and kedro_run_id is None:
                return None
            handle = handle_from_env()
            if handle is None or (kedro_run_id is not None and handle.kedro_run_id != kedro_run_id):
                return None
            key = (os.getpid(), handle.run_id)
            ctx = self._env_attached.get(key)
            if ctx is None or not ctx.is_active:
                from ..framework.header_provider import worker_install
                from .context import RunContext

                worker_install()  # a spawned worker: the run's header provider, before any request

                ctx = self._env_attached[key] = RunContext.attach(handle, register=False)
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
        with self._lock:
            if ctx not in self._active:
                self._active.append(ctx)
            if not self._atexit:  # after MLflow's own atexit handler (imported by now): ours runs first
                atexit.register(self._at_exit)
                if hasattr(os, "register_at_fork"):
                    os.register_at_fork(after_in_child=self._after_fork)
                self._atexit = True

    # -- Kedro runs ----------------------------------------------------------------------

    def begin(self, kedro_run_id: str, config: MlflowConfig) -> RunContext | None:
        """Register a new Kedro run; None when it is registered already (a second hook instance)."""
        from .context import RunContext

        with self._lock:
            if kedro_run_id in self._tracked:
                return None
            ctx = RunContext(config, kedro_run_id=kedro_run_id)
            self._tracked[kedro_run_id] = TrackedRun(ctx, config)
            return ctx

    def tracked(self, kedro_run_id: str) -> TrackedRun | None:
        with self._lock:
            return self._tracked.get(str(kedro_run_id))

    def disable(self, kedro_run_id: str, environment: Mapping[str, str]) -> None:
        """Tracking is off for this Kedro run: publish only what datasets with a ``run_id`` need."""
        tracked = self.tracked(kedro_run_id)
        if tracked is None:
            return
        tracked.context.disable()
        store = json.dumps({"tracking_uri": tracked.config.tracking_uri, "registry_uri": tracked.config.registry_uri})
        self.process.publish(tracked.context, {**environment, STORE_ENV_VAR: store})

    def context_for(self, kedro_run_id: str) -> RunContext | None:
        """The ACTIVE context of a Kedro run, in the session process or in a runner's worker."""
        tracked = self.tracked(kedro_run_id)
        ctx = tracked.context if tracked is not None else self.current(str(kedro_run_id))
        return ctx if ctx is not None and ctx.is_active else None

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
                from .end_steps import run_end_steps

                interrupted = run_end_steps(steps, ctx, outcome)
            if tracked is not None and tracked.recorder is not None:
                tracked.recorder.closed_at = time.time()  # interrupted nodes end when the run was closed
            if ctx.is_active:
                ctx.close(outcome)
            if steps and killed:  # a signal or exit: the true status first (a SIGKILL may follow a
                from .end_steps import KILLED_END_STEPS_TIMEOUT_S, run_end_steps  # SIGTERM), then the rest, briefly

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
        from ..tracking._store import CLIENTS

        self._lock = threading.RLock()
        self.process.reinit_after_fork()
        CLIENTS.reinit_after_fork()

    def _at_exit(self) -> None:
        """A run still ACTIVE when the interpreter exits was interrupted. Then the fast exit, when
        nothing written could be lost by it (see ``_fast_exit.py``)."""
        interrupted: BaseException | None = None
        for ctx in reversed(self.active(own_process_only=True)):
            try:
                self.finish(ctx, Outcome.killed("the Python process exited while the run was active"))
            except Exception:
                logger.debug("Could not end %r at exit", ctx, exc_info=True)
            except BaseException as exc:  # a Ctrl-C while ending one run: end the others, then go on
                interrupted = interrupted or exc
        from .fast_exit import fast_exit

        logger.debug("Fast exit: %s", fast_exit())
        if interrupted is not None:
            raise interrupted

    # -- the project's config, from after_context_created to before_pipeline_run ----------

    def remember_config(self, context: Any, config: MlflowConfig, credentials: Mapping[str, str]) -> None:
        self._pending.value = (context, config, dict(credentials))
        self._thread_config.value = (config, {**config.uri_credentials, **credentials})
        self._last_config = self._thread_config.value

    def pending_config(self, context: Any = None) -> tuple[MlflowConfig, dict[str, str]] | None:
        """The config after_context_created loaded in this thread (for ``context`` when given)."""
        cached = getattr(self._pending, "value", None)
        if cached is None or (context is not None and cached[0] is not context):
            return None
        return cached[1], cached[2]

    def take_pending_config(self) -> tuple[Any, MlflowConfig, dict[str, str]] | None:
        """``(kedro_context, config, credentials)`` after_context_created left for this thread, once."""
        found = getattr(self._pending, "value", None)
        self._pending.value = None
        return found

    def store(self, kedro_run_id: str | None = None) -> tuple[str, str | None, dict[str, str]]:
        """``(tracking_uri, registry_uri, credentials)`` a dataset should use.

        The active run's store (its credentials are published already); else the store configured
        for the Kedro project loaded in this thread, or else in this process, with the credentials a
        run would publish (for calls outside a run); else the store a parent process published in
        ``KEDRO_MLFLOW_RUNS_STORE`` (tracking disabled, spawned worker); else MLflow's own default.
        """
        ctx = self.current(kedro_run_id)
        if ctx is not None:
            return ctx.handle.tracking_uri, ctx.handle.registry_uri, {}
        remembered = getattr(self._thread_config, "value", None) or self._last_config
        if remembered is not None:
            return remembered[0].tracking_uri, remembered[0].registry_uri, dict(remembered[1])
        published = os.environ.get(STORE_ENV_VAR)
        if published:
            try:
                store = json.loads(published)
                return str(store["tracking_uri"]), store.get("registry_uri"), {}
            except (ValueError, KeyError, TypeError):
                logger.warning("Ignoring malformed %s environment variable.", STORE_ENV_VAR)
        import mlflow

        return mlflow.get_tracking_uri(), None, {}

    def forget_config(self) -> None:
        """Forget the project config remembered for this thread and process (tests, notebooks)."""
        self._thread_config.value = None
        self._last_config = None
        self._pending.value = None


_REGISTRY = RunRegistry()


def registry() -> RunRegistry:
    """This process's run registry."""
    return _REGISTRY


def current_run_context(kedro_run_id: str | None = None) -> RunContext | None:
    """The RunContext of the Kedro run in progress, or None when no run is active.

    Args:
        kedro_run_id: the Kedro run asking (datasets know theirs): only its context answers.
            Without it, when runs are active in several threads, the one started in the calling
            thread wins, else the most recent one.

    In a worker process that has no context of its own (spawned by ParallelRunner or a custom
    runner), this is an ATTACHED context for the handle its parent published in
    ``KEDRO_MLFLOW_RUNS_HANDLE``.
    """
    return _REGISTRY.current(kedro_run_id)


def active_contexts(*, own_process_only: bool = False) -> list[RunContext]:
    """The RunContexts that are ACTIVE in this process, oldest first."""
    return _REGISTRY.active(own_process_only=own_process_only)
