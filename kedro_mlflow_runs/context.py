"""RunContext: the state machine that owns the MLflow run of one Kedro run.

States and the only transitions allowed::

    IDLE ──start()──> ACTIVE ──end(FINISHED | FAILED | KILLED)──> FINISHED | FAILED | KILLED
      └──disable()──> DISABLED

An ACTIVE context either OWNS its run (it created it, so it ends it with the true status) or
is ATTACHED to a run someone else opened (an orchestrator, a parent process): by default it
leaves that run open for its owner. Any other transition raises :class:`RunStateError` and
leaves the state untouched.

The run's identity travels as a :class:`RunHandle`: small, frozen and picklable, so a worker
thread, a spawned process or another machine can attach with :meth:`RunContext.attach`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .config import MlflowConfig, redact_uri
from .errors import RunStateError, TrackingError
from .params import MAX_TAG_VALUE_LENGTH, split_long_values, to_mlflow_params
from .tracking import (
    StackEntry,
    Tracker,
    check_param_conflicts,
    push_active_run,
    remove_active_run,
)

__all__ = [
    "HANDLE_ENV_VAR",
    "Ownership",
    "RunContext",
    "RunHandle",
    "RunState",
    "active_contexts",
    "current_run_context",
    "store_uris",
]

logger = logging.getLogger(__name__)


class RunState(str, Enum):
    """Where a RunContext is in its life."""

    IDLE = "IDLE"
    ACTIVE = "ACTIVE"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    DISABLED = "DISABLED"

    @property
    def is_terminal(self) -> bool:
        return self not in (RunState.IDLE, RunState.ACTIVE)


class Ownership(str, Enum):
    """Who ends an ACTIVE context's MLflow run."""

    OWNED = "OWNED"
    ATTACHED = "ATTACHED"


_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.IDLE: frozenset({RunState.ACTIVE, RunState.DISABLED}),
    RunState.ACTIVE: frozenset({RunState.FINISHED, RunState.FAILED, RunState.KILLED}),
}
_END_STATES = (RunState.FINISHED, RunState.FAILED, RunState.KILLED)

#: Tag keys this plugin writes.
TAG_KEDRO_RUN_ID = "kedro.run_id"
TAG_ERROR_TYPE = "kedro.error.type"
TAG_ERROR_MESSAGE = "kedro.error.message"
TAG_ERROR_NODE = "kedro.error.node"


@dataclass(frozen=True)
class RunHandle:
    """The identity of an MLflow run: enough for any process to attach to it.

    Attributes:
        run_id: the MLflow run id.
        tracking_uri: where the run lives.
        experiment_id: the run's experiment.
        registry_uri: the model registry, when it differs from the tracking store.
    """

    run_id: str
    tracking_uri: str
    experiment_id: str
    registry_uri: str | None = None
    kedro_run_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"RunHandle(run_id={self.run_id!r}, tracking_uri={redact_uri(self.tracking_uri)!r}, "
            f"experiment_id={self.experiment_id!r}, kedro_run_id={self.kedro_run_id!r})"
        )

    def to_json(self) -> str:
        """The handle as a JSON string (for an environment variable or a message queue)."""
        return json.dumps(
            {
                "run_id": self.run_id,
                "tracking_uri": self.tracking_uri,
                "experiment_id": self.experiment_id,
                "registry_uri": self.registry_uri,
                "kedro_run_id": self.kedro_run_id,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> RunHandle:
        data = json.loads(text)
        return cls(**{k: data.get(k) for k in ("run_id", "tracking_uri", "experiment_id", "registry_uri", "kedro_run_id")})


#: Where a started run publishes its handle, so that child processes (ParallelRunner with
#: ``spawn``, a custom runner's process pool) find the run without being told.
HANDLE_ENV_VAR = "KEDRO_MLFLOW_RUNS_HANDLE"


#: Where a Kedro run with tracking disabled publishes its project's store, for datasets with a
#: ``run_id`` in spawned worker processes (``{"tracking_uri": ..., "registry_uri": ...}``).
STORE_ENV_VAR = "KEDRO_MLFLOW_RUNS_STORE"


def handle_from_env() -> RunHandle | None:
    """The handle a parent process published in ``KEDRO_MLFLOW_RUNS_HANDLE``, if any."""
    text = os.environ.get(HANDLE_ENV_VAR)
    if not text:
        return None
    try:
        return RunHandle.from_json(text)
    except (ValueError, TypeError):
        logger.warning("Ignoring malformed %s environment variable.", HANDLE_ENV_VAR)
        return None


# Contexts that are ACTIVE in this process, in the order they were started. Several can be
# active at once only when sessions run concurrently in different threads.
_active: list[RunContext] = []
_active_lock = threading.RLock()


def active_contexts(*, own_process_only: bool = False) -> list[RunContext]:
    """The RunContexts that are ACTIVE in this process, oldest first.

    Args:
        own_process_only: leave out contexts a forked worker inherited from its parent.
    """
    with _active_lock:
        if own_process_only:
            pid = os.getpid()
            return [c for c in _active if c._pid == pid]
        return list(_active)


_env_attached: dict[tuple[int, str], RunContext] = {}


_project_config = threading.local()
_last_project_config: MlflowConfig | None = None


def remember_project_config(config: MlflowConfig) -> None:
    """Record the config of the Kedro project just loaded (for :func:`store_uris`)."""
    global _last_project_config
    _project_config.value = config
    _last_project_config = config


def store_uris(kedro_run_id: str | None = None) -> tuple[str, str | None]:
    """``(tracking_uri, registry_uri)`` a dataset should use.

    The active run's store; else the store configured for the Kedro project loaded in this
    thread, or else in this process (tracking disabled, a catalog used outside a run, a runner's
    worker thread); else the store a parent process published in ``KEDRO_MLFLOW_RUNS_STORE``
    (tracking disabled, spawned worker); else MLflow's own default (``MLFLOW_TRACKING_URI``, else
    ``sqlite:///mlflow.db``).
    """
    ctx = current_run_context(kedro_run_id)
    if ctx is not None:
        return ctx.handle.tracking_uri, ctx.handle.registry_uri
    config = getattr(_project_config, "value", None) or _last_project_config
    if config is not None:
        return config.tracking_uri, config.registry_uri
    published = os.environ.get(STORE_ENV_VAR)
    if published:
        try:
            store = json.loads(published)
            return str(store["tracking_uri"]), store.get("registry_uri")
        except (ValueError, KeyError, TypeError):
            logger.warning("Ignoring malformed %s environment variable.", STORE_ENV_VAR)
    import mlflow

    return mlflow.get_tracking_uri(), None


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
    with _active_lock:
        candidates = [c for c in _active if kedro_run_id is None or c.kedro_run_id == kedro_run_id]
        if candidates:
            me = threading.get_ident()
            for ctx in reversed(candidates):
                if ctx._thread == me:
                    return ctx
            return candidates[-1]
        if _active and kedro_run_id is None:
            return None
        handle = handle_from_env()
        if handle is None or (kedro_run_id is not None and handle.kedro_run_id != kedro_run_id):
            return None
        key = (os.getpid(), handle.run_id)
        ctx = _env_attached.get(key)
        if ctx is None or not ctx.is_active:
            ctx = RunContext.attach(handle, register=False)
            _env_attached[key] = ctx
        return ctx


# --- publication: which run MLflow's process-wide state points at -----------------------------
# A started context can be *published*: MLflow's global tracking/registry URIs, its handle in
# KEDRO_MLFLOW_RUNS_HANDLE and extra environment variables (HTTP retries, credentials) are set
# for it. Contexts may end in any order (sessions in several threads), so the state is always
# re-derived from the newest publication still active, or from what was there before the first.

_publications: list[RunContext] = []
_baseline_globals: dict[str, Any] | None = None
_baseline_env: dict[str, str | None] = {}


def apply_environment(env: Mapping[str, str | None]) -> None:
    """Set (or, for None, unset) environment variables."""
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _publish(ctx: RunContext) -> None:
    """Add ``ctx`` as the newest publication (its environment applies at once, its run once started)."""
    from .tracking import mlflow_globals

    global _baseline_globals
    with _active_lock:
        if not _publications:
            _baseline_globals = mlflow_globals()
            _baseline_env.clear()
        for name in (HANDLE_ENV_VAR, *ctx._environment):
            _baseline_env.setdefault(name, os.environ.get(name))
        _publications.append(ctx)
        _refresh_publication()


def _unpublish(ctx: RunContext) -> None:
    with _active_lock:
        if ctx in _publications:
            _publications.remove(ctx)
            _refresh_publication()


def _refresh_publication() -> None:
    """Derive MLflow's globals and the environment from the newest publication, or the baseline."""
    from .tracking import set_mlflow_globals

    with _active_lock:
        apply_environment(_baseline_env)
        if _publications:
            newest = _publications[-1]
            env: dict[str, str | None] = dict(newest._environment)
            if newest._handle is not None:
                set_mlflow_globals(newest._handle.tracking_uri, newest._handle.registry_uri)
                env[HANDLE_ENV_VAR] = newest._handle.to_json()
            apply_environment(env)
        elif _baseline_globals is not None:
            g = _baseline_globals
            set_mlflow_globals(g["tracking_uri"], g["registry_uri"], g["env"])


class RunContext:
    """Owns (or attaches to) the MLflow run of one Kedro run.

    Args:
        config: the validated tracking configuration.
        kedro_run_id: the Kedro run (session) id this context belongs to.

    Example:
        >>> ctx = RunContext(build_config({}, project_path="."), kedro_run_id="2024-01-01")
        >>> handle = ctx.start(run_name="train")          # IDLE -> ACTIVE (OWNED)
        >>> ctx.log_params({"params:model": {"C": 1.0}})  # logs model.C
        >>> ctx.end(RunState.FINISHED)                     # ACTIVE -> FINISHED
    """

    def __init__(self, config: MlflowConfig, *, kedro_run_id: str | None = None):
        self.config = config
        self.kedro_run_id = kedro_run_id
        self._state = RunState.IDLE
        self._ownership: Ownership | None = None
        self._handle: RunHandle | None = None
        self._lock = threading.RLock()
        self._stack_entry: StackEntry | None = None  # on the starting thread's MLflow stack
        self._thread: int | None = None
        self._tracker: Tracker | None = None
        self._logged_params: dict[str, str] = {}
        self.error: BaseException | None = None
        self._error_node: str | None = None
        self._pid = os.getpid()
        self._run: Any = None  # the mlflow Run entity, for MLflow's fluent stack
        self._environment: dict[str, str] = {}  # set while published
        self._thread_bindings = threading.local()
        self._entered_bound = False

    # -- read-only views ------------------------------------------------------------------

    @property
    def state(self) -> RunState:
        return self._state

    @property
    def ownership(self) -> Ownership | None:
        """OWNED or ATTACHED once started; None before."""
        return self._ownership

    @property
    def handle(self) -> RunHandle:
        """The picklable identity of the run; raises unless the context has a run."""
        if self._handle is None:
            raise RunStateError(
                f"RunContext for Kedro run {self.kedro_run_id!r} has no MLflow run (state "
                f"{self._state.value}); start it first."
            )
        return self._handle

    @property
    def run_id(self) -> str | None:
        return self._handle.run_id if self._handle else None

    @property
    def is_active(self) -> bool:
        return self._state is RunState.ACTIVE

    @property
    def tracker(self) -> Tracker:
        if self._tracker is None:
            self._tracker = Tracker(self.config.tracking_uri, self.config.registry_uri)
        return self._tracker

    def __repr__(self) -> str:
        own = f" {self._ownership.value}" if self._ownership else ""
        return f"<RunContext {self._state.value}{own} run={self.run_id} kedro_run={self.kedro_run_id}>"

    # -- transitions ----------------------------------------------------------------------

    def _check(self, target: RunState, action: str) -> None:
        if target not in _TRANSITIONS.get(self._state, frozenset()):
            raise RunStateError(
                f"Cannot {action}: RunContext for Kedro run {self.kedro_run_id!r} is "
                f"{self._state.value}{f' (MLflow run {self.run_id})' if self.run_id else ''}, and "
                f"{self._state.value} -> {target.value} is not a valid transition. A RunContext "
                f"is used for one run: create a new one for the next run."
            )

    def disable(self) -> None:
        """IDLE -> DISABLED: tracking is off for this run; no MLflow call is made."""
        with self._lock:
            self._check(RunState.DISABLED, "disable tracking")
            self._state = RunState.DISABLED

    def start(
        self,
        *,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        publish: bool = False,
        environment: Mapping[str, str] | None = None,
    ) -> RunHandle:
        """IDLE -> ACTIVE: attach to the configured run id, or create a new run.

        Args:
            run_name: name of a new run (``tracking.run.name`` wins when set).
            tags: tags to set on the run (new or attached).
            publish: make it this process's run: MLflow's active run in this thread (so
                ``mlflow.log_metric`` in user code lands in it), MLflow's global tracking and
                registry URIs, and its handle in ``KEDRO_MLFLOW_RUNS_HANDLE`` for child
                processes. Undone by :meth:`end`, whatever order contexts end in.
            environment: environment variables to set while published (HTTP retry settings,
                credentials), restored afterwards.

        Raises:
            RunNotFoundError: the run id to attach to does not exist; nothing was started.
            TrackingUnavailableError: the tracking store does not answer.
        """
        with self._lock:
            self._check(RunState.ACTIVE, "start a run")
            cfg = self.config
            if publish:  # before the first request: it may need the credentials or retry settings
                self._environment = dict(environment or {})
                _publish(self)
            try:
                run, ownership = self._open_run(run_name, tags)
            except BaseException:
                if publish:
                    _unpublish(self)
                raise
            self._handle = RunHandle(
                run_id=run.info.run_id,
                tracking_uri=cfg.tracking_uri,
                experiment_id=str(run.info.experiment_id),
                registry_uri=cfg.registry_uri,
                kedro_run_id=self.kedro_run_id,
            )
            self._run = run
            self._ownership = ownership
            self._state = RunState.ACTIVE
            self._thread = threading.get_ident()
            self._pid = os.getpid()
            with _active_lock:
                _active.append(self)
                if publish:
                    _refresh_publication()
                    self._stack_entry = push_active_run(run)
            logger.info(
                "%s MLflow run %s (experiment %s) in %s",
                "Started" if ownership is Ownership.OWNED else "Attached to",
                self._handle.run_id,
                self._handle.experiment_id,
                redact_uri(cfg.tracking_uri),
            )
            return self._handle

    def _open_run(self, run_name: str | None, tags: Mapping[str, str] | None) -> tuple[Any, Ownership]:
        """Attach to the configured run, or create one; no state changes here."""
        cfg = self.config
        tracker = self.tracker
        all_tags = {**cfg.run_tags, **(tags or {})}
        if self.kedro_run_id:
            all_tags.setdefault(TAG_KEDRO_RUN_ID, self.kedro_run_id)
        if cfg.run_id:
            run = tracker.get_run(cfg.run_id, source=cfg.run_id_source)
            ownership = Ownership.ATTACHED
            if all_tags:
                tracker.log_batch(run.info.run_id, tags=_clip_tags(all_tags), what="tag")
            self._logged_params = dict(run.data.params)
        else:
            experiment_id = tracker.ensure_experiment(
                cfg.experiment_name,
                artifact_location=cfg.artifact_location,
                restore_if_deleted=cfg.restore_if_deleted,
            )
            parent = _fluent_parent() if cfg.nested else None
            if parent:
                all_tags["mlflow.parentRunId"] = parent
            run = tracker.create_run(
                experiment_id, run_name=cfg.run_name or run_name, tags=_clip_tags(all_tags)
            )
            ownership = Ownership.OWNED
        return run, ownership

    @classmethod
    def attach(cls, handle: RunHandle, config: MlflowConfig | None = None, *, register: bool = True) -> RunContext:
        """An ACTIVE, ATTACHED context for ``handle``, e.g. in a worker process or thread.

        The worker logs into the run through it; ending it leaves the run open for its owner
        (unless ``config`` says ``attached.end_run``). No MLflow request is made until
        something is logged. While it is active, :func:`current_run_context` in this process
        returns it, so catalog datasets in the worker log into the same run.

        Args:
            handle: the run to attach to, as the owner's :attr:`handle` gave it.
            config: tracking settings (parameter flattening, ...); defaults apply when omitted.
            register: make it visible to :func:`current_run_context` (the default).
        """
        if config is None:
            config = MlflowConfig(
                tracking_uri=handle.tracking_uri,
                registry_uri=handle.registry_uri,
                experiment_name="",
            )
        ctx = cls(config, kedro_run_id=handle.kedro_run_id)
        ctx._handle = handle
        ctx._ownership = Ownership.ATTACHED
        ctx._state = RunState.ACTIVE
        ctx._thread = threading.get_ident()
        if register:
            with _active_lock:
                _active.append(ctx)
        return ctx

    def __enter__(self) -> RunContext:
        """Start an IDLE context, or publish an attached one (see :meth:`start`), and bind the run to this thread.

        Leaving the ``with`` block ends the context with the block's outcome: FINISHED, FAILED
        for an ``Exception``, KILLED for ``KeyboardInterrupt``/``SystemExit``. An ATTACHED
        context leaves the run open for its owner.
        """
        if self._state is RunState.IDLE:
            self.start(publish=True)
        elif self.is_active:  # attached from a handle: point this process's MLflow at the run
            with _active_lock:
                if self not in _publications:
                    _publish(self)
        self._entered_bound = self.bind_thread()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if getattr(self, "_entered_bound", False):
            self._entered_bound = False
            self.unbind_thread()
        if not self.is_active:
            return
        if exc is None:
            self.end(RunState.FINISHED)
        elif isinstance(exc, Exception):
            self.end(RunState.FAILED, exc)
        else:  # KeyboardInterrupt, SystemExit, ...
            self.end(RunState.KILLED, exc)

    def end(self, status: RunState, error: BaseException | None = None) -> None:
        """ACTIVE -> FINISHED | FAILED | KILLED, ending the MLflow run when it is ours.

        An OWNED run is set to ``status``. An ATTACHED run is left open for its owner unless
        ``tracking.run.attached.end_run`` (always end) or ``tracking.run.attached.record_failure``
        (end FAILED/KILLED runs) is set. The error, if any, is recorded as run tags.

        The state changes even when MLflow cannot be told; the :class:`TrackingError` is
        raised afterwards.
        """
        with self._lock:
            if status not in _END_STATES:
                raise RunStateError(
                    f"Cannot end the run of Kedro run {self.kedro_run_id!r} (now {self._state.value}) as "
                    f"{status.value}: use one of {', '.join(s.value for s in _END_STATES)}."
                )
            self._check(status, f"end the run as {status.value}")
            handle = self.handle
            if self._ownership is Ownership.OWNED and os.getpid() != self._pid:
                raise RunStateError(
                    f"MLflow run {handle.run_id} was started by process {self._pid}; this process "
                    f"({os.getpid()}) is a worker and cannot end it. Attach with "
                    f"RunContext.attach(handle) in workers and let the owner end the run."
                )
            self._state = status
            if error is not None and self.error is None:
                self.error = error
            with _active_lock:
                if self in _active:
                    _active.remove(self)
            problems: list[BaseException] = []
            try:
                if self.error is not None and status is not RunState.FINISHED:
                    self.tracker.log_batch(
                        handle.run_id, tags=error_tags(self.error, self._error_node), what="record the error of"
                    )
            except Exception as exc:
                problems.append(exc)
            finally:
                terminate = self._ownership is Ownership.OWNED or self.config.attached_end_run or (
                    status is not RunState.FINISHED and self.config.attached_record_failure
                )
                try:
                    if terminate:
                        self.tracker.set_terminated(handle.run_id, status.value)
                except Exception as exc:
                    problems.append(exc)
                finally:
                    self._unpublish()
            if terminate:
                logger.info("Ended MLflow run %s as %s", handle.run_id, status.value)
            else:
                logger.info(
                    "Kedro run %s; left MLflow run %s open for its owner (attached run).",
                    status.value.lower(),
                    handle.run_id,
                )
            if problems:
                first = problems[0]
                if isinstance(first, TrackingError):
                    raise first
                raise TrackingError(f"Could not end MLflow run {handle.run_id}: {first}") from first

    def _unpublish(self) -> None:
        try:
            remove_active_run(self._stack_entry)
        finally:
            self._stack_entry = None
            _unpublish(self)

    # -- threads ----------------------------------------------------------------------------

    def bind_thread(self) -> bool:
        """Make the run MLflow's active run in the calling thread (e.g. a runner's worker).

        MLflow's active-run stack is thread-local and reset in forked processes, so node code
        calling ``mlflow.log_metric`` in a worker would otherwise create a stray run. Returns
        False when the run already is the thread's active run. Undo with :meth:`unbind_thread`.
        """
        handle = self._require_active("bind a thread")
        if self._run is None:  # attached from a handle: no request needed to name the run
            from .tracking import run_entity

            self._run = run_entity(handle.run_id, handle.experiment_id)
        from .tracking import fluent_active_run_id

        if fluent_active_run_id() == handle.run_id:
            return False
        binding = push_active_run(self._run)
        stack = getattr(self._thread_bindings, "stack", None)
        if stack is None:
            stack = self._thread_bindings.stack = []
        stack.append(binding)
        return True

    def unbind_thread(self) -> None:
        """Undo the latest :meth:`bind_thread` of the calling thread."""
        stack = getattr(self._thread_bindings, "stack", None)
        if stack:
            remove_active_run(stack.pop())

    # -- logging --------------------------------------------------------------------------

    def _require_active(self, what: str) -> RunHandle:
        if self._state is not RunState.ACTIVE:
            raise RunStateError(
                f"Cannot {what}: RunContext for Kedro run {self.kedro_run_id!r} is "
                f"{self._state.value}, not ACTIVE."
            )
        return self.handle

    def log_params(self, kedro_params: Mapping[str, Any]) -> dict[str, str]:
        """Log Kedro parameter inputs (``{"params:x": value, "parameters": {...}}``) in batches.

        Dicts are flattened as configured; a value logged before with the same value is
        skipped, a different value is a :class:`ParameterError` naming the key.

        Returns:
            The MLflow params sent in this call.
        """
        handle = self._require_active("log parameters")
        cfg = self.config
        flat = to_mlflow_params(
            kedro_params,
            flatten_dicts=cfg.flatten_dict_params,
            recursive=cfg.recursive_dict_params,
            sep=cfg.dict_params_sep,
        )
        params, as_tags = split_long_values(flat, cfg.long_params_strategy)
        with self._lock:
            params = check_param_conflicts(handle.run_id, params, self._logged_params)
            if not params and not as_tags:
                return {}
            self.tracker.log_batch(handle.run_id, params=params, tags=as_tags, what="log parameters to")
            self._logged_params.update(params)
        return params

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        handle = self._require_active("set tags")
        self.tracker.log_batch(handle.run_id, tags=_clip_tags(tags), what="set tags on")

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log ``{key: value}`` metrics at ``step`` in batches."""
        handle = self._require_active("log metrics")
        now = int(time.time() * 1000)
        self.tracker.log_batch(
            handle.run_id, metrics=[(k, v, now, step) for k, v in metrics.items()], what="log metrics to"
        )

    def record_error(self, error: BaseException, node_name: str | None = None) -> None:
        """Remember the first error of the run (and its node); it is written when the run ends."""
        with self._lock:
            if self.error is None:
                self.error = error
                self._error_node = node_name

    # -- used by the hooks' safety nets ---------------------------------------------------

    @property
    def started_in_thread(self) -> int | None:
        return self._thread


def _clip_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v)[:MAX_TAG_VALUE_LENGTH] for k, v in tags.items()}


def error_tags(error: BaseException, node_name: str | None = None) -> dict[str, str]:
    """The tags recording ``error`` (and the node it came from) on a run."""
    kind = f"{type(error).__module__}.{type(error).__qualname__}".removeprefix("builtins.")
    tags = {TAG_ERROR_TYPE: kind, TAG_ERROR_MESSAGE: str(error) or repr(error)}
    if node_name:
        tags[TAG_ERROR_NODE] = node_name
    return _clip_tags(tags)


def _fluent_parent() -> str | None:
    """The id of MLflow's active run in this thread, when user code started one."""
    try:
        from mlflow.tracking import fluent

        stack = fluent._active_run_stack.get()
        return stack[-1].info.run_id if stack else None
    except Exception:
        return None
