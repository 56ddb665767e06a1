"""The small values that describe a run: its state, who owns it, its handle, how it ended.

Nothing here imports MLflow or holds state.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, fields
from enum import Enum

from ._redact import redact_uri

__all__ = ["HANDLE_ENV_VAR", "STORE_ENV_VAR", "Outcome", "Ownership", "RunHandle", "RunState", "handle_from_env"]

logger = logging.getLogger(__name__)

#: Where a started run publishes its handle, so that child processes (ParallelRunner with
#: ``spawn``, a custom runner's process pool) find the run without being told.
HANDLE_ENV_VAR = "KEDRO_MLFLOW_RUNS_HANDLE"

#: Where a Kedro run with tracking disabled publishes its project's store, for datasets with a
#: ``run_id`` in spawned worker processes (``{"tracking_uri": ..., "registry_uri": ...}``).
STORE_ENV_VAR = "KEDRO_MLFLOW_RUNS_STORE"


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


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as data: the one argument of ``RunRegistry.finish``.

    Attributes:
        status: FINISHED, FAILED or KILLED.
        error: what failed or interrupted the run (None when it finished).
        node: the Kedro node that failed, when known.
    """

    status: RunState
    error: BaseException | None = None
    node: str | None = None

    @classmethod
    def finished(cls) -> Outcome:
        return cls(RunState.FINISHED)

    @classmethod
    def failed(cls, error: BaseException, node: str | None = None) -> Outcome:
        return cls(RunState.FAILED, error, node)

    @classmethod
    def killed(cls, reason: str | BaseException) -> Outcome:
        from .errors import RunInterruptedError

        error = reason if isinstance(reason, BaseException) else RunInterruptedError(reason)
        return cls(RunState.KILLED, error)

    @classmethod
    def of_exception(cls, exc: BaseException | None) -> Outcome:
        """FINISHED for None, FAILED for an ``Exception``, KILLED for anything else (SystemExit, ...)."""
        if exc is None:
            return cls.finished()
        if isinstance(exc, Exception):
            return cls.failed(exc)
        return cls(RunState.KILLED, exc)


@dataclass(frozen=True)
class RunHandle:
    """The identity of an MLflow run: enough for any process to attach to it.

    Attributes:
        run_id: the MLflow run id.
        tracking_uri: where the run lives.
        experiment_id: the run's experiment.
        registry_uri: the model registry, when it differs from the tracking store.
        kedro_run_id: the Kedro run (session id) that opened or attached the run, if any.
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
        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_json(cls, text: str) -> RunHandle:
        data = json.loads(text)
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


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
