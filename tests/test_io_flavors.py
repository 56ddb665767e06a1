"""Flavors (built-in and custom, both pyfunc workflows), validation errors, requirements, pickling."""

from __future__ import annotations

import pickle
from copy import deepcopy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from io_support import CUSTOM_FLAVOR, LOGGER, SAVER, active_run, logged_models, write_module
from kedro.io import DataCatalog
from kedro.io.core import DatasetError

from kedro_mlflow_runs.io import models as models_module
from kedro_mlflow_runs.io._requirements import fast_requirements

X = np.array([[0.0], [1.0], [2.0], [3.0]])
STRICT_FLAVOR = '''
"""A flavor whose log_model cannot be told the run (no run_id / model_id, no **kwargs)."""
import json, os, sys
from mlflow.models import Model

def save_model(model, path, mlflow_model=None, **kwargs):
    os.makedirs(path)
    with open(os.path.join(path, "model.json"), "w") as handle:
        json.dump(model, handle)
    mlflow_model = mlflow_model or Model()
    mlflow_model.add_flavor("kmr_strict", data="model.json")
    mlflow_model.save(os.path.join(path, "MLmodel"))

def log_model(model, name):
    raise AssertionError("the dataset must not call a log_model that cannot target a run")

def load_model(model_uri, dst_path=None):
    from mlflow.tracking.artifact_utils import _download_artifact_from_uri
    local = _download_artifact_from_uri(model_uri, output_path=dst_path)
    with open(os.path.join(local, "model.json")) as handle:
        return json.load(handle)
'''


@pytest.fixture
def flavors(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.mktemp("flavors")
    write_module(root, "kmr_custom_flavor", CUSTOM_FLAVOR)
    write_module(root, "kmr_strict_flavor", STRICT_FLAVOR)
    write_module(root, "kmr_not_a_flavor", "def save_model(model, path):\n    pass\n")
    monkeypatch.syspath_prepend(str(root))
    yield root


@pytest.fixture(scope="module")
def sk_model():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(X, [0, 0, 1, 1])


def _entry(name="m", **config):
    return DataCatalog.from_config({name: config})


# -- custom flavors ---------------------------------------------------------------------------


def test_custom_flavor_plain_python_model_and_loader_module(project, client_for, flavors):
    import kmr_custom_flavor

    catalog = DataCatalog.from_config({
        "plain": {"type": LOGGER, "flavor": "kmr_custom_flavor", "save_args": {"name": "plain"}},
        "python_model": {"type": LOGGER, "flavor": "kmr_custom_flavor", "pyfunc_workflow": "python_model",
                         "save_args": {"name": "py"}},
        "loader": {"type": LOGGER, "flavor": "kmr_custom_flavor", "pyfunc_workflow": "loader_module",
                   "save_args": {"name": "loader"}},
    })
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    with active_run(project) as ctx:
        catalog.save("plain", {"coef": 1.5})
        catalog.save("python_model", kmr_custom_flavor.CoefModel(2.0))
        catalog.save("loader", {"coef": 3.0})
        assert catalog.load("plain") == {"coef": 1.5}
        assert list(catalog.load("python_model").predict(frame)) == [2.0, 4.0]
        loader_model = catalog.load("loader")
        assert list(loader_model.predict(frame)) == [3.0, 6.0]
    assert type(loader_model).__name__ == "PyFuncModel"
    assert sorted(m.name for m in logged_models(client_for(project), ctx.run_id)) == ["loader", "plain", "py"]


def test_custom_flavor_saver_with_both_workflows(tmp_path, flavors):
    import kmr_custom_flavor

    frame = pd.DataFrame({"x": [1.0]})
    py = _entry(type=SAVER, flavor="kmr_custom_flavor", pyfunc_workflow="python_model", filepath=str(tmp_path / "py"))
    py.save("m", kmr_custom_flavor.CoefModel(5.0))
    assert list(py.load("m").predict(frame)) == [5.0]
    loader = _entry(type=SAVER, flavor="kmr_custom_flavor", pyfunc_workflow="loader_module",
                    filepath=str(tmp_path / "loader"))
    loader.save("m", {"coef": 7.0})
    assert list(loader.load("m").predict(frame)) == [7.0]
    assert "loader_module: kmr_custom_flavor" in (tmp_path / "loader" / "MLmodel").read_text()


def test_flavor_that_cannot_target_a_run_is_logged_through_mlflow_into_the_run(project, client_for, flavors):
    catalog = _entry(type=LOGGER, flavor="kmr_strict_flavor")
    with active_run(project) as ctx:
        catalog.save("m", {"a": 1})
        assert catalog.load("m") == {"a": 1}
    (logged,) = logged_models(client_for(project), ctx.run_id)
    assert str(logged.experiment_id) == ctx.handle.experiment_id


def test_pyfunc_flavor_defaults_to_the_python_model_workflow(project, flavors):
    import kmr_custom_flavor

    catalog = _entry(type=LOGGER, flavor="mlflow.pyfunc")
    with active_run(project):
        catalog.save("m", kmr_custom_flavor.CoefModel(4.0))
        assert list(catalog.load("m").predict(pd.DataFrame({"x": [2.0]}))) == [8.0]


# -- errors at catalog creation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message", "when"),
    [
        ({"type": LOGGER, "flavor": "kmr_no_such_flavor"},
         r"MlflowModelLoggerDataset\(flavor 'kmr_no_such_flavor'\): flavor 'kmr_no_such_flavor' cannot be imported",
         "creation"),
        ({"type": LOGGER, "flavor": "kmr_not_a_flavor"},
         r"flavor 'kmr_not_a_flavor' is not an MLflow flavor: it has no log_model, load_model", "use"),
        ({"type": LOGGER, "flavor": "mlflow.sklearn", "pyfunc_workflow": "python_model"},
         r"pyfunc_workflow 'python_model' needs a pyfunc-compatible flavor.*'mlflow.sklearn' is not", "use"),
        ({"type": LOGGER, "flavor": "mlflow.pyfunc", "pyfunc_workflow": "loader_module"},
         r"'loader_module' needs a flavor module that can load.*is mlflow.pyfunc itself", "creation"),
        ({"type": LOGGER, "flavor": "kmr_strict_flavor", "pyfunc_workflow": "loader_module"},
         r"must define _load_pyfunc.*'kmr_strict_flavor' does not", "use"),
        ({"type": LOGGER, "flavor": "mlflow.sklearn", "pyfunc_workflow": "bogus"},
         r"pyfunc_workflow must be one of python_model, loader_module.*'bogus'", "creation"),
        ({"type": SAVER, "flavor": "kmr_no_such_flavor", "filepath": "x"},
         r"MlflowModelSaverDataset\(flavor 'kmr_no_such_flavor', filepath 'x'\): flavor .* cannot be imported",
         "creation"),
        ({"type": SAVER, "flavor": "kmr_not_a_flavor", "filepath": "x"},
         r"flavor 'kmr_not_a_flavor' is not an MLflow flavor", "use"),
    ],
)
def test_flavor_errors_name_the_flavor_and_the_dataset(flavors, config, message, when):
    """What needs no import is checked when the dataset is created; what needs the flavor imported,
    on first save or load (and, in a tracked run, before any node: see the next test)."""
    catalog = _entry("my_entry", **config)
    if when == "creation":
        with pytest.raises(DatasetError, match=message) as info:
            catalog.get("my_entry")
        assert "my_entry" in str(info.value)  # Kedro adds the catalog entry
    else:
        dataset = catalog.get("my_entry")  # creating it imports nothing
        for use in (lambda: catalog.save("my_entry", object()), dataset.validate):
            with pytest.raises(DatasetError, match=message):
                use()


def test_a_bad_flavor_fails_a_tracked_run_before_any_node(project_factory, client_for, flavors):
    from conftest import all_runs
    from kedro_project import run_session

    catalog = {"values": {"type": LOGGER, "flavor": "kmr_not_a_flavor"}}
    project = project_factory(catalog=catalog)
    marker = project / "train-started"
    with pytest.raises(DatasetError, match="kmr_not_a_flavor' is not an MLflow flavor"):
        run_session(project, runtime_params={"model": {"started_marker": str(marker)}})
    assert not marker.exists()  # no node ran
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FAILED"
    assert "is not an MLflow flavor" in run.data.tags["kedro.error.message"]


# -- requirements ----------------------------------------------------------------------------


def _requirements(client, run_id, name):
    import mlflow

    (logged,) = [m for m in logged_models(client, run_id) if m.name == name]
    path = mlflow.artifacts.download_artifacts(artifact_uri=f"{logged.artifact_location}/requirements.txt")
    return Path(path).read_text().split()


def test_fast_requirements_are_pinned_and_model_aware(sk_model):
    import mlflow.sklearn
    import sklearn

    reqs = fast_requirements(mlflow.sklearn, sk_model)
    assert f"scikit-learn=={sklearn.__version__}" in reqs
    assert f"numpy=={np.__version__}" in reqs
    assert any(r.startswith("scipy==") for r in reqs)  # a direct dependency of scikit-learn, pinned
    assert any(r.startswith("skops==") for r in reqs)  # the flavor's default serializer
    assert not any(r.startswith("mlflow") for r in reqs)  # MLflow pins itself
    wrapped = fast_requirements(mlflow.sklearn, {"model": sk_model, "frame": pd.DataFrame({"a": [1]})})
    assert f"pandas=={pd.__version__}" in wrapped


def test_requirements_are_cached_on_disk_per_environment(tmp_path, monkeypatch):
    """Read back by the next process; ignored once the environment changes (a folder on sys.path)."""
    import json

    import mlflow.sklearn

    from kedro_mlflow_runs.io._requirements import CACHE_DIR_ENV, REQUIREMENTS_CACHE, pinned_requirements

    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    REQUIREMENTS_CACHE.clear()
    try:
        real = pinned_requirements(mlflow.sklearn, {"sklearn"})
        (cache_file,) = (tmp_path / "cache").iterdir()
        stored = json.loads(cache_file.read_text())
        assert stored["entries"] == {"mlflow.sklearn|sklearn": real}
        stored["entries"]["mlflow.sklearn|sklearn"] = ["from-the-disk==1"]
        cache_file.write_text(json.dumps(stored))
        REQUIREMENTS_CACHE.clear()  # as a new process would
        assert pinned_requirements(mlflow.sklearn, {"sklearn"}) == ["from-the-disk==1"]

        monkeypatch.syspath_prepend(str(tmp_path))  # not an install folder: the cache still holds
        REQUIREMENTS_CACHE.clear()
        assert pinned_requirements(mlflow.sklearn, {"sklearn"}) == ["from-the-disk==1"]
        new_folder = tmp_path / "venv" / "site-packages"
        new_folder.mkdir(parents=True)
        monkeypatch.syspath_prepend(str(new_folder))  # the environment changed
        REQUIREMENTS_CACHE.clear()
        assert pinned_requirements(mlflow.sklearn, {"sklearn"}) == real
    finally:
        REQUIREMENTS_CACHE.clear()


def test_logged_requirements_fast_by_default_explicit_when_given(project, client_for, sk_model):
    import mlflow
    import mlflow.sklearn

    catalog = DataCatalog.from_config({
        "fast": {"type": LOGGER, "flavor": "mlflow.sklearn", "save_args": {"name": "fast",
                                                                           "extra_pip_requirements": ["rich"]}},
        "mine": {"type": LOGGER, "flavor": "mlflow.sklearn", "save_args": {"name": "mine",
                                                                           "pip_requirements": ["scikit-learn"]}},
    })
    with active_run(project) as ctx:
        catalog.save("fast", sk_model)
        catalog.save("mine", sk_model)
    client = client_for(project)
    fast = _requirements(client, ctx.run_id, "fast")
    assert fast == [f"mlflow=={mlflow.__version__}", *fast_requirements(mlflow.sklearn, sk_model), "rich"]
    assert _requirements(client, ctx.run_id, "mine") == [f"mlflow=={mlflow.__version__}", "scikit-learn"]


def test_requirements_infer_switch_restores_mlflow_inference(project, client_for, sk_model):
    import mlflow.sklearn

    catalog = _entry(type=LOGGER, flavor="mlflow.sklearn", save_args={"name": "inferred", "requirements": "infer"})
    with active_run(project) as ctx:
        catalog.save("m", sk_model)
    inferred = _requirements(client_for(project), ctx.run_id, "inferred")
    assert any(r.startswith("scikit-learn==") for r in inferred)
    assert inferred[1:] != fast_requirements(mlflow.sklearn, sk_model)  # MLflow's own list, not ours


def test_unknown_requirements_mode_is_an_error(project, sk_model, monkeypatch):
    monkeypatch.setenv("KEDRO_MLFLOW_RUNS_REQUIREMENTS", "quick")
    with active_run(project), pytest.raises(DatasetError, match="requirements mode must be one of fast, infer.*'quick'"):
        _entry(type=LOGGER, flavor="mlflow.sklearn").save("m", sk_model)


# -- pickling and legacy names -----------------------------------------------------------------


def test_model_datasets_pickle_and_deep_copy(tmp_path, flavors):
    from kedro_mlflow_runs.io import MlflowModelLoggerDataset, MlflowModelRegistryDataset, MlflowModelSaverDataset

    datasets = [
        MlflowModelLoggerDataset(flavor="kmr_custom_flavor", pyfunc_workflow="loader_module", run_id="abc",
                                 save_args={"name": "n"}),
        MlflowModelSaverDataset(filepath=str(tmp_path / "m"), flavor="mlflow.sklearn"),
        MlflowModelRegistryDataset(model_name="clf", alias="champion"),
    ]
    for ds in datasets:
        for twin in (pickle.loads(pickle.dumps(ds)), deepcopy(ds)):
            assert type(twin) is type(ds) and twin._describe() == ds._describe()


def test_legacy_names_are_the_same_classes():
    assert models_module.MlflowModelLoggerDataSet is models_module.MlflowModelLoggerDataset
    assert models_module.MlflowModelTrackingDataset is models_module.MlflowModelLoggerDataset
    assert models_module.MlflowModelSaverDataSet is models_module.MlflowModelSaverDataset
    assert models_module.MlflowModelLocalFileSystemDataset is models_module.MlflowModelSaverDataset
    catalog = DataCatalog.from_config({"m": {"type": "kedro_mlflow_runs.io.models.MlflowModelTrackingDataset",
                                             "flavor": "mlflow.sklearn"}})
    assert type(catalog.get("m")) is models_module.MlflowModelLoggerDataset


def test_importing_the_package_does_not_import_mlflow():
    import subprocess
    import sys

    code = "import sys, kedro_mlflow_runs.io; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
