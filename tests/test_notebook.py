"""Using a project's catalog outside `kedro run` (a notebook): datasets know their entry names."""

from __future__ import annotations

from conftest import all_runs
from io_support import ML_NODES, ML_PARAMETERS, ML_REGISTRY
from kedro_project import run_session, store_uri

from kedro_mlflow_runs import RunContext, RunHandle


def test_catalog_from_load_context_loads_the_model_kedro_run_logged(project_factory, client_for):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    catalog = {"my_model": {"type": "kedro_mlflow_runs.io.models.MlflowModelLoggerDataset", "flavor": "mlflow.sklearn"}}
    project = project_factory(nodes=ML_NODES, registry=ML_REGISTRY, parameters=ML_PARAMETERS, catalog=catalog)
    run_session(project, pipeline_names=["train"])
    (run,) = all_runs(client_for(project))

    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        notebook_catalog = session.load_context().catalog
        handle = RunHandle(run.info.run_id, store_uri(project), run.info.experiment_id)
        with RunContext.attach(handle):  # e.g. a notebook inspecting an earlier run
            model = notebook_catalog.load("my_model")  # runs:/<id>/my_model, not runs:/<id>/model
    assert list(model.predict([[0.0], [3.0]])) == [0, 1]
    assert client_for(project).get_run(run.info.run_id).info.status == "FINISHED"


NOTEBOOK = '''
import json, sys
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()


def cell(code):
    result = shell.run_cell(code)
    result.raise_error()


cell("%load_ext kedro.ipython")
cell("%reload_kedro " + sys.argv[1])
cell("""
import mlflow
from sklearn.linear_model import LogisticRegression

model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
with mlflow.start_run(run_name="exploration") as run:
    catalog.save("my_model", model)
    catalog.save("accuracy", 0.75)
    mlflow.log_param("idea", "more data")
""")
cell("session.run()")  # a tracked kedro run from the notebook
cell("import json, os")
cell("print(json.dumps({'run_id': run.info.run_id, 'status': mlflow.get_run(run.info.run_id).info.status, "
     "'uri': os.environ.get('MLFLOW_TRACKING_URI')}))")
'''


def test_a_notebook_run_started_by_the_user_lands_in_the_projects_store(project_factory, client_for, tmp_path):
    """The walkthrough of docs/notebooks.md: %reload_kedro, then `with mlflow.start_run():` in a cell."""
    import json
    import subprocess
    import sys

    from io_support import logged_models
    from kedro_project import kedro_env

    catalog = {"my_model": {"type": "kedro_mlflow_runs.io.models.MlflowModelLoggerDataset", "flavor": "mlflow.sklearn"},
               "accuracy": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset"}}
    project = project_factory(catalog=catalog)
    notebooks = tmp_path / "notebooks"  # the kernel's working directory: nothing may land there
    notebooks.mkdir()
    result = subprocess.run([sys.executable, "-c", NOTEBOOK, str(project)], cwd=notebooks, env=kedro_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["status"] == "FINISHED"  # the with block ended it; the plugin did not

    assert seen["uri"] == store_uri(project)  # still the kernel's default after session.run()
    client = client_for(project)
    kedro_run, run = sorted(all_runs(client), key=lambda r: r.info.run_id != seen["run_id"], reverse=True)
    assert run.info.run_id == seen["run_id"]
    assert kedro_run.info.status == "FINISHED" and kedro_run.info.experiment_id == run.info.experiment_id
    assert client.get_experiment(run.info.experiment_id).name == project.name  # the project's experiment
    assert run.data.metrics == {"accuracy": 0.75} and run.data.params == {"idea": "more data"}
    assert [m.name for m in logged_models(client, run.info.run_id)] == ["my_model"]
    assert run.info.artifact_uri.startswith((project / "mlartifacts").as_uri())
    assert list(notebooks.iterdir()) == []
