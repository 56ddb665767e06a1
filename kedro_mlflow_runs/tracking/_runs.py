"""Tracking calls about experiments, runs, parameters, tags, metrics and dataset inputs."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._redact import redact_uri, safe_cause
from ..errors import RunNotFoundError, TrackingError, TrackingUnavailableError
from ._base import MAX_DATASETS_PER_BATCH, MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH, _Calls
from ._errors import is_not_found

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.entities import Run

__all__ = ["RunCalls"]

logger = logging.getLogger(__name__)


class RunCalls(_Calls):
    """Experiments, runs, params, tags, metrics, dataset inputs."""

    __slots__ = ()

    def ensure_experiment(
        self,
        name: str,
        *,
        artifact_location: str | None = None,
        restore_if_deleted: bool = True,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """The id of experiment ``name``, created (with ``artifact_location`` and ``tags``) or
        restored when needed."""
        return self._call(
            f"get or create experiment '{name}'",
            lambda: self._ensure_experiment(name, artifact_location, restore_if_deleted, tags),
        )

    def _ensure_experiment(
        self, name: str, artifact_location: str | None, restore_if_deleted: bool, tags: Mapping[str, str] | None
    ) -> str:
        from mlflow.exceptions import MlflowException

        client = self.client
        exp = client.get_experiment_by_name(name)
        if exp is None:
            try:
                return str(client.create_experiment(name, artifact_location=artifact_location,
                                                    tags=dict(tags) if tags else None))
            except MlflowException:  # another process created it meanwhile
                exp = client.get_experiment_by_name(name)
                if exp is None:
                    raise
        if exp.lifecycle_stage == "deleted":
            if not restore_if_deleted:
                raise TrackingError(
                    f"Experiment '{name}' is deleted in {redact_uri(self.tracking_uri)}. Restore it, "
                    f"choose another tracking.experiment.name, or set "
                    f"tracking.experiment.restore_if_deleted: true in mlflow.yml.",
                    key="tracking.experiment.name",
                )
            client.restore_experiment(exp.experiment_id)
            logger.warning("Restored deleted MLflow experiment '%s'.", name)
        return str(exp.experiment_id)

    def create_run(self, experiment_id: str, *, run_name: str | None, tags: Mapping[str, str]) -> Run:
        return self._call(
            "create an MLflow run",
            lambda: self.client.create_run(experiment_id, tags=dict(tags), run_name=run_name),
        )

    def get_run(self, run_id: str, *, source: str | None = None) -> Run:
        """The run ``run_id``; :class:`RunNotFoundError` when the store does not have it."""
        where = f" (from {source})" if source else ""
        try:
            run = self.client.get_run(run_id)
        except (TrackingError, TrackingUnavailableError):  # the store itself did not open
            raise
        except Exception as exc:
            if is_not_found(exc) or "invalid" in str(exc).lower():
                raise RunNotFoundError(
                    f"MLflow run '{run_id}'{where} does not exist in {redact_uri(self.tracking_uri)}. "
                    f"Check the id and the tracking URI, or unset it to start a new run.",
                    run_id=run_id,
                ) from safe_cause(exc)
            raise self.translate(f"look up MLflow run '{run_id}'", exc, run_id=run_id) from safe_cause(exc)
        if run.info.lifecycle_stage == "deleted":
            raise RunNotFoundError(
                f"MLflow run '{run_id}'{where} is deleted in {redact_uri(self.tracking_uri)}. Restore "
                f"it or use another run id.",
                run_id=run_id,
            )
        return run

    def running_kedro_runs(self, experiment_name: str) -> list[Run]:
        """The runs of ``experiment_name`` that a ``kedro run`` (or ``kedro mlflow open-run``) opened and that
        are still RUNNING, oldest first."""

        def search() -> list[Run]:
            exp = self.client.get_experiment_by_name(experiment_name)
            if exp is None:
                return []
            runs = self.client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'",
                                           order_by=["attributes.start_time ASC"], max_results=1000)
            return [r for r in runs if "kedro.run_id" in r.data.tags or "kedro.opened_by" in r.data.tags]

        return self._call(f"search the RUNNING runs of experiment '{experiment_name}'", search)

    def find_experiment(self, name: str) -> Any | None:
        """Experiment ``name`` (active or deleted), or None when the store has none of that name."""
        return self._call(f"look up experiment '{name}'", lambda: self.client.get_experiment_by_name(name))

    def experiment_name(self, experiment_id: str) -> str:
        """The name of experiment ``experiment_id``."""
        return self._call(f"look up experiment {experiment_id}",
                          lambda: str(self.client.get_experiment(experiment_id).name))

    def experiment_names(self) -> list[str]:
        """The names of the store's active experiments, sorted."""
        return sorted(self._call("list the experiments", lambda: [e.name for e in self.client.search_experiments()]))

    def search_runs(self, experiment_id: str, *, status: str | None = None, max_results: int = 20) -> list[Run]:
        """The active runs of ``experiment_id`` (only those with ``status`` when given), newest first."""
        where = f"attributes.status = '{status}'" if status else ""
        return self._call(
            f"search the runs of experiment {experiment_id}",
            lambda: list(self.client.search_runs([experiment_id], where, order_by=["attributes.start_time DESC"],
                                                 max_results=max_results)),
        )

    def child_runs(self, experiment_id: str, parent_run_id: str) -> list[Run]:
        """The active child runs of ``parent_run_id`` (``mlflow.parentRunId``), oldest first."""
        where = f"tags.`mlflow.parentRunId` = '{parent_run_id}'"
        return self._call(
            f"search the child runs of MLflow run {parent_run_id}",
            lambda: list(self.client.search_runs([experiment_id], where, order_by=["attributes.start_time ASC"],
                                                 max_results=1000)),
        )

    def delete_run(self, run_id: str) -> None:
        self._call(f"delete MLflow run {run_id}", lambda: self.client.delete_run(run_id), run_id=run_id)

    def artifact_files(self, run_id: str, *, limit: int = 200) -> list[Any]:
        """The files of run ``run_id``'s artifact tree, depth first, at most ``limit`` of them."""

        def walk() -> list[Any]:
            files: list[Any] = []
            folders: list[str | None] = [None]
            while folders and len(files) < limit:
                for item in self.client.list_artifacts(run_id, folders.pop()):
                    if item.is_dir:
                        folders.append(item.path)
                    elif len(files) < limit:
                        files.append(item)
            return sorted(files, key=lambda f: f.path)

        return self._call(f"list the artifacts of MLflow run '{run_id}'", walk, run_id=run_id)

    def logged_models(self, run_id: str, experiment_id: str) -> list[Any]:
        """The LoggedModels whose source run is ``run_id``, by name."""
        found = self._call(
            f"search models of MLflow run '{run_id}'",
            lambda: list(self.client.search_logged_models(experiment_ids=[experiment_id],
                                                          filter_string=f"source_run_id = '{run_id}'")),
            run_id=run_id,
        )
        return sorted(found, key=lambda m: (m.name, m.creation_timestamp))

    def set_terminated(self, run_id: str, status: str) -> None:
        self._call(
            f"end run '{run_id}' as {status}",
            lambda: self.client.set_terminated(run_id, status),
            run_id=run_id,
        )

    def run_status(self, run_id: str) -> str:
        """The run's status (RUNNING, FINISHED, FAILED, KILLED, ...): one request."""
        run = self._call(f"read the status of MLflow run '{run_id}'", lambda: self.client.get_run(run_id),
                         run_id=run_id)
        return str(run.info.status)

    def run_tags(self, run_id: str) -> dict[str, str]:
        """The run's tags: one request."""
        run = self._call(f"read the tags of MLflow run '{run_id}'", lambda: self.client.get_run(run_id), run_id=run_id)
        return dict(run.data.tags)

    def delete_tags(self, run_id: str, keys: Iterable[str]) -> None:
        """Delete the run's tags ``keys`` (one request each; a tag already gone is no error)."""
        def delete() -> None:
            for key in keys:
                try:
                    self.client.delete_tag(run_id, key)
                except Exception as exc:  # deleted meanwhile (another process settled the same run)
                    if "not found" not in str(exc).lower() and "no tag" not in str(exc).lower():
                        raise

        self._call(f"delete tags of MLflow run '{run_id}'", delete, run_id=run_id)

    # -- params, tags, metrics ---------------------------------------------------------------

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

        def send() -> None:
            for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
                chunk = items[i : i + MAX_PARAMS_TAGS_PER_BATCH]
                self.client.log_batch(
                    run_id,
                    params=[x for x in chunk if isinstance(x, Param)],
                    tags=[x for x in chunk if isinstance(x, RunTag)],
                )
            for i in range(0, len(metric_list), MAX_METRICS_PER_BATCH):
                self.client.log_batch(run_id, metrics=metric_list[i : i + MAX_METRICS_PER_BATCH])

        self._call(f"{what} MLflow run '{run_id}'", send, run_id=run_id)

    def metric_history(self, run_id: str, key: str) -> list[Any]:
        """Every point of metric ``key``, ordered by step then time."""
        history = self._call(
            f"read metric '{key}' of MLflow run '{run_id}'",
            lambda: self.client.get_metric_history(run_id, key),
            run_id=run_id,
        )
        return sorted(history, key=lambda m: (m.step, m.timestamp))

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        run = self._call(f"read the metrics of MLflow run '{run_id}'", lambda: self.client.get_run(run_id),
                         run_id=run_id)
        return {k: float(v) for k, v in run.data.metrics.items()}

    def log_inputs(self, run_id: str, datasets: Iterable[Mapping[str, Any]]) -> None:
        """Log dataset inputs of run ``run_id`` in one request (per 1000).

        Each mapping has ``name``, ``digest``, ``source_type``, ``source`` and optionally ``schema``,
        ``profile`` (JSON strings) and ``context`` (the ``mlflow.data.context`` input tag).
        """
        from mlflow.entities import Dataset, DatasetInput, InputTag

        inputs = [
            DatasetInput(
                Dataset(name=d["name"], digest=d["digest"], source_type=d["source_type"], source=d["source"],
                        schema=d.get("schema"), profile=d.get("profile")),
                tags=[InputTag("mlflow.data.context", d["context"])] if d.get("context") else [],
            )
            for d in datasets
        ]

        def send() -> None:
            for i in range(0, len(inputs), MAX_DATASETS_PER_BATCH):
                self.client.log_inputs(run_id, datasets=inputs[i : i + MAX_DATASETS_PER_BATCH])

        if inputs:
            self._call(f"log the dataset inputs of MLflow run '{run_id}'", send, run_id=run_id)
