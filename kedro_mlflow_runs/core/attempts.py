"""Attempts: each ``kedro run`` that attaches to a run is one attempt, recorded in the run.

An orchestrator runs a pipeline as steps, retries a step that failed or was killed, and runs steps on
machines that share nothing. Each attached ``kedro run`` is an :class:`Attempt`: an id, where it ran
(host, and the pod or container name the usual variables give), its process id, the nodes it runs,
when it started and ended, and how it ended. The run holds:

* a tag ``kedro.attempt.<id>`` per attempt: a small JSON object (state, host, pid, the nodes, the
  last heartbeat), set when the attempt starts, rewritten by its heartbeat and when it ends: what
  ``close-run --stale`` and ``close-run --status auto`` read, in one request;
* an artifact ``kedro/attempts/<id>.json``: the whole record, written at the start and rewritten at
  the end, so an attempt killed with ``kill -9`` stays visible as one that never ended.

A later attempt of the same nodes (or more) *supersedes* an earlier one that failed, was killed or
is dead (its heartbeat stopped): the run then reads as if the last attempt were the only one, where
MLflow allows it (see ``docs/deployment.md``).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

__all__ = [
    "ATTEMPT_TAG_PREFIX", "HEARTBEAT_ENV_VAR", "HEARTBEAT_EVERY_TAG", "HEARTBEAT_TAG", "MISSED_BEATS", "RUNNING",
    "Attempt", "AttemptState", "attempt_states", "beat_is_fresh", "heartbeat_interval", "identity",
]

#: Tag prefix of the attempts' states: ``kedro.attempt.<id>``.
ATTEMPT_TAG_PREFIX: Final = "kedro.attempt."
#: The heartbeat of a run's owner process (a run that is not attached to): epoch seconds.
HEARTBEAT_TAG: Final = "kedro.heartbeat"
#: Seconds between two heartbeats (default 30).
HEARTBEAT_ENV_VAR: Final = "KEDRO_MLFLOW_RUNS_HEARTBEAT_S"
#: Seconds between the heartbeats of the process that opened a run (set with its first beat).
HEARTBEAT_EVERY_TAG: Final = "kedro.heartbeat_every_s"
_DEFAULT_HEARTBEAT_S: Final = 30.0
RUNNING: Final = "RUNNING"
#: An attempt that missed this many heartbeats (plus a little slack) is dead: killed, or its machine lost.
MISSED_BEATS: Final = 3
_BEAT_SLACK_S: Final = 2.0
#: Node names kept in an attempt's tag (a tag holds 8000 characters); the record has them all.
_MAX_TAG_NODES_CHARS: Final = 4000
#: Where the pod or container of an attempt is named (Kubernetes' downward API by convention, Argo,
#: Airflow, Databricks); the first that is set is recorded.
_PLACE_VARIABLES: Final = ("POD_NAME", "KUBERNETES_POD_NAME", "MY_POD_NAME", "CONTAINER_NAME", "ARGO_NODE_ID",
                           "AIRFLOW_CTX_TASK_ID", "DB_CLUSTER_ID")


def heartbeat_interval() -> float:
    """Seconds between heartbeats: ``KEDRO_MLFLOW_RUNS_HEARTBEAT_S``, else 30."""
    try:
        value = float(os.environ.get(HEARTBEAT_ENV_VAR) or _DEFAULT_HEARTBEAT_S)
    except ValueError:
        return _DEFAULT_HEARTBEAT_S
    return value if value > 0 else _DEFAULT_HEARTBEAT_S


def identity() -> dict[str, str]:
    """Where this process runs: ``{"host": ..., "place": ...}`` (place: the pod or container, if named)."""
    found = {"host": socket.gethostname()}
    for name in _PLACE_VARIABLES:
        value = os.environ.get(name)
        if value:
            found["place"] = f"{name}={value}"
            break
    return found


@dataclass
class Attempt:
    """One ``kedro run`` attached to a run (see the module docstring)."""

    id: str
    kedro_run_id: str | None
    nodes: list[str]
    host: str
    pid: int
    place: str | None = None
    command: str | None = None
    start: float = field(default_factory=time.time)
    end: float | None = None
    outcome: str = RUNNING  # RUNNING, then FINISHED, FAILED or KILLED
    error: dict[str, str] | None = None  # type, message, node, dataset of a failed attempt
    retry_of: list[str] = field(default_factory=list)  # the attempts this one supersedes
    superseded_by: str | None = None

    @classmethod
    def new(cls, kedro_run_id: str | None, nodes: Iterable[str], command: str | None = None) -> Attempt:
        where = identity()
        return cls(uuid.uuid4().hex[:12], kedro_run_id, sorted(nodes), where["host"], os.getpid(),
                   where.get("place"), command)

    @property
    def tag_key(self) -> str:
        return f"{ATTEMPT_TAG_PREFIX}{self.id}"

    def tag_value(self, beat: float | None = None) -> str:
        """The attempt's tag: its state, where it runs, its nodes (when they fit), its last heartbeat."""
        names = json.dumps(self.nodes)
        state: dict[str, Any] = {"state": self.outcome, "host": self.host, "pid": self.pid,
                                 "start": round(self.start, 3), "beat": round(beat or time.time(), 3),
                                 "every": round(heartbeat_interval(), 3)}
        if len(names) <= _MAX_TAG_NODES_CHARS:
            state["nodes"] = self.nodes
        else:
            state["node_count"] = len(self.nodes)
        if self.superseded_by:
            state["superseded_by"] = self.superseded_by
        return json.dumps(state, separators=(",", ":"))

    def record(self) -> str:
        """The attempt's artifact ``kedro/attempts/<id>.json``."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_record(cls, text: str) -> Attempt:
        data = json.loads(text)
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


@dataclass(frozen=True)
class AttemptState:
    """What an attempt's tag says: enough to tell live from dead, and which nodes it ran."""

    id: str
    state: str
    host: str | None
    pid: int | None
    start: float
    beat: float
    nodes: frozenset[str] | None  # None: too many to keep in a tag (the record has them)
    superseded_by: str | None = None
    every: float = _DEFAULT_HEARTBEAT_S  # seconds between its heartbeats

    @property
    def dead_after(self) -> float:
        """Seconds of silence after which this attempt is dead: :data:`MISSED_BEATS` heartbeats missed."""
        return MISSED_BEATS * self.every + _BEAT_SLACK_S

    def alive(self, now: float) -> bool:
        """Still running, and its last heartbeat came less than :attr:`dead_after` seconds ago."""
        return self.state == RUNNING and now - self.beat < self.dead_after

    def redone_by(self, later: AttemptState) -> bool:
        """Whether ``later`` started after this attempt, ran every node of it again, and ended: the
        orchestrator gave this one up (it was killed or lost, even if its heartbeat is recent)."""
        return (later.start > self.start and later.state != RUNNING and self.nodes is not None
                and later.nodes is not None and self.nodes <= later.nodes)

    def repeated_by(self, nodes: Sequence[str]) -> bool:
        """Whether an attempt of ``nodes`` runs again every node this one ran."""
        return self.nodes is not None and self.nodes <= set(nodes)


def beat_is_fresh(beat: float, every: float | None, now: float) -> bool:
    """Whether a process beating every ``every`` seconds (30 when unknown) and last at ``beat`` has
    missed fewer than :data:`MISSED_BEATS` heartbeats at ``now``."""
    return beat > 0 and now - beat < MISSED_BEATS * (every or _DEFAULT_HEARTBEAT_S) + _BEAT_SLACK_S


def attempt_states(tags: Mapping[str, str]) -> list[AttemptState]:
    """The attempts of a run, from its tags, oldest first (a tag that cannot be read is left out)."""
    found = []
    for key, value in tags.items():
        if not key.startswith(ATTEMPT_TAG_PREFIX):
            continue
        try:
            data = json.loads(value)
            nodes = data.get("nodes")
            found.append(AttemptState(
                key[len(ATTEMPT_TAG_PREFIX):], str(data["state"]), data.get("host"), data.get("pid"),
                float(data.get("start") or 0), float(data.get("beat") or 0),
                frozenset(nodes) if isinstance(nodes, list) else None, data.get("superseded_by"),
                float(data.get("every") or _DEFAULT_HEARTBEAT_S)))
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(found, key=lambda a: a.start)
