"""Which RunContext the code of this thread should use: :func:`current_run_context`, the lookup every
dataset, hook and user program goes through."""

from __future__ import annotations

from ..handle import Outcome, RunHandle
from . import worker_env
from .context import RunContext
from .header_providers import install_published
from .registry import REGISTRY

__all__ = ["active_contexts", "attach_cluster_worker", "context_for", "current_run_context"]


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
    ctx = REGISTRY.current(kedro_run_id)
    if ctx is not None or (kedro_run_id is None and REGISTRY.active()):
        return ctx
    handle = worker_env.handle()
    if handle is None or (kedro_run_id is not None and handle.kedro_run_id != kedro_run_id):
        return None
    return REGISTRY.worker_context(handle, _attach_in_worker)


def _attach_in_worker(handle: RunHandle) -> RunContext:
    """A spawned worker: the run's header provider first (before any request), then the context."""
    if REGISTRY.first_in_process("header_provider"):
        install_published(REGISTRY.process)
    return RunContext.attach(handle, register=False)


def attach_cluster_worker(handle: RunHandle) -> RunContext:
    """A worker of a cluster (a Dask worker, started before the run and maybe on another machine) was
    handed the run: attach to it, make it this process's run (MLflow's URIs, the handle), and let
    :func:`current_run_context` find it, until ``REGISTRY.finish(ctx, ...)`` (which leaves the run open)."""
    ctx = RunContext.attach(handle)
    ctx.inherited = True  # a worker: never ends the run, checks it is still RUNNING before each save
    try:
        ctx.publish()
    except BaseException:
        REGISTRY.finish(ctx, Outcome.killed("the run could not be published in this worker"))
        raise
    return ctx


def context_for(kedro_run_id: str) -> RunContext | None:
    """The ACTIVE context of a Kedro run, in the session process or in a runner's worker."""
    tracked = REGISTRY.tracked(kedro_run_id)
    ctx = tracked.context if tracked is not None else current_run_context(str(kedro_run_id))
    return ctx if ctx is not None and ctx.is_active else None


def active_contexts(*, own_process_only: bool = False) -> list[RunContext]:
    """The RunContexts that are ACTIVE in this process, oldest first."""
    return REGISTRY.active(own_process_only=own_process_only)
