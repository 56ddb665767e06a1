"""Example custom Kedro runner on dask.distributed: each node runs as a task on the cluster's workers.

The plugin hands the run to the cluster's workers by itself (a Dask worker plugin, registered when the
run starts, or when this runner creates its ``Client``): node code in a worker may call
``mlflow.log_metric(...)``, MLflow datasets used there log into the run, and the plugin's node hooks,
which run in the worker through Kedro's ``Task``, record the run's timeline (one lane per Dask worker).
Inputs are loaded and outputs saved in the session process; only the data crosses the wire.

Use it with ``kedro run --runner dask_runner.DaskRunner`` (with this file importable on the machine
running ``kedro run``, every worker and the scheduler). ``Client()`` connects to
``DASK_SCHEDULER_ADDRESS`` when it is set, else starts a ``LocalCluster``; or pass
``--runner-params client_args.address=tcp://scheduler:8786``.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from kedro.runner import AbstractRunner


def run_node_in_worker(node: Node, inputs: dict[str, Any], run_id: str | None) -> dict[str, Any]:
    """Runs on a Dask worker: the node, with Kedro's hooks, over an in-memory catalog; returns its outputs."""
    from kedro.framework.hooks.manager import _create_hook_manager, _register_hooks_entry_points
    from kedro.framework.project import settings
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import Task

    hook_manager = _create_hook_manager()  # a hook manager cannot be pickled: one per task
    _register_hooks_entry_points(hook_manager, settings.DISABLE_HOOKS_FOR_PLUGINS)
    catalog = DataCatalog({name: MemoryDataset(data) for name, data in inputs.items()})
    for name in node.outputs:
        catalog[name] = MemoryDataset()
    Task(node=node, catalog=catalog, is_async=False, hook_manager=hook_manager, run_id=run_id).execute()
    return {name: catalog.load(name) for name in node.outputs}


class DaskRunner(AbstractRunner):
    """Runs each node as a task on a ``dask.distributed`` cluster (``client_args`` for ``Client``)."""

    def __init__(self, client_args: dict[str, Any] | None = None, is_async: bool = False):
        super().__init__(is_async=is_async)
        self._client_args = client_args or {}

    def _get_executor(self, max_workers: int) -> None:
        return None

    def _run(self, pipeline: Pipeline, catalog: Any, hook_manager: Any = None, run_id: str | None = None) -> None:
        from distributed import Client, wait

        todo, done = set(pipeline.nodes), set()
        dependencies = pipeline.node_dependencies
        with Client(**self._client_args) as client:
            running: dict[Any, Node] = {}
            while todo or running:
                for node in [n for n in todo if dependencies[n] <= done]:
                    inputs = {name: catalog.load(name) for name in node.inputs}
                    running[client.submit(run_node_in_worker, node, inputs, run_id, pure=False)] = node
                    todo.discard(node)
                finished = wait(list(running), return_when="FIRST_COMPLETED").done
                for future in finished:
                    node = running.pop(future)
                    for name, data in future.result().items():  # re-raises a worker's error
                        catalog.save(name, data)
                    done.add(node)
