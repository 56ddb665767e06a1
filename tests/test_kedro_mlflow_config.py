"""kedro-mlflow's mlflow.yml is accepted and honoured: its own generated template, unedited, and the
keys it has that we had not (request header provider left unset, disable_autologging,
create_experiment_kwargs, ${km.random_name:}, ui.port as a string)."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
import yaml
from conftest import all_runs
from kedro_project import run_session

from kedro_mlflow_runs import ConfigError

KEDRO_MLFLOW = "kedro-mlflow==2.0.3"


@pytest.fixture(scope="session")
def kedro_mlflow_template(tmp_path_factory) -> str:
    """kedro-mlflow's own mlflow.yml template, from its wheel on the package index (read, not installed)."""
    folder = tmp_path_factory.mktemp("kedro-mlflow-wheel")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder), KEDRO_MLFLOW],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = folder.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.read("kedro_mlflow/template/project/mlflow.yml").decode()


def test_kedro_mlflows_generated_template_unedited_gives_one_finished_run(project_factory, client_for,
                                                                          kedro_mlflow_template):
    project = project_factory()
    package = next((project / "src").iterdir()).name
    # what `kedro mlflow init` of kedro-mlflow writes: the template rendered for the package, in conf/local
    (project / "conf" / "local" / "mlflow.yml").write_text(kedro_mlflow_template.replace("{{ python_package }}", package))
    run_session(project)
    client = client_for(project)
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == package
    # flatten: False is honoured: one parameter holding the whole dict
    assert yaml.safe_load(run.data.params["model"].replace("'", '"'))["C"] == 0.5
    assert "model.C" not in run.data.params


def test_create_experiment_kwargs_random_names_and_a_string_port(project_factory, client_for, tmp_path):
    location = (tmp_path / "elsewhere").as_uri()
    project = project_factory(mlflow_yml={
        "tracking": {"experiment": {"name": "fresh", "create_experiment_kwargs": {
                         "artifact_location": location, "tags": {"team": "ml"}}},
                     "run": {"name": "${km.random_name:}"}},
        "ui": {"port": "5123", "host": "127.0.0.1"},
    })
    run_session(project)
    client = client_for(project)
    (run,) = all_runs(client)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.artifact_location == location and experiment.tags["team"] == "ml"
    assert run.info.run_name.count("-") == 2 and run.info.run_name != "${km.random_name:}"
    from kedro_mlflow_runs.config import config_from_project

    assert config_from_project(project).ui.port == 5123


def test_the_random_name_resolver_is_registered_without_a_deprecation_warning(tmp_path):
    """OmegaConf 2.4 deprecates register_new_resolver: registering ours (what load_config does first)
    warns about nothing, in a fresh process where it is not registered yet and warnings are errors."""
    code = ("import warnings; warnings.simplefilter('error'); "
            "from kedro_mlflow_runs.config.loading import ensure_resolvers; ensure_resolvers(); "
            "from omegaconf import OmegaConf; print(OmegaConf.has_resolver('km.random_name'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr[-2000:]


AUTOLOG_NODES = '''
from sklearn.linear_model import LogisticRegression


def make_data(data):
    return [float(i) for i in range(int(data["n"]))]


def train(values, model):
    LogisticRegression().fit([[v] for v in values], [int(v > 1) for v in values])
    return {"coef": 1.0}


def report(result, parameters):
    return result
'''


@pytest.mark.parametrize("disable", [True, False])
def test_disable_autologging_keeps_a_users_autolog_out_of_the_run_and_turns_it_back_on_after(project_factory, client_for, disable):
    import mlflow

    project = project_factory(nodes=AUTOLOG_NODES,
                              mlflow_yml={"tracking": {"disable_tracking": {"disable_autologging": disable}}})
    import mlflow.sklearn
    from mlflow.utils.autologging_utils import autologging_is_disabled

    mlflow.sklearn.autolog(log_models=False, log_datasets=False, silent=True)  # the user's own autologging
    try:
        run_session(project)
        # the user's autologging is on again after the run (it was only suspended during it)
        assert not autologging_is_disabled("sklearn")
    finally:
        mlflow.sklearn.autolog(disable=True, silent=True)
    (run,) = all_runs(client_for(project))
    autologged = [k for k in run.data.metrics if k.startswith("training_")]
    assert (autologged == []) is disable, run.data.metrics


@pytest.mark.parametrize("runner", ["SequentialRunner", "ThreadRunner", "fork", "spawn"])
def test_tracking_autolog_logs_into_the_one_run_on_every_runner_and_is_off_afterwards(
        project_factory, client_for, monkeypatch, runner):
    import kedro.runner
    from sklearn.linear_model import LogisticRegression

    autolog = {"enabled": True, "flavors": ["sklearn"], "kwargs": {"log_models": False, "log_datasets": False}}
    project = project_factory(nodes=AUTOLOG_NODES, mlflow_yml={"tracking": {"autolog": autolog}})
    if runner in ("fork", "spawn"):
        monkeypatch.setenv("KEDRO_MP_CONTEXT", runner)
        runner = "ParallelRunner"
    run_session(project, runner=getattr(kedro.runner, runner)())
    LogisticRegression().fit([[0.0], [1.0]], [0, 1])  # after the run: autologging is off, no new run
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FINISHED"
    assert any(k.startswith("training_") for k in run.data.metrics), run.data.metrics


def test_an_autolog_flavor_mlflow_does_not_have_fails_the_run_naming_the_key(project_factory, client_for):
    project = project_factory(mlflow_yml={"tracking": {"autolog": {"enabled": True, "flavors": ["nosuchlib"]}}})
    with pytest.raises(ConfigError, match="tracking.autolog.flavors.*nosuchlib"):
        run_session(project)
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FAILED"
