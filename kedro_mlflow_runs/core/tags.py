"""The run tags this plugin writes, and the error tags of a failed run (no MLflow import)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .._redact import redact_uri
from ..params import MAX_TAG_VALUE_LENGTH

__all__ = ["TAG_ERROR_ATTEMPT", "TAG_ERROR_DATASET", "TAG_ERROR_MESSAGE", "TAG_ERROR_NODE", "TAG_ERROR_TYPE",
           "TAG_HOST", "TAG_KEDRO_RUN_ID", "TAG_PID", "clip_tags", "error_tags"]

TAG_KEDRO_RUN_ID: Final = "kedro.run_id"
TAG_HOST: Final = "kedro.host"  # the host and process that opened the run (close-run --stale)
TAG_PID: Final = "kedro.pid"
TAG_ERROR_TYPE: Final = "kedro.error.type"
TAG_ERROR_MESSAGE: Final = "kedro.error.message"
TAG_ERROR_NODE: Final = "kedro.error.node"
TAG_ERROR_DATASET: Final = "kedro.error.dataset"
TAG_ERROR_ATTEMPT: Final = "kedro.error.attempt"  # the attempt that failed (a later one may supersede it)


def clip_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    """``tags`` as strings, each value cut to MLflow's tag length."""
    return {str(k): str(v)[:MAX_TAG_VALUE_LENGTH] for k, v in tags.items()}


def error_tags(error: BaseException, node_name: str | None = None, *, dataset: str | None = None,
               attempt: str | None = None) -> dict[str, str]:
    """The tags recording ``error`` (and the node, dataset and attempt it came from) on a run.

    The dataset is the one our error names (also when Kedro wrapped it in its own ``DatasetError``),
    else ``dataset`` (the catalog entry whose load or save raised).
    """
    kind = f"{type(error).__module__}.{type(error).__qualname__}".removeprefix("builtins.")
    tags = {TAG_ERROR_TYPE: kind, TAG_ERROR_MESSAGE: redact_uri(str(error) or repr(error), limit=MAX_TAG_VALUE_LENGTH)}
    if node_name:
        tags[TAG_ERROR_NODE] = node_name
    named = _named_dataset(error) or dataset
    if named:
        tags[TAG_ERROR_DATASET] = named
    if attempt:
        tags[TAG_ERROR_ATTEMPT] = attempt
    return clip_tags(tags)


def _named_dataset(error: BaseException) -> str | None:
    """The dataset named by ``error`` or by an error it chains (our dataset errors carry one)."""
    seen: BaseException | None = error
    for _ in range(20):
        if seen is None:
            return None
        dataset = getattr(seen, "dataset", None)
        if isinstance(dataset, str) and dataset:
            return dataset
        seen = seen.__cause__ or seen.__context__
    return None

