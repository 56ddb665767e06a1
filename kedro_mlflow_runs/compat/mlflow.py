"""Every use of an MLflow private name, in one place.

MLflow offers no public way to (a) make an existing run the active run of a thread without
restarting it, or (b) read back the process-wide tracking and registry URIs exactly as set
(``mlflow.get_tracking_uri()`` resolves defaults, so it cannot be used to restore "unset").
What we touch, and why:

* ``mlflow.tracking.fluent._active_run_stack``: the per-thread stack behind
  ``mlflow.active_run()``; we push our run so ``mlflow.log_metric`` in node code lands in it.
* ``mlflow.tracking._tracking_service.utils._tracking_uri`` and ``set_tracking_uri``: the
  process-wide tracking URI as set (None when unset).
* ``mlflow.tracking._model_registry.utils._registry_uri``: the same for the registry URI.
* ``MlflowClient._tracking_client.store.engine``: the SQLAlchemy engine of a database store, whose
  pooled connections (an open file per sqlite store) we close when a test store is thrown away.
* the logger of ``mlflow.store.db.utils`` (its module's ``_logger``): on a database error MLflow
  logs the whole SQLAlchemy traceback there before raising; during our own calls we drop that
  record (we report the error ourselves), see ``tracking._errors.quiet_store_errors``.
* ``mlflow.tracking.request_header.registry._request_header_provider_registry``: the providers
  MLflow asks for headers on every request; a run adds ``server.request_header_provider`` there
  and takes it out again when it ends (MLflow only offers registration through entry points).
* ``mlflow.utils.autologging_utils.AUTOLOGGING_INTEGRATIONS`` (not in MLflow's documented API): the
  configuration each ``autolog()`` call stored; a run that suspends autologging reads it to turn back
  on exactly what was on (``core.process.ProcessState.suspend_autologging``).
* ``mlflow.system_metrics.system_metrics_monitor.SystemMetricsMonitor`` (not in MLflow's documented
  API): MLflow starts it only inside ``mlflow.start_run``; our runs are created with the client, so
  we start and stop one ourselves (``framework/system_metrics.py``). We use its constructor
  (``run_id, sampling_interval, samples_before_logging, resume_logging, tracking_uri``) and
  ``start``/``finish``/``collect_metrics``/``aggregate_metrics``/``publish_metrics`` and its
  ``mlflow_logger.flush``.
* ``mlflow.tracing.client.TracingClient`` with ``Span.from_dict`` (its serialized form) and
  ``TraceInfo``: MLflow's tracing API records spans live, one request per span; a run's node timeline
  is known only when the run ends, so :func:`write_trace` writes it as one trace in two requests
  (``log_spans`` with every span, then ``start_trace`` with the trace's info), as MLflow's own
  exporter does.

``tests/test_architecture.py::test_the_mlflow_private_names_we_use_still_exist`` fails loudly when a
future MLflow moves any of them. Nothing else in the package may name an MLflow private attribute.
"""

from __future__ import annotations

import logging
from typing import Any

from . import run_checks

__all__ = ["ActiveRun", "SystemMetricsMonitor", "autologging_configs", "close_store_connections", "fluent_stack",
           "global_uris", "header_providers", "set_global_uris", "store_error_logger", "verify", "write_trace"]

_MONITOR_METHODS = ("start", "finish", "collect_metrics", "aggregate_metrics", "publish_metrics")
_MONITOR_ARGS = ("run_id", "sampling_interval", "samples_before_logging", "resume_logging", "tracking_uri")


def fluent_stack() -> list[Any]:
    """The calling thread's MLflow active-run stack (a list of ``ActiveRun``; empty in a fresh thread)."""
    from mlflow.tracking import fluent

    stack: list[Any] = fluent._active_run_stack.get()  # type: ignore[no-untyped-call]
    return stack


def ActiveRun(run: Any) -> Any:  # noqa: N802 - mirrors the class it builds
    """MLflow's ``ActiveRun`` wrapper of a ``Run`` entity, as stored on the fluent stack."""
    import mlflow

    return mlflow.ActiveRun(run)  # type: ignore[no-untyped-call]


def global_uris() -> tuple[str | None, str | None]:
    """MLflow's process-wide ``(tracking_uri, registry_uri)`` exactly as set (None: not set)."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    return tracking_utils._tracking_uri, getattr(registry_utils, "_registry_uri", None)


def set_global_uris(tracking_uri: str | None, registry_uri: str | None) -> None:
    """Set MLflow's process-wide URIs exactly (None unsets). MLflow also sets (or unsets)
    ``MLFLOW_TRACKING_URI`` here; the caller restores the environment it wants."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    if tracking_utils._tracking_uri != tracking_uri:
        tracking_utils.set_tracking_uri(tracking_uri)
    registry_utils._registry_uri = registry_uri  # type: ignore[assignment]


def autologging_configs() -> dict[str, dict[str, Any]]:
    """A copy of MLflow's autologging configuration per integration (``{"sklearn": {"disable": False,
    ...}}``), as the last ``autolog()`` call of each set it."""
    from mlflow.utils import autologging_utils

    return {name: dict(config) for name, config in autologging_utils.AUTOLOGGING_INTEGRATIONS.items()}


def header_providers() -> list[Any]:
    """The list of provider instances MLflow iterates for each request's headers (mutable)."""
    from mlflow.tracking.request_header import registry

    return registry._request_header_provider_registry._registry


#: The logger MLflow's database stores log their SQLAlchemy errors to (with the traceback).
STORE_ERROR_LOGGER = "mlflow.store.db.utils"


def store_error_logger() -> logging.Logger:
    """The logger of :data:`STORE_ERROR_LOGGER` (no MLflow import)."""
    return logging.getLogger(STORE_ERROR_LOGGER)


def SystemMetricsMonitor(run_id: str, **kwargs: Any) -> Any:  # noqa: N802 - mirrors the class it builds
    """MLflow's system-metrics monitor of run ``run_id`` (not started); needs psutil."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor as Monitor

    return Monitor(run_id, **kwargs)  # type: ignore[no-untyped-call]


def close_store_connections(client: Any) -> None:
    """Close the pooled database connections of ``client``'s tracking store, if it has any (the
    engine stays usable: it opens new ones when asked)."""
    engine = getattr(getattr(getattr(client, "_tracking_client", None), "store", None), "engine", None)
    if engine is not None:
        engine.dispose()


def _check_fluent_stack() -> str | None:
    from mlflow.tracking import fluent

    stack = fluent._active_run_stack.get()  # type: ignore[no-untyped-call]
    return None if isinstance(stack, list) else "mlflow.tracking.fluent._active_run_stack.get() is not a list"


def _check_global_uris() -> str | None:
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    if not hasattr(tracking_utils, "_tracking_uri") or not callable(tracking_utils.set_tracking_uri):
        return "mlflow.tracking._tracking_service.utils._tracking_uri / set_tracking_uri"
    return None if hasattr(registry_utils, "_registry_uri") else "mlflow.tracking._model_registry.utils._registry_uri"


def _check_store_engine() -> str | None:
    from mlflow import MlflowClient

    store = MlflowClient("sqlite:///:memory:")._tracking_client.store
    return None if hasattr(store, "engine") else "MlflowClient._tracking_client.store.engine"


def _check_store_logger() -> str | None:
    from mlflow.store.db import utils as db_utils

    name = db_utils._logger.name
    return None if name == STORE_ERROR_LOGGER else f"mlflow.store.db.utils._logger is not {STORE_ERROR_LOGGER}"


def _check_header_providers() -> str | None:
    return None if isinstance(header_providers(), list) else (
        "mlflow.tracking.request_header.registry._request_header_provider_registry._registry is not a list")


def _check_autologging() -> str | None:
    return None if isinstance(autologging_configs(), dict) else "AUTOLOGGING_INTEGRATIONS is not a mapping"


def _check_system_metrics() -> str | None:
    import importlib.util
    import inspect

    if importlib.util.find_spec("psutil") is None:  # the module needs psutil (our `system` extra)
        return None
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor as Monitor

    params = inspect.signature(Monitor.__init__).parameters
    gone = [f"SystemMetricsMonitor({arg}=...)" for arg in _MONITOR_ARGS if arg not in params]
    gone += [f"SystemMetricsMonitor.{name}" for name in _MONITOR_METHODS if not callable(getattr(Monitor, name, None))]
    return ", ".join(gone) or None


def write_trace(tracking_uri: str, experiment_id: str, run_id: str, spans: list[dict[str, Any]], *,
                ok: bool, tags: dict[str, str]) -> str:
    """Write a finished trace linked to run ``run_id`` in two requests; its id.

    ``spans``: the root first; each ``{"name", "id" (int, unique), "parent" (an id or None), "start_ns",
    "end_ns", "ok" (bool), "message", "kind" (MLflow span type), "attributes" (JSON-ready values)}``.
    """
    import base64
    import json
    import uuid

    from mlflow.entities import Span, TraceInfo, TraceLocation, TraceState
    from mlflow.tracing.client import TracingClient

    number = uuid.uuid4().int
    trace_id = f"tr-{number:032x}"

    def encoded(value: int, size: int) -> str:
        return base64.b64encode(value.to_bytes(size, "big")).decode()

    entities = [Span.from_dict({
        "trace_id": encoded(number, 16), "span_id": encoded(span["id"], 8),
        "parent_span_id": encoded(span["parent"], 8) if span["parent"] is not None else None,
        "name": span["name"], "start_time_unix_nano": span["start_ns"], "end_time_unix_nano": span["end_ns"],
        "events": [], "links": [],
        "status": {"code": "STATUS_CODE_OK" if span["ok"] else "STATUS_CODE_ERROR", "message": span.get("message", "")},
        "attributes": {"mlflow.traceRequestId": json.dumps(trace_id), "mlflow.spanType": json.dumps(span["kind"]),
                       **{key: json.dumps(value) for key, value in span["attributes"].items()}},
    }) for span in spans]
    root = spans[0]
    info = TraceInfo(trace_id=trace_id, trace_location=TraceLocation.from_experiment_id(experiment_id),
                     request_time=root["start_ns"] // 1_000_000,
                     execution_duration=(root["end_ns"] - root["start_ns"]) // 1_000_000,
                     state=TraceState.OK if ok else TraceState.ERROR,
                     trace_metadata={"mlflow.sourceRun": run_id, "mlflow.trace_schema.version": "3"},
                     tags={"mlflow.traceName": root["name"], **tags})
    client = TracingClient(tracking_uri)
    client.log_spans(experiment_id, entities)
    client.start_trace(info)
    return trace_id


def _check_tracing() -> str | None:
    import inspect

    from mlflow.entities import Span, TraceInfo
    from mlflow.tracing.client import TracingClient

    gone = [f"TracingClient.{name}" for name in ("log_spans", "start_trace") if not callable(getattr(TracingClient,
                                                                                                  name, None))]
    gone += [] if callable(getattr(Span, "from_dict", None)) else ["Span.from_dict"]
    params = inspect.signature(TraceInfo).parameters
    gone += [f"TraceInfo({arg}=...)" for arg in ("trace_id", "trace_location", "request_time", "execution_duration",
                                                   "state", "trace_metadata", "tags") if arg not in params]
    return ", ".join(gone) or None


_CHECKS = (_check_fluent_stack, _check_global_uris, _check_store_engine, _check_store_logger,
           _check_header_providers, _check_autologging, _check_system_metrics, _check_tracing)


def verify() -> list[str]:
    """The private names above that this MLflow no longer has (empty when all are there)."""
    return run_checks(_CHECKS)
