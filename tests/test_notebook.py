"""Using a project's catalog outside `kedro run` (a notebook): datasets know their entry names."""

from __future__ import annotations

from conftest import all_runs
from io_support import ML_NODES, ML_REGISTRY, ML_PARAMETERS
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
