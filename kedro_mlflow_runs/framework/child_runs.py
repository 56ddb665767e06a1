"""The start of a tracked run's child runs (``tracking.child_runs.by``; ``core/children.py`` says how
they are routed): the groups of the pipeline's nodes, their child runs, what workers need, the
parameters each group's nodes read, and the end step that ends them with the run."""

from __future__ import annotations

import json
import os
from typing import Any

from ..core.catalog import parameter_values
from ..core.children import CHILDREN_ENV, end_children, ensure_children, node_groups, routing_of
from ..core.tracked import EndStep, TrackedRun
from ..handle import Ownership
from ..params import is_parameter, split_long_values, to_mlflow_params

__all__ = ["start_child_runs"]


def start_child_runs(tracked: TrackedRun, pipeline: Any, catalog: Any) -> None:
    """Create (or find) the child runs of ``tracked``'s run for ``pipeline``'s groups (no-op for ``none``)."""
    ctx, config = tracked.context, tracked.config
    by = config.tracking.child_runs
    if by == "none":
        return
    registered: dict[str, Any] = {}
    if by == "pipeline":
        from kedro.framework.project import pipelines

        registered = dict(pipelines)
    groups = node_groups(pipeline.nodes, by, registered)
    runs = ensure_children(ctx.tracker, ctx.handle, groups.values())
    tracked.children = routing_of(str(ctx.kedro_run_id), groups, runs, pipeline)
    os.environ[CHILDREN_ENV] = json.dumps(tracked.children)  # spawned and forked workers route the same way
    def unpublish() -> None:
        os.environ.pop(CHILDREN_ENV, None)

    tracked.cleanups.append(unpublish)
    def end(c: Any, outcome: Any) -> None:
        end_children(c.tracker, c.handle.experiment_id, c.handle.run_id, outcome.status.value)

    if ctx.ownership is Ownership.OWNED:  # a run steps share: close-run ends its children
        tracked.before_end.append(EndStep("the child runs", end))
    settings = config.tracking.params
    for group, child in runs.items():
        names = sorted({name for node in pipeline.nodes if groups.get(node.name) == group
                        for name in node.inputs if is_parameter(name)})
        if not names:
            continue
        flat = to_mlflow_params(parameter_values(catalog, names), flatten_dicts=settings.flatten,
                                recursive=settings.recursive, sep=settings.sep)
        params, as_tags = split_long_values(flat, settings.long_params_strategy)
        ctx.tracker.log_batch(child, params=params, tags=as_tags, what="log parameters to")
