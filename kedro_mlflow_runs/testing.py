"""A pytest plugin for testing your pipelines' tracking: a temporary MLflow store and assertions on its runs.

Registered through the ``pytest11`` entry point, so installing kedro-mlflow-runs makes the fixture
available in every test suite of the environment (``-p no:kedro_mlflow_runs`` turns it off).
Loading the plugin imports neither MLflow nor a Kedro session; the fixture imports MLflow when a
test uses it.

Example::

    def test_training_is_tracked(mlflow_store, project_path):
        bootstrap_project(project_path)
        with KedroSession.create(project_path=project_path) as session:
            session.run(pipeline_names=["training"])
        run = mlflow_store.assert_one_run(status="FINISHED")
        run.assert_param("model.C", "0.5").assert_metric("rmse").assert_model("regressor")

``mlflow_store`` points ``MLFLOW_TRACKING_URI`` and ``MLFLOW_REGISTRY_URI`` at a fresh sqlite store
in the test's tmp dir and unsets ``MLFLOW_RUN_ID``, ``MLFLOW_EXPERIMENT_NAME`` and
``MLFLOW_EXPERIMENT_ID`` for the test; all are restored afterwards. A project whose mlflow.yml sets
``server.mlflow_tracking_uri`` keeps it (mlflow.yml wins over the environment): give such tests a
Kedro environment whose mlflow.yml uses ``mlflow_store.uri``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient
    from mlflow.entities import Run

__all__ = ["MlflowStore", "TrackedRunView", "mlflow_store"]

#: ``config.build.TEST_STORE``: every tracked run of the test goes to the fixture's store.
TEST_STORE = "KEDRO_MLFLOW_RUNS_TEST_STORE"
_UNSET = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID")
_MISSING = object()


def _listing(mapping: dict[str, Any], limit: int = 30) -> str:
    if not mapping:
        return "none"
    items = [f"{k}={v!r}" for k, v in sorted(mapping.items())]
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


class TrackedRunView:
    """One MLflow run, as read from the store, with assertions that say what the run did have.

    Every ``assert_*`` method returns the view, so assertions chain.

    Attributes:
        run: the ``mlflow.entities.Run``.
    """

    def __init__(self, store: MlflowStore, run: Run) -> None:
        self._store = store
        self.run = run

    def __repr__(self) -> str:
        return f"<TrackedRunView {self.run_id} {self.status}>"

    @property
    def run_id(self) -> str:
        return str(self.run.info.run_id)

    @property
    def status(self) -> str:
        return str(self.run.info.status)

    @property
    def name(self) -> str:
        return str(self.run.info.run_name or "")

    @property
    def params(self) -> dict[str, str]:
        return dict(self.run.data.params)

    @property
    def metrics(self) -> dict[str, float]:
        """Last value of each metric."""
        return dict(self.run.data.metrics)

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.run.data.tags)

    def _about(self) -> str:
        return f"MLflow run {self.run_id} ({self.status}) in {self._store.uri}"

    def assert_param(self, key: str, value: Any = _MISSING) -> TrackedRunView:
        """The run has parameter ``key`` (equal to ``str(value)`` when given)."""
        params = self.params
        assert key in params, f"{self._about()} has no param {key!r}; its params: {_listing(params)}"
        if value is not _MISSING:
            assert params[key] == str(value), (
                f"{self._about()}: param {key!r} is {params[key]!r}, expected {str(value)!r}")
        return self

    def assert_metric(self, key: str, value: float | None = None, *, rel: float = 1e-9) -> TrackedRunView:
        """The run has metric ``key`` (last value approximately ``value`` when given)."""
        metrics = self.metrics
        assert key in metrics, f"{self._about()} has no metric {key!r}; its metrics: {_listing(metrics)}"
        if value is not None:
            assert metrics[key] == pytest.approx(value, rel=rel), (
                f"{self._about()}: metric {key!r} is {metrics[key]!r}, expected {value!r}")
        return self

    def assert_tag(self, key: str, value: Any = _MISSING) -> TrackedRunView:
        """The run has tag ``key`` (equal to ``str(value)`` when given)."""
        tags = self.tags
        assert key in tags, f"{self._about()} has no tag {key!r}; its tags: {_listing(tags)}"
        if value is not _MISSING:
            assert tags[key] == str(value), f"{self._about()}: tag {key!r} is {tags[key]!r}, expected {str(value)!r}"
        return self

    def models(self) -> dict[str, str]:
        """The run's logged models: name -> ``models:/<model id>``."""
        found = self._store.client.search_logged_models(
            experiment_ids=[self.run.info.experiment_id], filter_string=f"source_run_id = '{self.run_id}'")
        return {m.name: f"models:/{m.model_id}" for m in found}

    def assert_model(self, name: str) -> TrackedRunView:
        """The run logged a model named ``name`` (``log_model(name=...)``, a model logger dataset)."""
        models = self.models()
        assert name in models, f"{self._about()} has no model {name!r}; its models: {sorted(models) or 'none'}"
        return self

    def artifacts(self) -> list[str]:
        """Every artifact file of the run, by path."""
        client = self._store.client
        files: list[str] = []
        folders: list[str | None] = [None]
        while folders:
            for item in client.list_artifacts(self.run_id, folders.pop()):
                if item.is_dir:
                    folders.append(item.path)
                else:
                    files.append(item.path)
        return sorted(files)

    def assert_artifact(self, path: str) -> TrackedRunView:
        """The run has artifact file ``path``, or a folder ``path`` holding files."""
        files = self.artifacts()
        found = path in files or any(f.startswith(path.rstrip("/") + "/") for f in files)
        assert found, f"{self._about()} has no artifact {path!r}; its artifacts: {files or 'none'}"
        return self


class MlflowStore:
    """A temporary MLflow tracking store, and assertions on the runs it holds.

    Attributes:
        uri: the store's tracking URI (``sqlite:///<tmp>/mlflow.db``).
        path: the sqlite database file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.uri = f"sqlite:///{path.as_posix()}"
        self._client: MlflowClient | None = None

    def __repr__(self) -> str:
        return f"<MlflowStore {self.uri}>"

    def close(self) -> None:
        """Close the connections this process opened to the store (the fixture does it after the test)."""
        from .compat.mlflow import close_store_connections
        from .tracking._store import CLIENTS

        CLIENTS.release(self.uri)
        if self._client is not None:
            close_store_connections(self._client)
            self._client = None

    @property
    def client(self) -> MlflowClient:
        """An ``MlflowClient`` on this store (imports MLflow on first use)."""
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    def runs(self, *, experiment: str | None = None, status: str | None = None) -> list[TrackedRunView]:
        """The store's runs (of ``experiment`` and with ``status`` when given), oldest first."""
        client = self.client
        experiments = list(client.search_experiments())
        if experiment is not None:
            experiments = [e for e in experiments if e.name == experiment]
        if not experiments:
            return []
        found = client.search_runs([e.experiment_id for e in experiments], order_by=["attributes.start_time ASC"],
                                   max_results=10000)
        return [TrackedRunView(self, r) for r in found if status is None or r.info.status == status]

    def _describe(self, runs: list[TrackedRunView]) -> str:
        if not runs:
            return "none"
        return "; ".join(
            f"{r.run_id} {r.status} name={r.run.info.run_name!r} error={r.tags.get('kedro.error.message')!r}"
            if r.status == "FAILED" else f"{r.run_id} {r.status} name={r.run.info.run_name!r}"
            for r in runs)

    def assert_one_run(self, status: str | None = "FINISHED", *, experiment: str | None = None) -> TrackedRunView:
        """The store holds exactly one run (in ``experiment`` when given), with ``status`` (None: any).

        Returns:
            The run, to assert on further.
        """
        runs = self.runs(experiment=experiment)
        where = f"experiment {experiment!r} of {self.uri}" if experiment else self.uri
        assert len(runs) == 1, f"expected one MLflow run in {where}, found {len(runs)}: {self._describe(runs)}"
        (run,) = runs
        if status is not None:
            error = run.tags.get("kedro.error.message")
            detail = f" (kedro.error.type={run.tags.get('kedro.error.type')!r}, message={error!r})" if error else ""
            assert run.status == status, f"MLflow run {run.run_id} is {run.status}, expected {status}{detail}"
        return run


def _template(factory: pytest.TempPathFactory) -> Path:
    """An initialised empty store, made once per test session (creating one costs about 2 s)."""
    root = factory.getbasetemp() / "kedro_mlflow_runs_store"
    db = root / "mlflow.db"
    if not db.exists():
        from mlflow import MlflowClient

        root.mkdir(parents=True, exist_ok=True)
        partial = root / "creating.db"
        cwd = os.getcwd()
        os.chdir(root)  # MLflow roots the Default experiment's artifacts in the working directory: keep them here
        try:
            MlflowClient(tracking_uri=f"sqlite:///{partial.as_posix()}").search_experiments()
        finally:
            os.chdir(cwd)
        partial.rename(db)
    return db


def _open_store(folder: Path, template: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowStore:
    """A copy of ``template`` in ``folder``, set in the environment through ``monkeypatch``."""
    folder.mkdir(parents=True)
    db = folder / "mlflow.db"
    shutil.copy(template, db)
    store = MlflowStore(db)
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store.uri)
    monkeypatch.setenv(TEST_STORE, store.uri)  # over a tracking URI the project's mlflow.yml pins
    return store


@pytest.fixture
def mlflow_store(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowStore]:
    """A fresh sqlite MLflow store in the test's tmp dir, set as ``MLFLOW_TRACKING_URI`` for the test
    (``monkeypatch`` gives the environment back after the test). Afterwards the connections opened
    to it are closed, so a long suite does not run out of file descriptors."""
    store = _open_store(tmp_path / "mlflow_store", _template(tmp_path_factory), monkeypatch)
    yield store
    store.close()
