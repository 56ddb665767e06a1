"""The only module that talks to MLflow.

MLflow is imported lazily (it costs over a second), every call names its run explicitly
through :class:`mlflow.MlflowClient`, and batches respect MLflow's request limits.
MLflow's fluent state (the per-thread active-run stack, the global tracking/registry URIs) is
changed only through the helpers at the end of this module, so that user code calling
``mlflow.log_metric`` in a node lands in our run.
"""

from __future__ import annotations

import getpass
import logging
import os
import subprocess
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import redact_uri, safe_cause
from .errors import (
    ParameterError,
    RunNotFoundError,
    TrackingError,
    TrackingUnavailableError,
)

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient
    from mlflow.entities import Run

logger = logging.getLogger(__name__)

MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000

_clients: dict[tuple[int, str, str | None], MlflowClient] = {}
_clients_lock = threading.Lock()


def client_for(tracking_uri: str, registry_uri: str | None = None) -> MlflowClient:
    """A cached ``MlflowClient`` bound to ``tracking_uri`` (never the global default).

    Cached per process: a forked worker never reuses its parent's database connections.
    """
    key = (os.getpid(), tracking_uri, registry_uri)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            from mlflow import MlflowClient

            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
            _clients[key] = client
        return client


def _is_not_found(exc: BaseException) -> bool:
    code = getattr(exc, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") or "not found" in str(exc).lower()


def _is_unreachable(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    markers = ("connection", "max retries", "timed out", "unreachable", "refused", "operationalerror")
    return isinstance(exc, (ConnectionError, OSError)) or any(m in text for m in markers)


class Tracker:
    """Tracking calls for one store, each naming its run explicitly.

    Args:
        tracking_uri: the tracking store (``sqlite:///...``, ``http://...``, ...).
        registry_uri: the model registry, when it differs from the tracking store.
    """

    def __init__(self, tracking_uri: str, registry_uri: str | None = None):
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri

    @property
    def client(self) -> MlflowClient:
        return client_for(self.tracking_uri, self.registry_uri)

    def _unavailable(self, what: str, exc: BaseException) -> TrackingUnavailableError:
        return TrackingUnavailableError(
            f"Could not {what}: the MLflow tracking store at {redact_uri(self.tracking_uri)} "
            f"did not answer ({type(exc).__name__}: {redact_uri(str(exc))[:300]}). Check that the "
            f"server is up and the URI is right (server.mlflow_tracking_uri in mlflow.yml or "
            f"MLFLOW_TRACKING_URI)."
        )

    def ensure_experiment(
        self, name: str, *, artifact_location: str | None = None, restore_if_deleted: bool = True
    ) -> str:
        """The id of experiment ``name``, created (or restored) when needed."""
        from mlflow.exceptions import MlflowException

        client = self.client
        try:
            exp = client.get_experiment_by_name(name)
            if exp is None:
                try:
                    return str(client.create_experiment(name, artifact_location=artifact_location))
                except MlflowException as exc:  # another process created it meanwhile
                    exp = client.get_experiment_by_name(name)
                    if exp is None:
                        raise exc
            if exp.lifecycle_stage == "deleted":
                if not restore_if_deleted:
                    raise TrackingError(
                        f"Experiment '{name}' is deleted in {redact_uri(self.tracking_uri)}. Restore "
                        f"it, choose another tracking.experiment.name, or set "
                        f"tracking.experiment.restore_if_deleted: true in mlflow.yml."
                    )
                client.restore_experiment(exp.experiment_id)
                logger.warning("Restored deleted MLflow experiment '%s'.", name)
            return str(exp.experiment_id)
        except TrackingError:
            raise
        except Exception as exc:
            if _is_unreachable(exc):
                raise self._unavailable(f"get or create experiment '{name}'", exc) from safe_cause(exc)
            raise TrackingError(
                f"Could not get or create experiment '{name}' in {redact_uri(self.tracking_uri)}: {redact_uri(str(exc))}"
            ) from safe_cause(exc)

    def create_run(
        self, experiment_id: str, *, run_name: str | None, tags: Mapping[str, str]
    ) -> Run:
        try:
            return self.client.create_run(experiment_id, tags=dict(tags), run_name=run_name)
        except Exception as exc:
            if _is_unreachable(exc):
                raise self._unavailable("create a run", exc) from safe_cause(exc)
            raise TrackingError(f"Could not create an MLflow run: {redact_uri(str(exc))}") from safe_cause(exc)

    def get_run(self, run_id: str, *, source: str | None = None) -> Run:
        """The run ``run_id``; :class:`RunNotFoundError` when the store does not have it."""
        try:
            run = self.client.get_run(run_id)
        except Exception as exc:
            if _is_not_found(exc) or "invalid" in str(exc).lower():
                raise RunNotFoundError(
                    f"MLflow run '{run_id}'{f' (from {source})' if source else ''} does not exist in "
                    f"{redact_uri(self.tracking_uri)}. Check the id and the tracking URI, or unset "
                    f"it to start a new run."
                ) from safe_cause(exc)
            if _is_unreachable(exc):
                raise self._unavailable(f"look up run '{run_id}'", exc) from safe_cause(exc)
            raise TrackingError(f"Could not look up MLflow run '{run_id}': {redact_uri(str(exc))}") from safe_cause(exc)
        if run.info.lifecycle_stage == "deleted":
            raise RunNotFoundError(
                f"MLflow run '{run_id}'{f' (from {source})' if source else ''} is deleted in "
                f"{redact_uri(self.tracking_uri)}. Restore it or use another run id."
            )
        return run

    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        metrics: Iterable[tuple[str, float, int, int]] = (),
        what: str = "log to",
    ) -> None:
        """Log params, tags and ``(key, value, timestamp_ms, step)`` metrics in as few requests as allowed."""
        from mlflow.entities import Metric, Param, RunTag

        items: list[Any] = [Param(k, v) for k, v in (params or {}).items()]
        items += [RunTag(k, v) for k, v in (tags or {}).items()]
        metric_list = [Metric(k, float(v), int(ts), int(step)) for k, v, ts, step in metrics]
        try:
            for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
                chunk = items[i : i + MAX_PARAMS_TAGS_PER_BATCH]
                self.client.log_batch(
                    run_id,
                    params=[x for x in chunk if isinstance(x, Param)],
                    tags=[x for x in chunk if isinstance(x, RunTag)],
                )
            for i in range(0, len(metric_list), MAX_METRICS_PER_BATCH):
                self.client.log_batch(run_id, metrics=metric_list[i : i + MAX_METRICS_PER_BATCH])
        except Exception as exc:
            if "changing param values is not allowed" in str(exc).lower():
                raise ParameterError(
                    f"MLflow run '{run_id}' already has some of these parameters with a different "
                    f"value (another process logged them first): {redact_uri(str(exc))[:1000]}. "
                    f"Give the processes sharing this run the same parameters, or start a new run."
                ) from safe_cause(exc)
            if _is_unreachable(exc):
                raise self._unavailable(f"{what} run '{run_id}'", exc) from safe_cause(exc)
            raise TrackingError(f"Could not {what} MLflow run '{run_id}': {redact_uri(str(exc))}") from safe_cause(exc)

    def set_terminated(self, run_id: str, status: str) -> None:
        try:
            self.client.set_terminated(run_id, status)
        except Exception as exc:
            if _is_unreachable(exc):
                raise self._unavailable(f"end run '{run_id}' as {status}", exc) from safe_cause(exc)
            raise TrackingError(f"Could not end MLflow run '{run_id}' as {status}: {redact_uri(str(exc))}") from safe_cause(exc)



def check_param_conflicts(run_id: str, new: Mapping[str, str], existing: Mapping[str, str]) -> dict[str, str]:
    """Drop params already logged with the same value; raise on a different value."""
    for key, value in new.items():
        if key in existing and existing[key] != value:
            raise ParameterError(
                f"Parameter '{key}' is already logged in MLflow run '{run_id}' as "
                f"{existing[key][:200]!r}; this Kedro run has {value[:200]!r}. MLflow parameters "
                f"cannot change: give the runs sharing this MLflow run the same parameters, or "
                f"start a new run."
            )
    return {k: v for k, v in new.items() if k not in existing}


# --- MLflow's fluent state ----------------------------------------------------------------
# Two pieces: the active-run stack (per thread; `push_active_run` / `remove_active_run`) and the
# process-wide tracking/registry URIs (`mlflow_globals` / `set_mlflow_globals`). The RunContext
# module decides when to change them; these functions only do it.


@dataclass
class StackEntry:
    """Our entry on one thread's MLflow active-run stack."""

    stack: list[Any]
    entry: Any


def run_entity(run_id: str, experiment_id: str) -> Run:
    """A minimal ``Run`` naming ``run_id``, enough for MLflow's active-run stack (no request)."""
    from mlflow.entities import Run, RunData, RunInfo

    info = RunInfo(
        run_id=run_id,
        experiment_id=experiment_id,
        user_id="",
        status="RUNNING",
        start_time=0,
        end_time=None,
        lifecycle_stage="active",
    )
    return Run(info, RunData())


def fluent_active_run_id() -> str | None:
    """The id of MLflow's active run in the calling thread (None when there is none)."""
    from mlflow.tracking import fluent

    try:
        stack = fluent._active_run_stack.get()
    except AttributeError:  # pragma: no cover - MLflow moved its internals
        return None
    return stack[-1].info.run_id if stack else None


def push_active_run(run: Run) -> StackEntry | None:
    """Make ``run`` MLflow's active run in the calling thread, without touching its status."""
    try:
        from mlflow.tracking import fluent

        entry = StackEntry(stack=fluent._active_run_stack.get(), entry=fluent.ActiveRun(run))
    except Exception:  # MLflow moved its internals: node code loses fluent logging, nothing else
        logger.warning("Could not make the run MLflow's active run; mlflow.* fluent calls in nodes "
                       "will not land in it.", exc_info=True)
        return None
    entry.stack.append(entry.entry)
    return entry


def remove_active_run(entry: StackEntry | None) -> None:
    """Take our entry off its thread's stack, ending (KILLED) runs user code left open above it."""
    if entry is None or entry.entry not in entry.stack:
        return
    stack = entry.stack
    index = stack.index(entry.entry)
    for leftover in stack[index + 1 :]:  # nested runs a node started and never ended
        try:
            import mlflow

            client_for(mlflow.get_tracking_uri()).set_terminated(leftover.info.run_id, "KILLED")
        except Exception:
            logger.debug("Could not end leftover run %s", leftover.info.run_id, exc_info=True)
    del stack[index:]


_GLOBAL_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def mlflow_globals() -> dict[str, Any]:
    """MLflow's process-wide tracking and registry URIs (and their environment variables)."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    return {
        "tracking_uri": tracking_utils._tracking_uri,
        "registry_uri": getattr(registry_utils, "_registry_uri", None),
        "env": {name: os.environ.get(name) for name in _GLOBAL_ENV},
    }


def set_mlflow_globals(tracking_uri: str | None, registry_uri: str | None, env: Mapping[str, str | None] | None = None) -> None:
    """Point MLflow's global URIs at a store; with ``env`` (a :func:`mlflow_globals` snapshot), restore exactly."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils

    mlflow.set_tracking_uri(tracking_uri)
    if registry_uri is not None:
        mlflow.set_registry_uri(registry_uri)
    elif hasattr(registry_utils, "_registry_uri"):
        registry_utils._registry_uri = None
    if env is not None:
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    elif registry_uri is None:
        os.environ.pop("MLFLOW_REGISTRY_URI", None)


# --- run metadata --------------------------------------------------------------------------


def git_commit(project_path: str | Path) -> str | None:
    """The full commit sha of ``project_path`` when it is a git checkout, else None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=str(project_path),
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) >= 7 else None


def current_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None
