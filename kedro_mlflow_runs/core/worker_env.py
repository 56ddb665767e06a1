"""What a run publishes to its worker processes, as environment variables: one codec for all of them.

A spawned worker (ParallelRunner with ``spawn``, a custom runner's pool) starts with nothing but its
environment; the process that runs the Kedro run publishes there, for as long as the run lasts:

* :data:`HANDLE`: the run's :class:`RunHandle` (the worker attaches to the run);
* :data:`STORE`: the project's store when tracking is disabled (datasets with a ``run_id``);
* :data:`AUTOLOG`: ``tracking.autolog``'s flavors and arguments;
* :data:`HEADER_PROVIDER`: the class of ``server.request_header_provider`` and the file holding its
  ``init_kwargs`` (never their values);
* :data:`RECORDER`: where the worker spools its timeline and lineage events.

Each value is a JSON object. :func:`encode` makes ``{name: text}`` for a publication and
:func:`decode` reads one back, warning about one it cannot read.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any, Final

from ..handle import RunHandle

__all__ = ["AUTOLOG", "HANDLE", "HEADER_PROVIDER", "PUBLISHED", "RECORDER", "STORE", "decode", "encode", "handle"]

logger = logging.getLogger(__name__)

HANDLE: Final = "KEDRO_MLFLOW_RUNS_HANDLE"
STORE: Final = "KEDRO_MLFLOW_RUNS_STORE"
AUTOLOG: Final = "KEDRO_MLFLOW_RUNS_AUTOLOG"
HEADER_PROVIDER: Final = "KEDRO_MLFLOW_RUNS_HEADER_PROVIDER"
RECORDER: Final = "KEDRO_MLFLOW_RUNS_RECORDER"

#: Every variable a run publishes to its workers (the test suite checks none is left behind).
PUBLISHED: Final = frozenset({HANDLE, STORE, AUTOLOG, HEADER_PROVIDER, RECORDER})

def encode(name: str, value: Mapping[str, Any]) -> dict[str, str]:
    """``{name: JSON of value}``, ready to publish.

    Raises:
        ValueError: ``name`` is not one of :data:`PUBLISHED` (a programming error).
    """
    if name not in PUBLISHED:
        raise ValueError(f"{name} is not a variable published to workers: {sorted(PUBLISHED)}")
    return {name: json.dumps(dict(value), sort_keys=True)}


def decode(name: str, required: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The object published in ``name`` (None when unset, or malformed: then a warning, once)."""
    text = (os.environ if environ is None else environ).get(name)
    if not text:
        return None
    try:
        value = json.loads(text)
        if not isinstance(value, dict) or any(key not in value for key in required):
            raise ValueError(f"not an object with {', '.join(required)}")
    except ValueError:
        logger.warning("Ignoring malformed %s environment variable.", name)
        return None
    return value


def handle(environ: Mapping[str, str] | None = None) -> RunHandle | None:
    """The run handle a parent process published, if any."""
    value = decode(HANDLE, ("run_id", "tracking_uri", "experiment_id"), environ)
    if value is None:
        return None
    try:
        return RunHandle.from_mapping(value)
    except (TypeError, ValueError):
        logger.warning("Ignoring malformed %s environment variable.", HANDLE)
        return None
