"""Shared fixtures: real Kedro projects in tmp dirs, a real sqlite MLflow store per project."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["KEDRO_DISABLE_TELEMETRY"] = "1"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

sys.path.insert(0, str(Path(__file__).parent))

from kedro_project import make_project, store_uri  # noqa: E402

_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_REGISTRY_URI",
               "MLFLOW_EXPERIMENT_ID", "KEDRO_MLFLOW_RUNS_HANDLE")


@pytest.fixture(autouse=True)
def _clean_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees another's MLflow environment, and none leaves a run open."""
    for name in _MLFLOW_ENV:
        monkeypatch.delenv(name, raising=False)
    yield
    from kedro_mlflow_runs import active_contexts

    leftover = active_contexts()
    if "mlflow" in sys.modules:
        import mlflow

        assert mlflow.active_run() is None, "a test left an MLflow fluent run active"
    assert not leftover, f"a test left RunContexts active: {leftover}"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised, empty MLflow sqlite store that projects copy (creating one costs ~2 s)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def project_factory(tmp_path: Path, template_db: Path) -> Callable[..., Path]:
    """``project_factory(mlflow_yml=..., ...)`` writes a Kedro project with its own sqlite store."""

    def make(**kwargs: Any) -> Path:
        kwargs.setdefault("template_db", template_db)
        return make_project(tmp_path, **kwargs)

    return make


@pytest.fixture
def project(project_factory: Callable[..., Path]) -> Path:
    return project_factory()


@pytest.fixture
def client_for() -> Callable[[Path], Any]:
    """``client_for(project)``: an MlflowClient on that project's default store."""
    from mlflow import MlflowClient

    return lambda project: MlflowClient(tracking_uri=store_uri(project))


def all_runs(client: Any) -> list[Any]:
    """Every run in every experiment (active and deleted experiments alike)."""
    from mlflow.entities import ViewType

    exps = client.search_experiments(view_type=ViewType.ALL)
    if not exps:
        return []
    return client.search_runs([e.experiment_id for e in exps], run_view_type=ViewType.ALL)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real `mlflow server` (PostgreSQL backend, proxied artifacts) for the whole session."""
    from mlflow_server import MlflowServer, TempDatabase

    with TempDatabase() as db:
        server = MlflowServer(db.uri, tmp_path_factory.mktemp("mlflow-server"))
        server.start()
        try:
            yield server
        finally:
            server.stop()
