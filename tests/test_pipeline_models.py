"""pipeline_ml_factory: a tracked training run logs its inference pipeline as one pyfunc model.

One project trained once per module (SequentialRunner) backs most checks: the model loads and
predicts in a fresh process that never saw the project, `mlflow models predict` works, the
signature and input example are there, the registered version comes from the run, and
`kedro mlflow modelify` on the finished run gives an equivalent model.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import all_runs
from kedro_project import make_project, run_session, store_uri

from kedro_mlflow_runs.errors import PipelineModelError

pytestmark = pytest.mark.slow

NODES = '''
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import StandardScaler


def make_features(data):
    n = int(data["n"])
    x = pd.DataFrame({"a": [float(i) for i in range(n)], "b": [float(i % 3) for i in range(n)]})
    y = (2.0 * x["a"] - 3.0 * x["b"] + 1.0).to_frame("y")
    return x, y


def fit_scaler(features):
    return StandardScaler().fit(features)


def fit(features, target, scaler, model):
    if model.get("fail"):
        raise ValueError("training failed on purpose")
    return LinearRegression().fit(scaler.transform(features), target["y"])


def evaluate(regressor, scaler, features, target):
    return float(regressor.score(scaler.transform(features), target["y"]))


def predict(regressor, scaler, features, offset):
    return pd.DataFrame({"prediction": regressor.predict(scaler.transform(features)) + offset})
'''

REGISTRY = '''
from kedro.pipeline import Pipeline, node

from kedro_mlflow_runs.pipeline import pipeline_ml_factory

from .nodes import evaluate, fit, fit_scaler, make_features, predict


def register_pipelines():
    data = Pipeline([node(make_features, "params:data", ["features", "target"], name="make_features")])
    training = Pipeline([
        node(fit_scaler, "features", "scaler", name="fit_scaler"),
        node(fit, ["features", "target", "scaler", "params:model"], "regressor", name="fit"),
        node(evaluate, ["regressor", "scaler", "features", "target"], "r2", name="evaluate"),
    ])
    inference = Pipeline([node(predict, ["regressor", "scaler", "features", "params:offset"], "predictions",
                               name="predict")])
    ml = pipeline_ml_factory(training, inference, input_name="features",
                             log_model_kwargs={"name": "model", "registered_model_name": "pm_model"})
    return {"__default__": data + ml, "inference": inference, "data": data}
'''

CATALOG = {
    "regressor": {"type": "kedro_mlflow_runs.io.models.MlflowModelLoggerDataset", "flavor": "mlflow.sklearn"},
    "scaler": {"type": "pickle.PickleDataset", "filepath": "data/scaler.pkl"},
}
PARAMETERS = {"data": {"n": 12}, "model": {"fail": False}, "offset": 0.5}
#: Kedro env "mem": the scaler stays in memory (Kedro releases it after its last use in training).
MEMORY_ENV = {"conf/mem/catalog.yml": "scaler:\n  type: MemoryDataset\n"}
#: Kedro env "steps": what an orchestrator's steps hand each other is persisted.
STEPS_ENV = {"conf/steps/catalog.yml": "".join(
    f"{name}:\n  type: pickle.PickleDataset\n  filepath: data/{name}.pkl\n" for name in ("features", "target", "scaler", "regressor"))}

PREDICT_SCRIPT = '''
import importlib.util, json, sys
import pandas as pd
assert importlib.util.find_spec("{package}") is None, "the project is importable: the check proves nothing"
from mlflow.cli import cli
# `mlflow models predict --env-manager local`, as a shell would run it
cli.main(["models", "predict", "-m", "{model_uri}", "-i", "input.json", "-t", "json", "--env-manager", "local",
          "-o", "out.json"], standalone_mode=False)
import mlflow
model = mlflow.pyfunc.load_model("{run_uri}")
features = pd.DataFrame(**json.load(open("input.json"))["dataframe_split"])
out = model.predict(features, params={{"offset": 100.0}})
print(json.dumps({{"override": out["prediction"].tolist()}}))
'''


def _project(root: Path, template_db: Path, **kwargs: Any) -> Path:
    kwargs.setdefault("catalog", CATALOG)
    kwargs.setdefault("registry", REGISTRY)
    return make_project(root, nodes=NODES, parameters=PARAMETERS, template_db=template_db,
                        local_files={**MEMORY_ENV, **STEPS_ENV}, **kwargs)


def _fresh_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PYTHONPATH"))}
    env.update(KEDRO_DISABLE_TELEMETRY="1", DO_NOT_TRACK="1")
    return env


class _Records(logging.Handler):
    """The warnings of our logger (Kedro's logging setup replaces the root handlers pytest's caplog uses)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.text = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.text += record.getMessage() + "\n"


def _models_of(client: Any, run: Any) -> list[Any]:
    return client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                       filter_string=f"source_run_id = '{run.info.run_id}'")


def _features(project: Path, n: int) -> Any:
    package = project.name
    return importlib.import_module(f"{package}.nodes").make_features({"n": n})[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> dict[str, Any]:
    """The project trained once (SequentialRunner), and what MLflow holds afterwards."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("pm")
    project = _project(root, template_db)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        run_session(project)
    finally:
        os.chdir(cwd)
    client = MlflowClient(tracking_uri=store_uri(project))
    (run,) = all_runs(client)
    return {"project": project, "client": client, "run": run, "models": _models_of(client, run)}


# -- validation at construction ---------------------------------------------------------------


def _pipelines() -> tuple[Any, Any]:
    from kedro.pipeline import Pipeline, node

    def f(x):
        return x

    training = Pipeline([node(f, "raw", "regressor", name="train")])
    inference = Pipeline([node(lambda r, x, p: x, ["regressor", "features", "params:p"], "predictions", name="pred")])
    return training, inference


@pytest.mark.parametrize(("kwargs", "message", "attribute"), [
    ({"input_name": "nope"}, "input_name 'nope' is not a free input of the inference pipeline (its free inputs: "
                             "features, params:p, regressor)", ("dataset", "nope")),
    ({"input_name": "params:p"}, "is a parameter", ("dataset", "params:p")),
    ({"kpm_kwargs": {"output_name": "other"}}, "output_name 'other' is not a free output", ("key", "output_name")),
    ({"kpm_kwargs": {"runner": "SequentialRunner"}}, "must be a Kedro runner instance", ("key", "runner")),
    ({"kpm_kwargs": {"copy_mode": "shallow"}}, "copy_mode must be one of", ("key", "copy_mode")),
    ({"kpm_kwargs": {"runnner": None}}, "kpm_kwargs has unknown key 'runnner'", ("key", "runnner")),
    ({"log_model_kwargs": {"python_model": 1}}, "'python_model' is set by the plugin", ("key", "python_model")),
    ({"log_model_kwargs": {"signature": "infer"}}, "signature must be 'auto'", ("key", "signature")),
    ({"log_model_kwargs": {"flavour": 1}}, "log_model_kwargs has unknown key 'flavour'", ("key", "flavour")),
])
def test_construction_errors_name_what_is_wrong(kwargs, message, attribute):
    from kedro_mlflow_runs.pipeline import pipeline_ml_factory

    training, inference = _pipelines()
    arguments = {"training": training, "inference": inference, "input_name": "features", **kwargs}
    with pytest.raises(PipelineModelError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        pipeline_ml_factory(**arguments)
    assert getattr(info.value, attribute[0]) == attribute[1]


def test_several_free_outputs_need_an_output_name():
    from kedro.pipeline import Pipeline, node

    from kedro_mlflow_runs.pipeline import pipeline_ml_factory

    training, _ = _pipelines()
    two = Pipeline([node(lambda r, x: (x, x), ["regressor", "features"], ["a", "b"], name="two")])
    with pytest.raises(PipelineModelError, match=r"exactly one free output.*it has 2: a, b.*output_name"):
        pipeline_ml_factory(training, two, "features")
    chosen = pipeline_ml_factory(training, two, "features", kpm_kwargs={"output_name": "b"})
    assert chosen.ml_specs[0].output_name == "b"


def test_the_result_is_a_pipeline_that_keeps_its_spec_through_composition():
    from kedro.pipeline import Pipeline, node

    from kedro_mlflow_runs.pipeline import PipelineML, pipeline_ml_factory

    training, inference = _pipelines()
    ml = pipeline_ml_factory(training, inference, "features")
    other = Pipeline([node(lambda: 1, None, "raw", name="make_raw")])
    for combined in (other + ml, ml + other, sum([other, ml]), ml | other, (other + ml) - other, ml & (other + ml)):
        assert isinstance(combined, PipelineML) and combined.ml_specs == ml.ml_specs
    assert {n.name for n in (other + ml).nodes} == {"make_raw", "train"}
    assert ml.inference is inference and ml.input_name == "features"
    assert type((other + ml).filter(node_names=["train"])) is Pipeline  # what Kedro hands the hooks
    assert type(ml.tag("x")) is Pipeline and type(Pipeline([other, ml])) is Pipeline


# -- the trained project ------------------------------------------------------------------------


def _model_folder(trained: dict[str, Any]) -> Path:
    """The pipeline model, downloaded once."""
    if "folder" not in trained:
        from mlflow.artifacts import download_artifacts

        (model,) = [m for m in trained["models"] if m.name == "model"]
        trained["folder"] = Path(download_artifacts(artifact_uri=model.artifact_location,
                                                    dst_path=str(trained["project"] / "m")))
    return trained["folder"]


def test_a_successful_run_logs_one_pyfunc_model_with_signature_example_and_artifacts(trained):
    from mlflow.models import Model

    run, models = trained["run"], trained["models"]
    assert run.info.status == "FINISHED"
    assert sorted(m.name for m in models) == ["model", "regressor"]  # the pipeline model, and the estimator
    folder = _model_folder(trained)
    info = Model.load(str(folder))
    assert "python_function" in info.flavors
    assert info.signature is not None
    assert [c.name for c in info.signature.inputs] == ["a", "b"]
    assert [c.name for c in info.signature.outputs] == ["prediction"]
    assert {p.name: p.default for p in info.signature.params} == {"offset": 0.5}
    assert info.saved_input_example_info is not None
    example = json.loads((folder / info.saved_input_example_info["artifact_path"]).read_text())
    assert len(example["data"]) == 5  # the first rows of the features seen in training
    assert sorted(p.name for p in (folder / "artifacts").iterdir()) == [
        "0_params_offset.pkl", "1_regressor.pkl", "2_scaler.pkl"]
    assert (folder / "code" / trained["project"].name / "nodes.py").exists()  # the project's package
    requirements = (folder / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements and "pandas==" in requirements and "kedro==" in requirements
    assert "kedro-mlflow-runs==" in requirements
    assert trained["project"].name not in requirements.replace("-", "_")


def test_the_model_predicts_in_a_fresh_process_what_the_inference_pipeline_computes(trained, tmp_path):
    """`mlflow models predict --env-manager local` and `mlflow.pyfunc.load_model`, in a process that cannot
    import the project, give what Kedro computes running the inference pipeline on the trained objects."""
    import pickle

    import mlflow.sklearn
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner

    project = trained["project"]
    (model,) = [m for m in trained["models"] if m.name == "model"]
    features = _features(project, 7)
    (tmp_path / "input.json").write_text(json.dumps({"dataframe_split": json.loads(features.to_json(orient="split",
                                                                                                     index=False))}))
    script = PREDICT_SCRIPT.format(package=project.name, model_uri=f"models:/{model.model_id}",
                                   run_uri=f"runs:/{trained['run'].info.run_id}/model")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path,
                            env={**_fresh_env(), "MLFLOW_TRACKING_URI": store_uri(project)},
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads((tmp_path / "out.json").read_text())["predictions"]
    overridden = json.loads(result.stdout.strip().splitlines()[-1])["override"]

    # the inference pipeline, run by Kedro on the estimator the run logged and the scaler it saved
    inference = importlib.import_module(f"{project.name}.pipeline_registry").register_pipelines()["inference"]
    (estimator,) = [m for m in trained["models"] if m.name == "regressor"]
    regressor = mlflow.sklearn.load_model(estimator.artifact_location)
    scaler = pickle.loads((project / "data" / "scaler.pkl").read_bytes())
    catalog = DataCatalog(datasets={"regressor": MemoryDataset(regressor), "scaler": MemoryDataset(scaler),
                                    "features": MemoryDataset(features), "params:offset": MemoryDataset(0.5)})
    SequentialRunner().run(inference, catalog)
    expected = catalog.load("predictions")["prediction"].tolist()
    assert [row["prediction"] for row in served] == pytest.approx(expected)
    assert overridden == pytest.approx([v + 99.5 for v in expected])  # predict-time params


def test_registration_creates_a_version_whose_source_is_the_run(trained):
    versions = trained["client"].search_model_versions("name = 'pm_model'")
    (model,) = [m for m in trained["models"] if m.name == "model"]
    assert [(str(v.version), v.run_id) for v in versions] == [("1", trained["run"].info.run_id)]
    assert model.model_id in versions[0].source


def test_modelify_on_the_finished_run_logs_an_equivalent_model(trained, monkeypatch):
    from click.testing import CliRunner
    from mlflow.pyfunc import load_model

    from kedro_mlflow_runs.cli import commands

    project, run = trained["project"], trained["run"]
    monkeypatch.chdir(project)
    records = _Records()
    logging.getLogger("kedro_mlflow_runs").addHandler(records)
    try:
        result = CliRunner().invoke(commands, ["mlflow", "modelify", "--pipeline", "inference", "--input-name",
                                               "features", "--run-id", run.info.run_id, "--name", "again"])
    finally:
        logging.getLogger("kedro_mlflow_runs").removeHandler(records)
    assert result.exit_code == 0, result.output
    assert f"Logged model 'again' of pipeline 'inference' into MLflow run {run.info.run_id}" in result.output
    (again,) = [m for m in _models_of(trained["client"], run) if m.name == "again"]
    assert trained["client"].get_run(run.info.run_id).info.status == "FINISHED"  # left as it was
    features = _features(project, 9)
    first = load_model(str(_model_folder(trained))).predict(features)
    second = load_model(again.artifact_location).predict(features)
    assert second["prediction"].tolist() == pytest.approx(first["prediction"].tolist())

    from mlflow.models import Model

    assert Model.load(again.artifact_location.removeprefix("file://")).signature is None  # features: in memory
    assert "is logged without a signature" in records.text

    # without --run-id the catalog's estimator has no run to load from: the error names it
    unloadable = CliRunner().invoke(commands, ["mlflow", "modelify", "--pipeline", "inference", "--input-name",
                                               "features"])
    assert unloadable.exit_code != 0
    assert "Inference input 'regressor'" in unloadable.output and "could not be loaded from the catalog" in (
        unloadable.output)
    missing = CliRunner().invoke(commands, ["mlflow", "modelify", "--pipeline", "inference", "--input-name", "nope"])
    assert missing.exit_code != 0
    assert "input_name 'nope' is not a free input of the inference pipeline" in missing.output


# -- other runs: failures, filters, runners --------------------------------------------------------


@pytest.fixture
def ml_project(tmp_path: Path, template_db: Path) -> Path:
    return _project(tmp_path, template_db)


def _pipeline_models(client: Any) -> list[Any]:
    (run,) = all_runs(client)
    return [m for m in _models_of(client, run) if m.name == "model"]


def test_a_failing_training_run_logs_no_model(ml_project, client_for):
    with pytest.raises(ValueError, match="on purpose"):
        run_session(ml_project, runtime_params={"model": {"fail": True}})
    client = client_for(ml_project)
    (run,) = all_runs(client)
    assert run.info.status == "FAILED"
    assert _pipeline_models(client) == []
    assert client.search_registered_models() == []


def test_a_filtered_run_logs_no_model_and_names_what_is_missing(ml_project, client_for):
    records = _Records()
    logging.getLogger("kedro_mlflow_runs").addHandler(records)
    try:
        run_session(ml_project, node_names=["make_features", "fit_scaler"])
    finally:
        logging.getLogger("kedro_mlflow_runs").removeHandler(records)
    client = client_for(ml_project)
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED"
    assert _pipeline_models(client) == []
    assert ("This run does not produce 'regressor' (filtered out, or skipped by --only-missing-outputs): the model "
            "'model'") in records.text


def test_an_inference_input_that_is_neither_trained_nor_persisted_fails_the_run_before_any_node(
        tmp_path, template_db, client_for):
    registry = REGISTRY.replace('"params:offset"], "predictions"', '"lookup"], "predictions"')
    project = _project(tmp_path, template_db, registry=registry)
    with pytest.raises(PipelineModelError, match="Inference input 'lookup' .* is not produced by the training "
                                                 "pipeline and is not a persisted catalog entry") as info:
        run_session(project)
    assert info.value.dataset == "lookup"
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FAILED"
    assert not (project / "data" / "scaler.pkl").exists()  # no node ran


def test_a_model_that_cannot_be_logged_fails_the_run(tmp_path, template_db, client_for):
    nodes = NODES + "\n\ndef broken(regressor, scaler, features, offset):\n    raise ValueError('cannot predict')\n"
    registry = REGISTRY.replace("import evaluate, fit, fit_scaler, make_features, predict",
                                "import broken as predict, evaluate, fit, fit_scaler, make_features")
    project = make_project(tmp_path, nodes=nodes, registry=registry, catalog=CATALOG, parameters=PARAMETERS,
                           template_db=template_db)
    with pytest.raises(PipelineModelError, match="the inference pipeline failed on the first rows of 'features'"):
        run_session(project)
    client = client_for(project)
    (run,) = all_runs(client)
    assert run.info.status == "FAILED"
    assert "cannot predict" in run.data.tags["kedro.error.message"]
    assert _pipeline_models(client) == []


@pytest.mark.parametrize(("runner", "mp_context", "env"), [
    pytest.param("ThreadRunner", None, "mem", id="thread-scaler-in-memory"),
    pytest.param("ParallelRunner", "fork", None, id="parallel-fork"),
    pytest.param("ParallelRunner", "spawn", None, id="parallel-spawn"),
])
def test_every_runner_logs_the_model_once_and_it_predicts_like_the_sequential_one(
        trained, ml_project, client_for, monkeypatch, runner, mp_context, env):
    import kedro.runner
    from mlflow.pyfunc import load_model

    if mp_context:
        monkeypatch.setenv("KEDRO_MP_CONTEXT", mp_context)
    cls = getattr(kedro.runner, runner)
    run_session(ml_project, runner=cls(max_workers=2) if runner == "ParallelRunner" else cls(), env=env)
    client = client_for(ml_project)
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED"
    (model,) = _pipeline_models(client)  # logged once, by the session process
    from mlflow.models import Model

    assert Model.load(model.artifact_location.removeprefix("file://")).signature is not None  # the sample was kept
    assert (ml_project / "data" / "scaler.pkl").exists() is (env != "mem")  # "mem": kept from the released dataset
    features = _features(trained["project"], 5)
    ours = load_model(model.artifact_location).predict(features)
    reference = load_model(str(_model_folder(trained))).predict(features)
    assert ours["prediction"].tolist() == pytest.approx(reference["prediction"].tolist())


def test_with_only_missing_outputs_an_artifact_that_exists_already_means_no_model(ml_project, client_for):
    run_session(ml_project)  # writes data/scaler.pkl
    records = _Records()
    logging.getLogger("kedro_mlflow_runs").addHandler(records)
    try:
        run_session(ml_project, only_missing_outputs=True)
    finally:
        logging.getLogger("kedro_mlflow_runs").removeHandler(records)
    client = client_for(ml_project)
    first, second = sorted(all_runs(client), key=lambda r: r.info.start_time)
    assert [m.name for m in _models_of(client, first) if m.name == "model"] == ["model"]
    assert [m.name for m in _models_of(client, second) if m.name == "model"] == []
    assert "This run does not produce 'scaler'" in records.text


def test_orchestrator_steps_attached_to_one_run_log_the_model_once_in_the_step_that_trains(
        ml_project, client_for, monkeypatch):
    client = client_for(ml_project)
    experiment = client.create_experiment("orchestrated", artifact_location=(ml_project / "orchestrated").as_uri())
    parent = client.create_run(experiment).info.run_id  # what the orchestrator opened
    monkeypatch.setenv("MLFLOW_RUN_ID", parent)
    run_session(ml_project, env="steps", node_names=["make_features"])
    monkeypatch.setenv("MLFLOW_RUN_ID", parent)
    run_session(ml_project, env="steps", node_names=["fit_scaler", "fit", "evaluate"])
    (run,) = all_runs(client)
    assert run.info.run_id == parent and run.info.status == "RUNNING"  # the orchestrator ends it
    (model,) = _pipeline_models(client)
    from mlflow.models import Model

    assert Model.load(model.artifact_location.removeprefix("file://")).signature is not None  # persisted features
    client.set_terminated(parent)

    # modelify without --run-id: a new run, the artifacts from the current catalog (persisted in env "steps")
    from click.testing import CliRunner
    from mlflow.pyfunc import load_model

    from kedro_mlflow_runs.cli import commands

    monkeypatch.chdir(ml_project)
    monkeypatch.delenv("MLFLOW_RUN_ID")
    result = CliRunner().invoke(commands, ["mlflow", "modelify", "--pipeline", "inference", "--input-name", "features",
                                           "--env", "steps", "--registered-model-name", "from_catalog"])
    assert result.exit_code == 0, result.output
    (new,) = [r for r in all_runs(client) if r.info.run_id != parent]
    assert new.info.status == "FINISHED" and new.data.tags["kedro.modelify.pipeline"] == "inference"
    (again,) = _models_of(client, new)
    assert Model.load(again.artifact_location.removeprefix("file://")).signature is not None  # persisted features
    assert [str(v.version) for v in client.search_model_versions("name = 'from_catalog'")] == ["1"]
    features = _features(ml_project, 4)
    assert load_model(again.artifact_location).predict(features)["prediction"].tolist() == pytest.approx(
        load_model(model.artifact_location).predict(features)["prediction"].tolist())


def test_kedro_pipeline_model_runs_on_the_runner_given_and_names_unknown_params():
    import pandas as pd
    from kedro.pipeline import Pipeline, node
    from kedro.runner import ThreadRunner

    from kedro_mlflow_runs.pipeline import KedroPipelineModel

    inference = Pipeline([node(lambda x, k: x * k, ["features", "params:k"], "out", name="scale")])
    model = KedroPipelineModel(inference, "features", runner=ThreadRunner())._bind({"params:k": 2})
    assert isinstance(model.runner, ThreadRunner)
    assert model.predict(None, pd.Series([1, 2])).tolist() == [2, 4]
    assert model.predict(None, pd.Series([1, 2]), params={"k": 3}).tolist() == [3, 6]
    with pytest.raises(PipelineModelError, match="predict params key 'c' is not a parameter of the inference "
                                                 r"pipeline \(its parameters: k\)"):
        model.predict(None, pd.Series([1]), params={"c": 1})


def test_importing_the_pipeline_package_does_not_import_mlflow():
    code = ("import sys, kedro_mlflow_runs.pipeline as p; from kedro_mlflow_runs.pipeline import pipeline_ml_factory, "
            "PipelineML; print('mlflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_fresh_env())
    assert result.stdout.strip() == "False", result.stderr[-2000:]
