"""MlflowModelSaverDataset: local save/load, Kedro versioning, and replace-only-when-complete."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from io_support import SAVER
from kedro.io import DataCatalog, Version
from kedro.io.core import DatasetError

from kedro_mlflow_runs.io import local_models as models_module
from kedro_mlflow_runs.io.models import MlflowModelSaverDataset

X = np.array([[0.0], [1.0], [2.0], [3.0]])


def _fit(c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c).fit(X, [0, 0, 1, 1])


@pytest.fixture(scope="module")
def models():
    return _fit(1.0), _fit(2.0)


def test_unversioned_save_load_and_replace(tmp_path, models):
    first, second = models
    path = tmp_path / "data" / "06_models" / "clf"
    ds = MlflowModelSaverDataset(filepath=str(path), flavor="mlflow.sklearn")
    assert not ds.exists()
    ds.save(first)
    assert ds.exists() and ds.load().C == 1.0
    ds.save(second)
    assert ds.load().C == 2.0
    assert sorted(p.name for p in path.parent.iterdir()) == ["clf"]  # no temporary folder left
    requirements = (path / "requirements.txt").read_text().split()
    assert any(r.startswith("scikit-learn==") for r in requirements)
    assert any(r.startswith("mlflow==") for r in requirements)


def test_failed_save_keeps_the_previous_model_and_cleans_up(tmp_path, models, mocker):
    first, second = models
    path = tmp_path / "clf"
    ds = MlflowModelSaverDataset(filepath=str(path), flavor="mlflow.sklearn")
    ds.save(first)
    import mlflow.sklearn

    real = mlflow.sklearn.save_model

    def half_written(*args, **kwargs):  # writes part of the model, then fails
        real(*args, **kwargs)
        raise OSError("disk full")

    mocker.patch("mlflow.sklearn.save_model", side_effect=half_written)
    with pytest.raises(DatasetError, match="disk full"):
        ds.save(second)
    mocker.stopall()
    assert ds.load().C == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf"]


def test_replace_without_atomic_exchange_falls_back_to_renames(tmp_path, models, mocker):
    first, second = models
    mocker.patch.object(models_module, "_exchange", return_value=False)
    ds = MlflowModelSaverDataset(filepath=str(tmp_path / "clf"), flavor="mlflow.sklearn")
    ds.save(first)
    ds.save(second)
    assert ds.load().C == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf"]


def test_atomic_exchange_swaps_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "f").write_text("A")
    (b / "f").write_text("B")
    if not models_module._exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available on this system")
    assert (a / "f").read_text() == "B" and (b / "f").read_text() == "A"


def test_versioned_through_yaml_catalog(tmp_path, models):
    first, second = models
    path = (tmp_path / "clf").as_posix()
    config = {"clf": {"type": SAVER, "flavor": "mlflow.sklearn", "filepath": path, "versioned": True}}
    DataCatalog.from_config(yaml.safe_load(yaml.safe_dump(config)), save_version="2024-01-01T00.00.00.000Z").save("clf", first)
    DataCatalog.from_config(config, save_version="2024-01-02T00.00.00.000Z").save("clf", second)
    versions = sorted(p.name for p in (tmp_path / "clf").iterdir())
    assert versions == ["2024-01-01T00.00.00.000Z", "2024-01-02T00.00.00.000Z"]
    assert (tmp_path / "clf" / versions[0] / "clf" / "MLmodel").exists()
    assert DataCatalog.from_config(config).load("clf").C == 2.0  # the latest
    pinned = DataCatalog.from_config(config, load_versions={"clf": "2024-01-01T00.00.00.000Z"})
    assert pinned.load("clf").C == 1.0


def test_versioned_save_never_overwrites_a_version(tmp_path, models):
    ds = MlflowModelSaverDataset(
        filepath=str(tmp_path / "clf"), flavor="mlflow.sklearn", version=Version(None, "v1")
    )
    ds.save(models[0])
    with pytest.raises(DatasetError, match="must not exist"):
        ds.save(models[1])
    assert MlflowModelSaverDataset(
        filepath=str(tmp_path / "clf"), flavor="mlflow.sklearn", version=Version("v1", None)
    ).load().C == 1.0


def test_load_of_a_missing_model_names_the_path(tmp_path):
    ds = MlflowModelSaverDataset(filepath=str(tmp_path / "nothing"), flavor="mlflow.sklearn")
    with pytest.raises(DatasetError, match=r"MlflowModelSaverDataset\(flavor 'mlflow.sklearn', filepath '.*nothing'\): no model"):
        ds.load()


def test_remote_filepath_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="only local paths"):
        MlflowModelSaverDataset(filepath="s3://bucket/model", flavor="mlflow.sklearn")


def test_saver_logs_nothing(tmp_path, models, project, client_for):
    from conftest import all_runs, user_artifacts
    from io_support import active_run

    with active_run(project) as ctx:
        MlflowModelSaverDataset(filepath=str(tmp_path / "clf"), flavor="mlflow.sklearn").save(models[0])
    client = client_for(project)
    assert user_artifacts(client.list_artifacts(ctx.run_id)) == []
    assert len(all_runs(client)) == 1
