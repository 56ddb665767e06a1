"""Metric datasets: values, histories, dicts; batched requests; run selection."""

from __future__ import annotations

import pickle
from copy import deepcopy

import pytest
from conftest import all_runs, user_metrics
from io_support import HISTORY, METRIC, METRICS, active_run, new_run, project_store
from kedro.io import DataCatalog
from kedro.io.core import DatasetError

from kedro_mlflow_runs import NoActiveRunError, RunConflictError
from kedro_mlflow_runs.io import MlflowMetricDataset, MlflowMetricHistoryDataset, MlflowMetricsDataset


def test_metric_value_save_and_load(project, client_for):
    catalog = DataCatalog.from_config({"acc": {"type": METRIC, "key": "accuracy", "step": 3}})
    with active_run(project) as ctx:
        catalog.save("acc", 0.9)
        catalog.save("acc", {"value": 0.95, "step": 4})
        assert catalog.load("acc") == 0.95
    history = client_for(project).get_metric_history(ctx.run_id, "accuracy")
    assert sorted((m.step, m.value) for m in history) == [(3, 0.9), (4, 0.95)]


def test_history_list_and_dict_go_in_batches_of_1000(project, client_for, mocker):
    from mlflow import MlflowClient

    spy = mocker.spy(MlflowClient, "log_batch")
    ds = MlflowMetricHistoryDataset(key="loss")
    values = [float(i) for i in range(2500)]
    with active_run(project) as ctx:
        ds.save(values)
        metric_calls = [c for c in spy.call_args_list if c.kwargs.get("metrics")]
        assert [len(c.kwargs["metrics"]) for c in metric_calls] == [1000, 1000, 500]
        assert ds.load() == values
        MlflowMetricHistoryDataset(key="sparse").save({10: 1.0, 20: 2.0})
        assert MlflowMetricHistoryDataset(key="sparse", load_as="dict").load() == {10: 1.0, 20: 2.0}
    assert len(client_for(project).get_metric_history(ctx.run_id, "loss")) == 2500


def test_metrics_dict_in_one_request_with_prefix(project, client_for, mocker):
    from mlflow import MlflowClient

    spy = mocker.spy(MlflowClient, "log_batch")
    ds = MlflowMetricsDataset(prefix="eval")
    with active_run(project) as ctx:
        ds.save({"f1": 0.5, "auc": {"value": 0.7, "step": 2}, "curve": [0.1, 0.2]})
        assert len([c for c in spy.call_args_list if c.kwargs.get("metrics")]) == 1
        assert ds.load() == {"f1": 0.5, "auc": 0.7, "curve": 0.2}
    metrics = client_for(project).get_run(ctx.run_id).data.metrics
    assert metrics == {"eval.f1": 0.5, "eval.auc": 0.7, "eval.curve": 0.2}


def test_metric_run_selection(project, client_for):
    client = client_for(project)
    earlier = new_run(client)
    with project_store(project):
        MlflowMetricDataset(key="m", run_id=earlier).save(1.0)  # set, no active run
        with pytest.raises(NoActiveRunError, match=r"MlflowMetricDataset\(no catalog entry\) cannot save"):
            MlflowMetricDataset(key="m").save(1.0)
    with active_run(project) as ctx:
        with pytest.raises(RunConflictError, match=f"'{earlier}'.*'{ctx.run_id}'"):
            MlflowMetricDataset(key="m", run_id=earlier).save(2.0)
        assert MlflowMetricDataset(key="m", run_id=earlier).load() == 1.0  # load from run_id
    assert user_metrics(client.get_run(earlier).data.metrics) == {"m": 1.0}
    assert user_metrics(client.get_run(ctx.run_id).data.metrics) == {}
    assert len(all_runs(client)) == 2


def test_metric_errors_name_the_dataset(project):
    with active_run(project):
        with pytest.raises(DatasetError, match=r"no metric key.*Set `key:`"):
            MlflowMetricDataset().save(1.0)
        with pytest.raises(DatasetError, match="metric 'x' must be a number, got str"):
            MlflowMetricDataset(key="x").save("high")
        with pytest.raises(DatasetError, match="has no metric 'never'"):
            MlflowMetricDataset(key="never").load()
        with pytest.raises(DatasetError, match="list of values or a"):
            MlflowMetricHistoryDataset(key="h").save(3.0)
        with pytest.raises(DatasetError, match="expects a dict of metrics"):
            MlflowMetricsDataset().save([1.0])


def test_metric_datasets_pickle_and_copy():
    for ds in (MlflowMetricDataset(key="a", run_id="r"), MlflowMetricHistoryDataset(key="b", load_as="dict"),
               MlflowMetricsDataset(prefix="p")):
        for twin in (pickle.loads(pickle.dumps(ds)), deepcopy(ds)):
            assert type(twin) is type(ds) and twin._describe() == ds._describe()


def test_history_dataset_type_path_resolves():
    assert type(DataCatalog.from_config({"h": {"type": HISTORY, "key": "k"}}).get("h")) is MlflowMetricHistoryDataset
    assert type(DataCatalog.from_config({"m": {"type": METRICS}}).get("m")) is MlflowMetricsDataset
