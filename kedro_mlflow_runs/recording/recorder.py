"""What a run records about itself while it runs: the node timeline and the data lineage.

One :class:`RunRecorder` per tracked Kedro run, built when the pipeline starts, kept on its
``TrackedRun``. Node and dataset hooks hand it events; nothing is sent to MLflow until the run
ends, when :meth:`RunRecorder.write` (an end step of ``RunRegistry.finish``, for every outcome)
logs everything in a handful of requests:

* ``kedro/timeline.json``, ``kedro/timeline.html``, ``kedro/pipeline.json`` and the metrics
  ``kedro.node_duration_s.<node>`` (``tracking.timeline``);
* the free persisted inputs as MLflow dataset inputs and ``kedro/outputs.json``
  (``tracking.lineage``).

Where the events go: in the process that runs the Kedro run, into a list in memory; in a
runner's worker process (a forked copy of the recorder, or one a spawned worker builds from
``KEDRO_MLFLOW_RUNS_RECORDER``), one JSON line per event appended to ``<spool>/<pid>.jsonl``
in a private temporary folder the run created (``spool.py``); the owner reads them all when the run
ends; a Dask worker hands each event to a *sink*, which sends it there (``framework/dask_cluster.py``). A
run attached to by several processes gets one part from each (``parts.py``)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import worker_env
from ..core.registry import REGISTRY
from ..handle import Ownership
from .lineage import INPUT_CONTEXT, Location, digest, frame_schema, location, persisted
from .parts import ARTIFACT_DIR, PARTS_DIR, log_files, merge_parts, merged_files, part_name
from .spool import Spool
from .timeline import duration_metrics, entries, pipeline_description
from .trace import write_run_trace

if TYPE_CHECKING:  # pragma: no cover
    from ..config import MlflowConfig
    from ..core.context import RunContext
    from ..handle import Outcome

__all__ = ["RunRecorder", "recorder_for"]

logger = logging.getLogger(__name__)


class RunRecorder:
    """Collects a Kedro run's node and dataset events, and writes them into its MLflow run at the end."""

    __slots__ = ("attempt_id", "closed_at", "digest_mode", "events", "inputs", "kedro_run_id", "lineage", "outputs",
                 "owner_pid", "owner_spool", "pipeline", "seen", "sink", "spool", "timeline", "trace", "watched")

    def __init__(self, kedro_run_id: str, spool: str, owner_pid: int, *, timeline: bool, lineage: bool,
                 watched: Iterable[str] = (), attempt_id: str | None = None) -> None:
        self.kedro_run_id = kedro_run_id
        self.attempt_id = attempt_id  # the attempt of an attached run (each names its part, and its lane)
        self.spool = spool
        self.owner_pid = owner_pid
        self.timeline = timeline
        self.lineage = lineage
        self.watched = frozenset(watched)  # persisted inputs and outputs: their frames get a schema
        self.events: list[dict[str, Any]] = []  # the owner process's own events
        self.seen: set[str] = set()  # datasets whose schema this process recorded already
        self.pipeline: dict[str, Any] = {}
        self.inputs: dict[str, tuple[Location, str]] = {}  # name -> (where, digest when the run started)
        self.outputs: dict[str, Location] = {}
        self.digest_mode = "auto"
        self.closed_at: float | None = None  # when the run was closed (its interrupted nodes end then)
        self.owner_spool: Spool | None = None  # the owner process's hold on the spool folder
        #: where a cluster worker (Dask) sends its events instead (to the process that runs the Kedro run)
        self.sink: Callable[[dict[str, Any]], None] | None = None
        self.trace = False  # the owner writes the timeline as an MLflow trace too (tracking.timeline.trace)

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def for_pipeline(cls, kedro_run_id: str, config: MlflowConfig, pipeline: Any, catalog: Any,
                     attempt_id: str | None = None) -> RunRecorder | None:
        """The recorder of a Kedro run about to run ``pipeline`` (None when both features are off)."""
        if not (config.tracking.timeline.enabled or config.tracking.lineage.enabled):
            return None
        inputs = persisted(catalog, sorted(pipeline.inputs())) if config.tracking.lineage.enabled else {}
        outputs = persisted(catalog, sorted(pipeline.all_outputs())) if config.tracking.lineage.enabled else {}
        spool = Spool.create()  # (and remove those of runs killed before they could)
        recorder = cls(kedro_run_id, spool.path, os.getpid(),
                       timeline=config.tracking.timeline.enabled, lineage=config.tracking.lineage.enabled,
                       watched=[*inputs, *outputs], attempt_id=attempt_id)
        recorder.owner_spool = spool
        recorder.digest_mode = config.tracking.lineage.digest
        recorder.trace = config.tracking.timeline.enabled and config.tracking.timeline.trace
        if config.tracking.timeline.enabled:
            recorder.pipeline = pipeline_description(pipeline)
        for name, dataset in inputs.items():
            loc = location(dataset)
            if loc is not None:
                recorder.inputs[name] = (loc, _safe_digest(loc, config.tracking.lineage.digest, name))
        for name, dataset in outputs.items():
            loc = location(dataset, saving=True)
            if loc is not None:
                recorder.outputs[name] = loc
        return recorder

    def settings(self) -> dict[str, Any]:
        """What a worker needs to record into this run (JSON-ready)."""
        return {"kedro_run_id": self.kedro_run_id, "spool": self.spool, "owner_pid": self.owner_pid, "timeline":
                self.timeline, "lineage": self.lineage, "watched": sorted(self.watched), "attempt_id": self.attempt_id}

    def environment(self) -> dict[str, str]:
        """What spawned workers need to record into this run (``KEDRO_MLFLOW_RUNS_RECORDER``)."""
        return worker_env.encode(worker_env.RECORDER, self.settings())

    @classmethod
    def from_env(cls, kedro_run_id: str | None) -> RunRecorder | None:
        """In a spawned worker: the recorder the run of ``kedro_run_id`` published, or None."""
        data = worker_env.decode(worker_env.RECORDER, ("kedro_run_id", "spool", "owner_pid"))
        if data is None or (kedro_run_id is not None and data["kedro_run_id"] != kedro_run_id):
            return None
        return cls(str(data["kedro_run_id"]), str(data["spool"]), int(data["owner_pid"]),
                   timeline=bool(data.get("timeline")), lineage=bool(data.get("lineage")),
                   watched=data.get("watched") or (), attempt_id=data.get("attempt_id"))

    def _node_event(self, kind: str, node_name: str) -> dict[str, Any]:
        return _node_event(kind, node_name, socket.gethostname(), self.attempt_id)

    def cleanup(self) -> None:
        """Remove the spool folder (the owner process only)."""
        if os.getpid() == self.owner_pid and self.spool and self.owner_spool is not None:
            self.owner_spool.remove()
        elif os.getpid() == self.owner_pid and self.spool:
            shutil.rmtree(self.spool, ignore_errors=True)

    # -- events (hooks) ---------------------------------------------------------------------

    def node_started(self, node_name: str) -> None:
        if self.timeline:
            self._emit(self._node_event("start", node_name))

    def node_ended(self, node_name: str, status: str = "completed", error: BaseException | None = None) -> None:
        if self.timeline:
            event = self._node_event("end", node_name)
            event["status"] = status
            if error is not None:
                event["error"] = type(error).__name__
            self._emit(event)

    def node_io(self, node_name: str, kind: str) -> None:
        """A node's input starts to load (``load``) or one of its outputs was saved (``saved``)."""
        if self.timeline:
            self._emit(self._node_event(kind, node_name))

    def dataset(self, name: str, data: Any, *, saved: bool, source: str | None = None) -> None:
        """A dataset was loaded or saved: note a persisted output's save, a frame's schema once, and the
        artifact URI (``source``) a load downloaded its data from when its local copy was missing."""
        if not self.lineage or name not in self.watched:
            return
        event: dict[str, Any] = {"e": "data", "name": name, "saved": saved}
        if source is not None:
            event["source"] = source
        if name not in self.seen:
            described = frame_schema(data)
            if described is not None:
                self.seen.add(name)
                event["schema"], event["profile"] = described
        if saved or "schema" in event or "source" in event:
            self._emit(event)

    def _emit(self, event: dict[str, Any]) -> None:
        if self.sink is not None:
            try:
                self.sink(event)
            except Exception as exc:  # recording never fails a node
                logger.debug("Could not send a timeline event: %s", exc)
            return
        if os.getpid() == self.owner_pid:
            self.events.append(event)
            return
        line = (json.dumps(event) + "\n").encode()
        path = os.path.join(self.spool, f"{os.getpid()}.jsonl")
        try:  # one write of one line with O_APPEND: lines of threads of one process never interleave
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except FileNotFoundError:  # the run ended already and its owner removed the spool
            return
        except OSError as exc:  # recording never fails a node
            logger.debug("Could not record a timeline event: %s", exc)

    def collect(self) -> list[dict[str, Any]]:
        """Every event: this process's and every worker's spool lines."""
        events = list(self.events)
        for path in sorted(Path(self.spool).glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    events.append(json.loads(line))
                except ValueError:  # a worker killed mid-write
                    continue
        return events

    # -- the end of the run -----------------------------------------------------------------

    def write(self, ctx: RunContext, outcome: Outcome) -> None:
        """Log the node timeline and the data lineage into the run (an end step of ``RunRegistry.finish``)."""
        events = self.collect()
        run_id = ctx.handle.run_id
        tracker = ctx.tracker
        part: dict[str, Any] = {"kedro_run_id": self.kedro_run_id}
        metrics: list[tuple[str, float, int]] = []
        if self.timeline:
            timeline = entries([e for e in events if e["e"] in ("load", "start", "end", "saved")],
                               self.closed_at or time.time())
            part["timeline"], part["pipeline"] = timeline, self.pipeline
            metrics = duration_metrics(timeline)
        inputs: list[dict[str, Any]] = []
        if self.lineage:
            described = {e["name"]: e for e in events if e["e"] == "data" and "schema" in e}
            saved = {e["name"] for e in events if e["e"] == "data" and e.get("saved")}
            fetched = {e["name"]: e["source"] for e in events if e["e"] == "data" and e.get("source")}
            for name, (loc, start_digest) in self.inputs.items():
                where, input_digest = loc.describe(name), start_digest
                if name in fetched:  # missing here when the run started: downloaded from the run's artifact
                    where, input_digest = self._fetched_input(name, loc, fetched[name])
                inputs.append({**where, "digest": input_digest, "context": INPUT_CONTEXT,
                               **_schema_of(described.get(name))})
            part["outputs"] = [{**loc.describe(n), "digest": _safe_digest(loc, self.digest_mode, n),
                                **_schema_of(described.get(n))} for n, loc in self.outputs.items() if n in saved]
        problems: list[str] = []
        attached = ctx.ownership is Ownership.ATTACHED
        try:
            if attached:  # other processes may share the run: add this part, then merge every part
                name = f"{part_name(self.kedro_run_id, self.attempt_id)}.json"
                log_files(tracker, run_id, {name: json.dumps(part)}, PARTS_DIR)
                merge_parts(tracker, run_id, status=outcome.status.value)
            else:
                files = merged_files([part], status=outcome.status.value, run_id=run_id)
                log_files(tracker, run_id, files, ARTIFACT_DIR)
                if self.trace:  # (a step of a run others share leaves the trace to its closer)
                    write_run_trace(tracker, run_id, ctx.handle.experiment_id, files, status=outcome.status.value,
                                    kedro_run_id=self.kedro_run_id)
        except Exception as exc:
            problems.append(f"artifacts under {ARTIFACT_DIR}/ ({type(exc).__name__}: {exc})")
        if inputs:
            try:
                tracker.log_inputs(run_id, inputs)
            except Exception as exc:
                problems.append(f"dataset inputs ({type(exc).__name__}: {exc})")
        if metrics:
            try:
                tracker.log_batch(run_id, metrics=[(k, v, ts, 0) for k, v, ts in metrics],
                                  what="log the node durations to")
            except Exception as exc:
                problems.append(f"node duration metrics ({type(exc).__name__}: {exc})")
        self.cleanup()
        if problems:
            raise RuntimeError("; ".join(problems))

    def _fetched_input(self, name: str, loc: Location, uri: str) -> tuple[dict[str, Any], str]:
        """An input whose data a load downloaded from ``uri`` into its local path: the artifact is its
        source, and its digest is that of the downloaded data (where it now is locally)."""
        try:  # a versioned dataset: the version it was downloaded into
            here = location(loc.dataset) or loc
        except Exception:
            here = loc
        source_type = uri.partition(":")[0]
        return ({"name": name, "source_type": source_type, "source": json.dumps({"uri": uri})},
                _safe_digest(here, self.digest_mode, name))


def recorder_for(kedro_run_id: str | None) -> RunRecorder | None:
    """The recorder of a Kedro run in this process (the tracked run's, or a spawned worker's)."""
    recorder: RunRecorder | None = REGISTRY.recorder(kedro_run_id, RunRecorder.from_env)
    return recorder


def _node_event(kind: str, node_name: str, host: str, attempt_id: str | None) -> dict[str, Any]:
    """A node event, naming where it happened: the host, the process, the thread, the attempt."""
    thread = threading.current_thread()
    event = {"e": kind, "node": node_name, "t": time.time(), "host": host, "pid": os.getpid(), "tid": thread.ident,
             "thread": thread.name}
    if attempt_id:
        event["attempt"] = attempt_id
    return event


def _schema_of(event: Mapping[str, Any] | None) -> dict[str, str]:
    return {"schema": event["schema"], "profile": event["profile"]} if event else {}


def _safe_digest(loc: Location, mode: str, name: str) -> str:
    try:
        return digest(loc, mode)
    except Exception as exc:  # an unreadable file must not fail the run: say so, and go on
        logger.warning("Could not compute the digest of dataset '%s' (%s: %s).", name, type(exc).__name__, exc)
        return "unknown"
