"""Handing a tracked run to the workers of a compute cluster its runner uses (``dask.distributed``).

A Dask worker runs nodes for a Kedro run it was not started by (``dask worker`` on another machine, a
``LocalCluster`` started before the run): nothing of the run reaches it unless the run is handed to
it. When the run starts, :func:`publish_to_clusters` hands it to the Dask cluster the runner uses
(``dask_cluster.py``): at once when ``distributed`` is imported, else as soon as the process imports
it. A run whose runner never imports ``distributed`` pays nothing: the module is never imported.
"""

from __future__ import annotations

import logging
from typing import Any

from ..core.imports import after_import
from ..core.tracked import EndStep, TrackedRun

__all__ = ["publish_to_clusters"]

logger = logging.getLogger(__name__)


def publish_to_clusters(tracked: TrackedRun, before: str | None = None) -> None:
    """Hand the ACTIVE run of ``tracked`` (with its child runs, so call it once they exist) to the Dask
    workers of this process's clients, now and later; taken back by an end step, placed before the end
    step labelled ``before`` (which needs the workers' events) when there is one. Never fails the run:
    a problem is a warning."""

    def publish() -> None:
        from . import dask_cluster  # imports distributed: only once the process did

        dask_cluster.publish(tracked)

    def withdraw(ctx: Any, outcome: Any) -> None:
        if tracked.clusters is not None:
            tracked.clusters.withdraw()

    step = EndStep("the hand-over of the run to its Dask workers", withdraw)
    labels = [s.label for s in tracked.before_end]
    tracked.before_end.insert(labels.index(before) if before in labels else len(labels), step)
    try:
        tracked.cleanups.append(after_import("distributed", publish, "hand the Kedro run to Dask workers"))
    except Exception as exc:
        logger.warning("Could not hand Kedro run %s to its Dask workers: %s: %s (what they log goes elsewhere)",
                       tracked.context.kedro_run_id, type(exc).__name__, exc)
