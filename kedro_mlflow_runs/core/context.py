"""RunContext: the state machine that owns the MLflow run of one Kedro run.

States and the only transitions allowed (``owner.TRANSITIONS``)::

    IDLE ──start() / attach()──> ACTIVE ──end(FINISHED | FAILED | KILLED)──> FINISHED | FAILED | KILLED
      └──disable()──> DISABLED

An ACTIVE context either OWNS its run (it created it, so it ends it with the true status) or is
ATTACHED to a run someone else opened (an orchestrator, a parent process): by default it leaves
that run open for its owner. Any other transition raises :class:`RunStateError` and changes
nothing. Ending always goes through its owner's ``finish`` (the process's :class:`RunRegistry`
unless another owner is given): the one road to the end.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from .._redact import redact_uri
from ..config import MlflowConfig
from ..errors import RunStateError
from ..handle import Outcome, Ownership, RunHandle, RunState
from ..tracking import Tracker, run_entity
from .mlflow_run import close_run, open_run
from .owner import RunOwner, check_end_status, check_transition
from .pending_io import PendingIO
from .registry import REGISTRY
from .run_logs import RunLogs
from .tags import error_tags

__all__ = ["RunContext", "RunOwner"]

logger = logging.getLogger(__name__)

class RunContext(RunLogs):
    """Owns (or attaches to) the MLflow run of one Kedro run.

    ``start()`` ... ``end(status)`` and ``with RunContext(config):`` are the same thing: both
    publish the run (MLflow's active run in this thread, MLflow's global URIs, the handle for
    child processes) and undo it at the end; ``start(publish=False)`` skips the publication.

    Example:
        >>> ctx = RunContext(build_config({}, project_path="."), kedro_run_id="2024-01-01")
        >>> handle = ctx.start(run_name="train")          # IDLE -> ACTIVE (OWNED)
        >>> ctx.log_params({"params:model": {"C": 1.0}})  # logs model.C
        >>> ctx.end(RunState.FINISHED)                     # ACTIVE -> FINISHED
    """

    def __init__(self, config: MlflowConfig, *, kedro_run_id: str | None = None, owner: RunOwner | None = None):
        self.config = config
        self.owner: RunOwner = REGISTRY if owner is None else owner
        self.kedro_run_id = kedro_run_id
        self.error: BaseException | None = None
        self.pid = os.getpid()
        self.thread: int | None = None
        self._state = RunState.IDLE
        self._ownership: Ownership | None = None
        self._handle: RunHandle | None = None
        self._run: Any = None  # the mlflow Run entity, for MLflow's fluent stack
        self._lock = threading.RLock()
        self._logged_params: dict[str, str] = {}
        self._error_node: str | None = None
        self._entered: list[bool] = []
        self.inherited = False  # attached from the handle a parent process published
        self.pending_io = PendingIO()  # the loads and saves in progress in this process
        #: the run's status when another process ended it while this one still writes into it
        #: (an attached step whose run was closed): its datasets refuse to write, the step fails
        self.ended_elsewhere: str | None = None

    @property
    def in_worker(self) -> bool:
        """Whether this process only inherited the context (a runner's forked or spawned worker):
        the process that owns the run may end it while this one still runs."""
        return self.inherited or self.pid != os.getpid()

    # -- read-only views ------------------------------------------------------------------

    state = property(lambda self: self._state, doc="Where the context is in its life.")
    ownership = property(lambda self: self._ownership, doc="OWNED or ATTACHED once started; None before.")
    run_id = property(lambda self: self._handle.run_id if self._handle else None, doc="The MLflow run id.")
    is_active = property(lambda self: self._state is RunState.ACTIVE, doc="Whether the state is ACTIVE.")

    @property
    def handle(self) -> RunHandle:
        """The picklable identity of the run; raises unless the context has a run."""
        if self._handle is None:
            raise RunStateError(
                f"RunContext for Kedro run {self.kedro_run_id!r} has no MLflow run (state "
                f"{self._state.value}); start it first.", run_id=None
            )
        return self._handle

    @property
    def opened_tags(self) -> dict[str, str]:
        """The tags the run had when this context started (or attached to) it."""
        return dict(self._run.data.tags) if self._run is not None and hasattr(self._run, "data") else {}

    @property
    def tracker(self) -> Tracker:
        handle = self._handle
        if handle is not None:
            return Tracker(handle.tracking_uri, handle.registry_uri)
        return Tracker(self.config.server.tracking_uri, self.config.server.registry_uri)

    def __repr__(self) -> str:
        own = f" {self._ownership.value}" if self._ownership else ""
        return f"<RunContext {self._state.value}{own} run={self.run_id} kedro_run={self.kedro_run_id}>"

    # -- transitions ----------------------------------------------------------------------

    def _check(self, target: RunState, action: str) -> None:
        check_transition(self._state, target, action, kedro_run_id=self.kedro_run_id, run_id=self.run_id)

    def _activate(self, handle: RunHandle, run: Any, ownership: Ownership) -> None:
        self._check(RunState.ACTIVE, "start a run")
        self._handle, self._run, self._ownership = handle, run, ownership
        self._state = RunState.ACTIVE
        self.thread, self.pid = threading.get_ident(), os.getpid()

    def disable(self) -> None:
        """IDLE -> DISABLED: tracking is off for this Kedro run; nothing is sent to MLflow."""
        with self._lock:
            self._check(RunState.DISABLED, "disable tracking")
            self._state = RunState.DISABLED

    def start(
        self,
        *,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        publish: bool = True,
        environment: Mapping[str, str] | None = None,
        attempt_id: str | None = None,
    ) -> RunHandle:
        """IDLE -> ACTIVE: attach to the configured run id, or create a new run.

        Args:
            run_name: name of a new run (``tracking.run.name`` wins when set).
            tags: tags to set on the run (new or attached).
            publish: make it this process's run until it ends: MLflow's active run in this thread
                (so ``mlflow.log_metric`` in user code lands in it), MLflow's global tracking and
                registry URIs, and its handle in ``KEDRO_MLFLOW_RUNS_HANDLE`` for child processes.
            environment: environment variables to set while published (HTTP retry settings,
                credentials), restored afterwards.
            attempt_id: the attempt this Kedro run is of the run it attaches to (``core/attempts.py``).

        Raises:
            RunNotFoundError: the run id to attach to does not exist; nothing was started.
            TrackingUnavailableError: the tracking store does not answer.
        """
        process = self.owner.process
        with self._lock:
            self._check(RunState.ACTIVE, "start a run")
            if publish:  # before the first request: it may need the credentials or retry settings
                process.publish(self, {**self.config.server.uri_credentials, **(environment or {})})
            try:
                run, ownership, self._logged_params = open_run(self, run_name, tags)
                handle = RunHandle(run.info.run_id, self.config.server.tracking_uri, str(run.info.experiment_id),
                                   self.config.server.registry_uri, self.kedro_run_id, attempt_id)
                self._activate(handle, run, ownership)
            except BaseException:
                process.unpublish(self)
                raise
            self.owner.activated(self)
            if publish:
                process.publish_run(self, handle, run)
        logger.info("%s MLflow run %s (experiment %s) in %s",
                    "Started" if ownership is Ownership.OWNED else "Attached to",
                    handle.run_id, handle.experiment_id, redact_uri(handle.tracking_uri))
        return handle

    @classmethod
    def attach(cls, handle: RunHandle, config: MlflowConfig | None = None, *, register: bool = True,
               owner: RunOwner | None = None) -> RunContext:
        """IDLE -> ACTIVE (ATTACHED) for ``handle``, e.g. in a worker process or thread.

        The worker logs into the run through it; ending it leaves the run open for its owner
        (unless ``config`` says ``attached.end_run``). No MLflow request is made until something is
        logged. While it is active, :func:`current_run_context` in this process returns it (unless
        ``register=False``), so catalog datasets in the worker log into the same run.
        """
        if config is None:
            config = MlflowConfig.for_store(handle.tracking_uri, handle.registry_uri)
        ctx = cls(config, kedro_run_id=handle.kedro_run_id, owner=owner)
        ctx._activate(handle, None, Ownership.ATTACHED)
        ctx.inherited = not register  # found through the handle a parent process published
        if register:
            ctx.owner.activated(ctx)
        return ctx

    def check_end(self, status: RunState) -> None:
        """Raise :class:`RunStateError` unless this context may end as ``status`` here and now."""
        check_end_status(self._state, status, kedro_run_id=self.kedro_run_id, run_id=self.run_id)
        self._check(status, f"end the run as {status.value}")
        if self._ownership is Ownership.OWNED and os.getpid() != self.pid:
            raise RunStateError(
                f"MLflow run {self.run_id} was started by process {self.pid}; this process "
                f"({os.getpid()}) is a worker and cannot end it. Attach with RunContext.attach(handle) "
                f"in workers and let the owner end the run.", run_id=self.run_id
            )

    def end(self, status: RunState, error: BaseException | None = None) -> None:
        """ACTIVE -> FINISHED | FAILED | KILLED, ending the MLflow run when it is ours.

        An OWNED run is set to ``status``. An ATTACHED run is left open for its owner unless
        ``tracking.run.attached.end_run`` (always end) or ``tracking.run.attached.record_failure``
        (end FAILED/KILLED runs) is set. The error, if any, is recorded as run tags. The state
        changes even when MLflow cannot be told; the :class:`TrackingError` is raised afterwards.
        """
        self.check_end(status)
        self.owner.finish(self, Outcome(status, error))

    def close(self, outcome: Outcome) -> None:
        """The terminal transition; only ``RunRegistry.finish`` calls it (use :meth:`end`)."""
        with self._lock:
            self.check_end(outcome.status)
            self._state = outcome.status
            if outcome.error is not None and self.error is None:
                self.error, self._error_node = outcome.error, outcome.node
            tags = None
            if self.error is not None:
                dataset, node = self.pending_io.failed(self.error) if self._error_node is None else (None, None)
                tags = error_tags(self.error, self._error_node or node, dataset=dataset,
                                  attempt=self._handle.attempt_id if self._handle else None)
            close_run(self, outcome.status, tags)

    def __enter__(self) -> RunContext:
        """Start an IDLE context, or publish an attached one, and bind the run to this thread.

        Leaving the block ends the context with the block's outcome: FINISHED, FAILED for an
        ``Exception``, KILLED for ``KeyboardInterrupt``/``SystemExit``. An ATTACHED context leaves
        the run open for its owner.
        """
        if self._state is RunState.IDLE:
            self.start(publish=True)
            self._entered.append(False)
        else:
            if self.is_active:
                self.publish()
            self.bind_thread()
            self._entered.append(True)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._entered and self._entered.pop():
            self.unbind_thread()
        if self.is_active:
            self.owner.finish(self, Outcome.of_exception(exc))

    def publish(self) -> None:
        """Make an ACTIVE context this process's run, as ``start()`` does, without binding a thread:
        MLflow's global URIs and ``KEDRO_MLFLOW_RUNS_HANDLE`` point at it until it ends (a no-op
        when it is published already). For a context attached in a worker (a Dask worker)."""
        self._require_active("publish the run")
        process = self.owner.process
        if not process.is_published(self):
            process.publish_run(self, self.handle, self._entity(), activate=False)

    # -- threads ----------------------------------------------------------------------------

    def _entity(self) -> Any:
        if self._run is None:  # attached from a handle: no request needed to name the run
            self._run = run_entity(self.handle.run_id, self.handle.experiment_id)
        return self._run

    def bind_thread(self) -> None:
        """Make the run MLflow's active run in the calling thread (e.g. a runner's worker).

        MLflow's active-run stack is thread-local and reset in forked processes, so node code
        calling ``mlflow.log_metric`` in a worker would otherwise create a stray run. Calls nest;
        undo each with :meth:`unbind_thread`.
        """
        self._require_active("bind a thread")
        self.owner.process.bind(self._entity, self.handle.tracking_uri)

    def unbind_thread(self) -> None:
        """Undo the calling thread's latest :meth:`bind_thread`."""
        self.owner.process.unbind()

    # -- logging (the calls themselves: ``run_logs.py``) ---------------------------------------

    def _require_active(self, what: str) -> RunHandle:
        if self._state is not RunState.ACTIVE:
            raise RunStateError(
                f"Cannot {what}: RunContext for Kedro run {self.kedro_run_id!r} is "
                f"{self._state.value}, not ACTIVE.", run_id=self.run_id
            )
        return self.handle

    def record_error(self, error: BaseException, node_name: str | None = None) -> None:
        """Remember the first error of the run (and its node); it is written when the run ends."""
        with self._lock:
            if self.error is None:
                self.error, self._error_node = error, node_name

