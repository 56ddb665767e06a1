"""Kedro hooks: translate Kedro's hook calls into RunContext transitions.

Registered automatically through the ``kedro.hooks`` entry point (``plugin_hooks``). To
register by hand instead, put ``DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow-runs",)`` and
``HOOKS = (MlflowRunsHooks(),)`` in ``settings.py``. Registering a second instance while the
plugin's own is active is harmless: all instances share one RunContext per Kedro run.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Any

from kedro.framework.hooks import hook_impl

from . import __version__
from ._signals import SignalGuard
from .config import MlflowConfig, build_config, credentials_env, load_config, redact_uri
from .context import (
    STORE_ENV_VAR,
    RunContext,
    error_tags,
    RunState,
    active_contexts,
    apply_environment,
    current_run_context,
    remember_project_config,
)
from .errors import RunInterruptedError
from .params import parameter_inputs

logger = logging.getLogger(__name__)
_package_logger = logging.getLogger("kedro_mlflow_runs")
if _package_logger.level == logging.NOTSET:  # show where the run is, like Kedro's own INFO lines
    _package_logger.setLevel(logging.INFO)

# State shared by every hook instance, so that two registered instances act as one.
_by_kedro_run: dict[str, RunContext] = {}
_guards: dict[str, SignalGuard] = {}
_disabled_env: dict[str, dict[str, str | None]] = {}  # environment set for runs with tracking disabled
_registry_lock = threading.RLock()
_pending = threading.local()  # (context, config, credentials) loaded by after_context_created in this thread
_atexit_registered = False


def _runner_name(run_params: Mapping[str, Any]) -> str:
    runner = str(run_params.get("runner") or "")
    match = re.search(r"([A-Za-z_][\w]*)(?: object at 0x[0-9a-fA-F]+)?>?$", runner)
    if not runner or runner == "None" or not match:
        return "SequentialRunner"
    return match.group(1)


def _command_line() -> str | None:
    try:
        import click

        ctx = click.get_current_context(silent=True)
    except Exception:  # pragma: no cover
        ctx = None
    return " ".join(["kedro", *sys.argv[1:]]) if ctx is not None else None


def run_tags(run_params: Mapping[str, Any], config: MlflowConfig) -> dict[str, str]:
    """The tags every run gets (user tags from mlflow.yml are added by the RunContext)."""
    from .tracking import current_user, git_commit

    names = run_params.get("pipeline_names") or ["__default__"]
    tags = {
        "kedro.run_id": str(run_params.get("run_id")),
        "kedro.pipeline_names": ",".join(names),
        "kedro.env": str(run_params.get("env") or "local"),
        "kedro.version": str(run_params.get("kedro_version")),
        "kedro_mlflow_runs.version": __version__,
        "kedro.runner": _runner_name(run_params),
        "mlflow.source.name": "kedro run",
        "mlflow.source.type": "LOCAL",
    }
    command = _command_line()
    if command:
        tags["kedro.command"] = command
    user = current_user()
    if user:
        tags["mlflow.user"] = user
    commit = git_commit(run_params.get("project_path") or config.project_path or ".")
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def _set_env(values: Mapping[str, str]) -> dict[str, str | None]:
    """Set environment variables; return what to put back (None: unset)."""
    previous = {name: os.environ.get(name) for name in values}
    apply_environment(values)
    return previous


def _where(ctx: RunContext) -> str:
    handle = ctx.handle
    uri = handle.tracking_uri
    if uri.startswith(("http://", "https://")):
        base = redact_uri(uri).rstrip("/")
        return f"{base}/#/experiments/{handle.experiment_id}/runs/{handle.run_id}"
    return f"{redact_uri(uri)} (open it with: mlflow ui --backend-store-uri {redact_uri(uri)})"


def _kill_all_active() -> None:
    """atexit safety net: a run still ACTIVE when the interpreter exits was interrupted."""
    for ctx in active_contexts(own_process_only=True):
        try:
            ctx.end(RunState.KILLED, RunInterruptedError("the Python process exited while the run was active"))
        except Exception:
            logger.debug("Could not end %r at exit", ctx, exc_info=True)


def _ensure_atexit() -> None:
    # Registered after MLflow's own atexit handler (mlflow is imported by then), so ours runs
    # first: MLflow's would otherwise end our run as FINISHED.
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_kill_all_active)
        _atexit_registered = True


_node_bindings = threading.local()


def _bindings() -> list[bool]:
    """Per thread: whether each pending before_node_run bound the run (duplicate hooks push twice)."""
    stack = getattr(_node_bindings, "stack", None)
    if stack is None:
        stack = _node_bindings.stack = []
    return stack


def _context_for(kedro_run_id: str) -> RunContext | None:
    """The active context of a Kedro run, in the session process or in a runner's worker."""
    ctx = _by_kedro_run.get(str(kedro_run_id))
    if ctx is None:  # a spawned worker: the parent published the run's handle
        ctx = current_run_context()
        if ctx is not None and ctx.kedro_run_id != str(kedro_run_id):
            ctx = None
    return ctx if ctx is not None and ctx.is_active else None


def _end_interrupted(kedro_run_id: str, exc: BaseException) -> None:
    ctx = MlflowRunsHooks._ending({"run_id": kedro_run_id})  # also forgets a disabled run's environment
    if ctx is not None:
        logger.warning("%s ended Kedro run %s: ending MLflow run %s as KILLED.", type(exc).__name__,
                       kedro_run_id, ctx.run_id)
        MlflowRunsHooks._finish(ctx, RunState.KILLED, RunInterruptedError(f"{type(exc).__name__} ended the Kedro run"))


def _guard_session_run() -> None:
    """Make ``KedroSession.run`` end its run KILLED when a non-``Exception`` escapes it.

    ``SystemExit`` or a ``KeyboardInterrupt`` raised by node code (not by a signal: the signal
    guard handles those) reaches no Kedro hook. Without this, an in-process session (a notebook,
    a worker that runs sessions) would leave the run RUNNING and published until the next
    session in the thread or the end of the process. Installed once, when the hooks load.
    """
    try:
        from kedro.framework.session.session import KedroSession
    except ImportError:  # pragma: no cover
        return
    original = KedroSession.run
    if getattr(original, "_kedro_mlflow_runs_guard", False):
        return

    @functools.wraps(original)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                try:
                    _end_interrupted(str(self.session_id), exc)
                except Exception:  # keep the original exception in front
                    logger.exception("Could not end the MLflow run of Kedro run %s", self.session_id)
            raise

    run._kedro_mlflow_runs_guard = True  # type: ignore[attr-defined]
    KedroSession.run = run  # type: ignore[method-assign]


class MlflowRunsHooks:
    """Opens, attaches, and closes the MLflow run of each ``kedro run``."""

    # -- context ------------------------------------------------------------------------

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Read and validate mlflow.yml and the ``server.credentials`` entry it names."""
        cached = getattr(_pending, "value", None)
        if cached is not None and cached[0] is context:
            return
        config = load_config(context)
        credentials = credentials_env(config, context)
        remember_project_config(config)
        _pending.value = (context, config, credentials)

    @hook_impl
    def after_catalog_created(self, catalog: Any, conf_catalog: dict[str, Any]) -> None:
        """Tell this plugin's datasets their catalog entry names as soon as the catalog exists.

        So ``session.load_context().catalog`` in a notebook loads ``my_model`` under the same
        default name ``kedro run`` logged it with. Only entries whose type is one of ours are
        touched (no other dataset is built early).
        """
        from .io._naming import name_datasets  # no mlflow import

        ours = [name for name, entry in (conf_catalog or {}).items()
                if "{" not in name and "kedro_mlflow_runs" in repr(entry)]
        if ours:
            name_datasets(catalog, ours)

    # -- pipeline -----------------------------------------------------------------------

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Open (or attach to) the run, tag it, and log the parameters the nodes read."""
        kedro_run_id = str(run_params.get("run_id"))
        with _registry_lock:
            if kedro_run_id in _by_kedro_run:  # a second registered instance
                return
            config, credentials = self._config_for(run_params)
            ctx = RunContext(config, kedro_run_id=kedro_run_id)
            _by_kedro_run[kedro_run_id] = ctx
        self._close_stale(kedro_run_id)
        from .io._naming import name_datasets  # no mlflow import

        # default model names and metric keys, and which Kedro run the datasets belong to
        name_datasets(catalog, sorted(pipeline.datasets()), kedro_run_id=kedro_run_id)
        # for this run only: bounded HTTP retries, and the credentials MLflow reads from the environment
        environment = {**config.http_env, **credentials}
        if config.tracking_disabled_for(run_params.get("pipeline_names")):
            ctx.disable()
            # datasets with a run_id still use MLflow, also in spawned workers
            store = json.dumps({"tracking_uri": config.tracking_uri, "registry_uri": config.registry_uri})
            _disabled_env[kedro_run_id] = _set_env({**environment, STORE_ENV_VAR: store})
            logger.info("MLflow tracking is disabled for pipeline(s) %s.", run_params.get("pipeline_names") or ["__default__"])
            return
        try:
            names = run_params.get("pipeline_names") or ["__default__"]
            ctx.start(run_name=",".join(names), tags=run_tags(run_params, config), publish=True,
                      environment=environment)
        except BaseException:
            _by_kedro_run.pop(kedro_run_id, None)
            raise
        _ensure_atexit()
        guard = SignalGuard(lambda signum: self._interrupted(ctx, signum))
        if guard.install():
            _guards[kedro_run_id] = guard
        try:
            inputs = parameter_inputs(sorted(pipeline.inputs()))
            if inputs:
                ctx.log_params({name: catalog.load(name) for name in inputs})
        except BaseException as exc:  # Kedro calls no error hook for errors raised here
            try:
                self._finish(ctx, RunState.FAILED, exc)
            except Exception:  # keep the original error in front
                logger.exception("Could not record the failure in MLflow run %s", ctx.run_id)
            raise

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        ctx = self._ending(run_params)
        if ctx is None:
            return
        self._finish(ctx, RunState.FINISHED, None)
        logger.info("MLflow run %s is in %s", ctx.run_id, _where(ctx))

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any]) -> None:
        ctx = self._ending(run_params)
        if ctx is None:
            return
        try:
            self._finish(ctx, RunState.FAILED, error)
        except Exception:  # never hide the pipeline's own error behind a tracking one
            logger.exception("Could not record the failure in MLflow run %s", ctx.run_id)

    # -- nodes --------------------------------------------------------------------------

    @hook_impl
    def before_node_run(self, node: Any, run_id: str) -> None:
        """In a runner's worker thread or process, make the run MLflow's active run there too."""
        ctx = _context_for(run_id)
        if ctx is not None:
            _bindings().append(ctx.bind_thread())

    @hook_impl
    def after_node_run(self, run_id: str) -> None:
        self._unbind(run_id)

    @hook_impl
    def on_node_error(self, error: Exception, node: Any, run_id: str) -> None:
        ctx = _context_for(run_id)
        if ctx is not None:
            node_name = getattr(node, "name", None)
            ctx.record_error(error, node_name)
            if ctx is not _by_kedro_run.get(str(run_id)) or ctx._pid != os.getpid():
                # a ParallelRunner worker: the session's context never sees this record
                try:
                    ctx.set_tags(error_tags(error, node_name))
                except Exception:
                    logger.warning("Could not record the error of node %s in MLflow run %s", node_name,
                                   ctx.run_id, exc_info=True)
        self._unbind(run_id)

    @staticmethod
    def _unbind(run_id: str) -> None:
        bindings = _bindings()
        if bindings and bindings.pop():
            ctx = _context_for(run_id)
            if ctx is not None:
                ctx.unbind_thread()

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def _ending(run_params: Mapping[str, Any]) -> RunContext | None:
        """The context to end for this Kedro run; forgets a disabled one."""
        key = str(run_params.get("run_id"))
        ctx = _by_kedro_run.get(key)
        if ctx is not None and not ctx.is_active:
            _by_kedro_run.pop(key, None)
            apply_environment(_disabled_env.pop(key, {}))
            return None
        return ctx

    @staticmethod
    def _config_for(run_params: Mapping[str, Any]) -> tuple[MlflowConfig, dict[str, str]]:
        """The config (and credentials) after_context_created loaded for this run."""
        cached = getattr(_pending, "value", None)
        _pending.value = None
        if cached is not None:
            return cached[1], cached[2]
        from kedro.framework.project import PACKAGE_NAME

        path = run_params.get("project_path") or "."
        return build_config({}, project_path=path, package_name=PACKAGE_NAME), {}

    @staticmethod
    def _close_stale(current: str) -> None:
        """End runs a previous Kedro run in this thread left ACTIVE (a BaseException escaped)."""
        me = threading.get_ident()
        for ctx in active_contexts(own_process_only=True):
            if ctx.kedro_run_id != current and ctx.started_in_thread == me:
                logger.warning("Ending MLflow run %s left open by an interrupted Kedro run.", ctx.run_id)
                MlflowRunsHooks._finish(
                    ctx,
                    RunState.KILLED,
                    RunInterruptedError(
                        "an exception that Kedro's error hooks do not see (KeyboardInterrupt, "
                        "SystemExit, ...) ended the Kedro run"
                    ),
                )

    @staticmethod
    def _finish(ctx: RunContext, status: RunState, error: BaseException | None) -> None:
        key = str(ctx.kedro_run_id)
        guard = _guards.pop(key, None)
        try:
            ctx.end(status, error)
        finally:
            if guard is not None:
                guard.restore()
            _by_kedro_run.pop(key, None)

    @staticmethod
    def _interrupted(ctx: RunContext, signum: int) -> None:
        if ctx.is_active:
            name = signal.Signals(signum).name
            logger.warning("%s received: ending MLflow run %s as KILLED.", name, ctx.run_id)
            MlflowRunsHooks._finish(ctx, RunState.KILLED, RunInterruptedError(f"{name} received"))


_guard_session_run()

#: The instance the ``kedro.hooks`` entry point registers. Private: listing it in
#: ``settings.HOOKS`` as well would make pluggy refuse one object under two names.
_entry_point_hooks = MlflowRunsHooks()

#: An instance for ``settings.HOOKS`` (any other ``MlflowRunsHooks()`` works the same): all
#: instances share one RunContext per Kedro run, so registering it besides the entry point's
#: own instance still gives one run.
plugin_hooks = MlflowRunsHooks()
