"""Example custom Kedro runner on dask.distributed: nodes run on the cluster's workers.

Same contract as ``pool_runner.PoolRunner``: the handle travels with each task, workers attach.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Pipeline
from kedro.runner import AbstractRunner

from kedro_mlflow_runs import current_run_context

from pool_runner import run_node_in_worker


class DaskRunner(AbstractRunner):
    """Runs each node as a task on a ``dask.distributed`` cluster (``client_args`` for ``Client``)."""

    def __init__(self, client_args: dict[str, Any] | None = None, is_async: bool = False):
        super().__init__(is_async=is_async)
        self._client_args = client_args or {}

    def _get_executor(self, max_workers: int) -> None:
        return None

    def _run(self, pipeline: Pipeline, catalog: Any, hook_manager: Any = None, run_id: str | None = None) -> None:
        from distributed import Client

        ctx = current_run_context()
        handle = ctx.handle if ctx is not None else None
        with Client(**self._client_args) as client:
            for group in pipeline.grouped_nodes:  # topological layers; a layer's nodes run at once
                futures = [
                    client.submit(run_node_in_worker, handle, node, {n: catalog.load(n) for n in node.inputs}, pure=False)
                    for node in group
                ]
                for outputs in client.gather(futures):
                    for name, data in outputs.items():
                        catalog.save(name, data)
