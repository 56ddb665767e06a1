"""kedro-mlflow's dataset names and arguments, honoured: metric save/load args, the dict of metric
histories, a tracking dataset's model_uri, a registry dataset's stage_or_version, an artifact's
credentials, and alias/tags for the version registered on save."""

from __future__ import annotations

import warnings

import pytest
from conftest import all_runs, user_metrics
from io_support import active_run, logged_models, project_store
from kedro.io import DataCatalog

IO = "kedro_mlflow_runs.io"


@pytest.fixture
def sk_model():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def test_metric_save_modes_and_load_step(project, client_for):
    catalog = DataCatalog.from_config({
        "appended": {"type": f"{IO}.metrics.MlflowMetricDataset", "key": "a", "save_args": {"mode": "append"}},
        "overwritten": {"type": f"{IO}.metrics.MlflowMetricDataset", "key": "o", "save_args": {"mode": "overwrite"}},
        "at_one": {"type": f"{IO}.metrics.MlflowMetricDataset", "key": "a", "load_args": {"step": 1}},
    })
    with active_run(project) as ctx:
        ctx.log_metrics({"o": 0.0}, step=5)  # overwrite saves at the latest step there is
        for value in (1.0, 2.0, 3.0):
            catalog.save("appended", value)
            catalog.save("overwritten", value)
        assert catalog.load("at_one") == 2.0
    client = client_for(project)
    assert [(m.step, m.value) for m in client.get_metric_history(ctx.run_id, "a")] == [(0, 1.0), (1, 2.0), (2, 3.0)]
    assert {m.step for m in client.get_metric_history(ctx.run_id, "o")} == {5}
    assert client.get_run(ctx.run_id).data.metrics["o"] == 3.0


def test_metric_histories_in_kedro_mlflows_formats(project):
    history = DataCatalog.from_config({"h": {"type": f"{IO}.metrics.MlflowMetricHistoryDataset", "key": "loss",
                                             "load_args": {"mode": "history"}, "save_args": {"mode": "history"}}})
    many = DataCatalog.from_config({"m": {"type": f"{IO}.metrics.MlflowMetricsHistoryDataset", "prefix": "eval"}})
    with active_run(project):
        history.save("h", [{"value": 0.5, "step": 3}, {"value": 0.25, "step": 4}])
        assert [(p["step"], p["value"]) for p in history.load("h")] == [(3, 0.5), (4, 0.25)]
        many.save("m", {"acc": {"value": 0.9, "step": 1}, "f1": [{"value": 0.7, "step": 0}, {"value": 0.8, "step": 1}]})
        loaded = many.load("m")
    assert [(p["step"], p["value"]) for p in loaded["f1"]] == [(0, 0.7), (1, 0.8)]
    assert [(p["step"], p["value"]) for p in loaded["acc"]] == [(1, 0.9)]


def test_registry_labels_on_save_model_uri_and_stage_or_version_on_load(project, client_for, sk_model):
    logger = {"type": f"{IO}.models.MlflowModelTrackingDataset", "flavor": "mlflow.sklearn",
              "save_args": {"name": "clf", "registered_model_name": "churn", "registered_model_alias": "champion",
                            "registered_model_version_tags": {"validated": "yes"}}}
    with active_run(project) as ctx:
        DataCatalog.from_config({"m": logger}).save("m", sk_model)
    client = client_for(project)
    version = client.get_model_version_by_alias("churn", "champion")
    assert str(version.version) == "1" and version.tags == {"validated": "yes"} and version.run_id == ctx.run_id
    (model,) = logged_models(client, ctx.run_id)

    with project_store(project):
        by_uri = DataCatalog.from_config({"m": {**logger, "load_args": {"model_uri": f"models:/{model.model_id}"}}})
        assert list(by_uri.load("m").predict([[0.0], [3.0]])) == [0, 1]
        by_version = DataCatalog.from_config({"r": {"type": f"{IO}.models.MlflowModelRegistryDataset",
                                                    "model_name": "churn", "stage_or_version": 1,
                                                    "flavor": "mlflow.sklearn"}})
        assert list(by_version.load("r").predict([[3.0]])) == [1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        staged = DataCatalog.from_config({"r": {"type": f"{IO}.models.MlflowModelRegistryDataset",
                                                "model_name": "churn", "stage_or_version": "Production"}})
        assert staged.get("r").model_uri == "models:/churn/Production"
    assert any("deprecated stages" in str(w.message) for w in caught)
    assert len(all_runs(client)) == 1


def test_numpy_scalars_are_metric_values(project, client_for):
    import numpy as np

    catalog = DataCatalog.from_config({"s": {"type": f"{IO}.metrics.MlflowMetricsDataset"}})
    with active_run(project) as ctx:
        catalog.save("s", {"acc": np.float64(0.9), "n": np.int64(3)})
    assert user_metrics(client_for(project).get_run(ctx.run_id).data.metrics) == {"acc": 0.9, "n": 3.0}


def test_artifact_credentials_reach_the_wrapped_dataset(project, tmp_path):
    catalog = DataCatalog.from_config({"a": {
        "type": f"{IO}.artifacts.MlflowArtifactDataset", "credentials": {"use_listings_cache": False},
        "dataset": {"type": "json.JSONDataset", "filepath": str(tmp_path / "deep" / "a.json")}}})
    assert catalog.get("a").dataset._fs.storage_options["use_listings_cache"] is False  # given to fsspec
    with active_run(project):
        catalog.save("a", {"x": 1})
    assert (tmp_path / "deep" / "a.json").exists()
