"""The user's own active run: `with mlflow.start_run():` in a plain Python process (a notebook, a
script, a test) and the plugin's datasets log into that run, and never end it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import all_runs, user_artifacts, user_metrics
from io_support import LOGGER, logged_models
from kedro.io import DataCatalog
from kedro.io.core import DatasetError
from kedro_project import store_uri

from kedro_mlflow_runs import RunConflictError


@contextlib.contextmanager
def tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow at ``uri`` as a user script would, and put back what was there."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    before = utils._tracking_uri
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        utils.set_tracking_uri(before)
        import os

        os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture
def sk_model():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def _catalog(tmp_path: Path, **logger_args) -> DataCatalog:
    return DataCatalog.from_config({
        "model": {"type": LOGGER, "flavor": "mlflow.sklearn", "save_args": {"name": "model"}, **logger_args},
        "report": {"type": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset",
                   "dataset": {"type": "json.JSONDataset", "filepath": str(tmp_path / "report.json")}},
        "accuracy": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset", "key": "accuracy"},
        "loss": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricHistoryDataset", "key": "loss"},
    })


def test_datasets_log_into_the_run_the_user_started_and_leave_it_open(project, client_for, sk_model, tmp_path):
    import mlflow

    catalog = _catalog(tmp_path)
    with tracking_uri(store_uri(project)):
        with mlflow.start_run() as run:
            catalog.save("model", sk_model)
            catalog.save("report", {"ok": True})
            catalog.save("accuracy", 0.75)
            catalog.save("loss", [0.5, 0.25])
            assert mlflow.active_run().info.run_id == run.info.run_id  # still open: the user ends it
            assert list(catalog.load("model").predict([[0.0], [3.0]])) == [0, 1]
            assert catalog.load("accuracy") == 0.75 and catalog.load("loss") == [0.5, 0.25]
        with pytest.raises(DatasetError, match="no MLflow run is active"):  # after the block: none is created
            catalog.save("accuracy", 0.8)
    client = client_for(project)
    (stored,) = all_runs(client)
    assert stored.info.run_id == run.info.run_id and stored.info.status == "FINISHED"
    assert user_metrics(stored.data.metrics) == {"accuracy": 0.75, "loss": 0.25}
    assert [m.name for m in logged_models(client, run.info.run_id)] == ["model"]
    assert [a.path for a in user_artifacts(client.list_artifacts(run.info.run_id))] == ["report.json"]


def test_a_run_id_other_than_the_users_run_refuses_the_save_and_writes_nothing(project, client_for, sk_model,
                                                                               tmp_path):
    import mlflow

    client = client_for(project)
    with tracking_uri(store_uri(project)):
        with mlflow.start_run() as other:
            pass
        catalog = _catalog(tmp_path, run_id=other.info.run_id)
        with mlflow.start_run() as mine:
            with pytest.raises(DatasetError, match=f"differs from the active MLflow run '{mine.info.run_id}' you "
                                                  f"started in this thread") as info:
                catalog.save("model", sk_model)
            assert isinstance(info.value, RunConflictError) or isinstance(info.value.__cause__, RunConflictError)
    assert logged_models(client) == []
    assert {r.info.status for r in all_runs(client)} == {"FINISHED"}


def test_the_same_run_id_as_the_users_run_is_no_conflict(project, client_for, tmp_path):
    import mlflow

    with tracking_uri(store_uri(project)):
        with mlflow.start_run() as run:
            DataCatalog.from_config({"m": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset",
                                           "key": "m", "run_id": run.info.run_id}}).save("m", 1.0)
    (stored,) = all_runs(client_for(project))
    assert user_metrics(stored.data.metrics) == {"m": 1.0}
