"""Example custom Kedro runner: each node runs in a worker process of a ProcessPoolExecutor.

Shows the RunContext API a custom runner needs: take the run's picklable handle from
``current_run_context()`` in the session process, hand it to the workers, and have each worker
attach with ``RunContext.attach(handle)``. Node code in the worker may then call
``mlflow.log_metric(...)``, and MLflow datasets used there log into the same run. The plugin's
hooks own the run: they close it FINISHED, or FAILED when a node raises in a worker.

Use it with ``kedro run --runner pool_runner.PoolRunner`` (with this file importable), or
``session.run(runner=PoolRunner(max_workers=2))``.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any

from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from kedro.runner import AbstractRunner

from kedro_mlflow_runs import RunContext, RunHandle, current_run_context


def run_node_in_worker(handle: RunHandle | None, node: Node, inputs: dict[str, Any]) -> dict[str, Any]:
    """Runs in the worker process: attach to the run, run the node, return its outputs."""
    if handle is None:  # tracking is disabled for this pipeline
        return node.run(inputs)
    with RunContext.attach(handle):  # leaves the run open: the session's hooks end it
        return node.run(inputs)


class PoolRunner(AbstractRunner):
    """Runs nodes in a pool of worker processes (``spawn``), loading and saving data in the parent."""

    def __init__(self, max_workers: int = 2, is_async: bool = False):
        super().__init__(is_async=is_async)
        self._max_workers = max_workers

    def _get_executor(self, max_workers: int) -> None:  # scheduling is done by _run below
        return None

    def _run(self, pipeline: Pipeline, catalog: Any, hook_manager: Any = None, run_id: str | None = None) -> None:
        ctx = current_run_context()
        handle = ctx.handle if ctx is not None else None
        todo, done = set(pipeline.nodes), set()
        dependencies = pipeline.node_dependencies
        with ProcessPoolExecutor(self._max_workers, mp_context=get_context("spawn")) as pool:
            running: dict[Any, Node] = {}
            while todo or running:
                for node in [n for n in todo if dependencies[n] <= done]:
                    inputs = {name: catalog.load(name) for name in node.inputs}
                    running[pool.submit(run_node_in_worker, handle, node, inputs)] = node
                    todo.discard(node)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    node = running.pop(future)
                    for name, data in future.result().items():  # re-raises a worker's error
                        catalog.save(name, data)
                    done.add(node)
