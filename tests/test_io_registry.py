"""MlflowModelRegistryDataset: register with the logger, load by version, alias, latest."""

from __future__ import annotations

import numpy as np
import pytest
from io_support import REGISTRY_DS, active_run, project_store
from kedro.io import DataCatalog
from kedro.io.core import DatasetError

from kedro_mlflow_runs.io import MlflowModelLoggerDataset, MlflowModelRegistryDataset

X = np.array([[0.0], [1.0], [2.0], [3.0]])


def test_register_then_load_by_version_alias_and_latest(project, client_for):
    from sklearn.linear_model import LogisticRegression

    logger_ds = MlflowModelLoggerDataset(flavor="mlflow.sklearn", save_args={"registered_model_name": "clf"})
    for c in (1.0, 2.0):
        with active_run(project):
            logger_ds.save(LogisticRegression(C=c).fit(X, [0, 0, 1, 1]))
    client = client_for(project)
    assert sorted(str(v.version) for v in client.search_model_versions("name='clf'")) == ["1", "2"]
    client.set_registered_model_alias("clf", "champion", "1")

    catalog = DataCatalog.from_config({
        "v1": {"type": REGISTRY_DS, "model_name": "clf", "model_version": 1, "flavor": "mlflow.sklearn"},
        "champion": {"type": REGISTRY_DS, "model_name": "clf", "alias": "champion", "flavor": "mlflow.sklearn"},
        "latest": {"type": REGISTRY_DS, "model_name": "clf", "flavor": "mlflow.sklearn"},
        "pyfunc": {"type": REGISTRY_DS, "model_name": "clf", "model_version": 2},
    })
    with project_store(project):
        assert catalog.load("v1").C == 1.0
        assert catalog.load("champion").C == 1.0
        assert catalog.load("latest").C == 2.0
        assert list(catalog.load("pyfunc").predict(X)) == [0, 0, 1, 1]
    with active_run(project):  # inside a run, the run's store is used
        assert catalog.load("latest").C == 2.0
        assert MlflowModelRegistryDataset(model_name="clf", version=1, flavor="mlflow.sklearn").load().C == 1.0


def test_version_and_alias_together_is_an_error():
    with pytest.raises(DatasetError, match=r"model 'clf'.*either version \(1\) or alias \('champion'\), not both"):
        MlflowModelRegistryDataset(model_name="clf", version=1, alias="champion")


def test_unknown_model_and_save_are_clear_errors(project):
    ds = MlflowModelRegistryDataset(model_name="nope", alias="x")
    with project_store(project), pytest.raises(DatasetError, match=r"could not load models:/nope@x from the registry"):
        ds.load()
    with pytest.raises(DatasetError, match="read-only.*registered_model_name: nope"):
        ds.save(object())
