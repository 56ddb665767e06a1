"""docs/tutorial.md, followed step by step on Kedro's spaceflights starter: `kedro new`, `kedro run`, the
tutorial's edits (taken from the page), the run on ParallelRunner, `kedro mlflow runs` and `show` (their
output shaped as the page shows it), the timeline, the pipeline model loaded and predicting with the
page's own code, and the run on a tracking server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import doc_pictures  # noqa: E402 (tools/doc_pictures.py: the helpers that made the page's pictures)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spaceflights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The project after sections 1 and 2: the starter run as it comes, then edited and run in parallel."""
    project = doc_pictures.new_project(tmp_path_factory.mktemp("tutorial"))
    first = doc_pictures.kedro("run", cwd=project)
    doc_pictures.apply_edits(project)
    second = doc_pictures.kedro("run", "--runner", "ParallelRunner", cwd=project)
    return {"project": project, "first": first, "second": second}


def _client(project: Path) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(f"sqlite:///{project / 'mlflow.db'}")


def _shape(output: str) -> list[str]:
    """What an output looks like, not its values: the first word of each line, and whether it is indented."""
    words = [f"  {line.split()[0]}" if line.startswith("  ") else line.split(" ")[0] for line in output.splitlines()]
    return [re.sub(r"^[0-9a-f]{8}$", "<run>", word) for word in words]


def test_a_new_spaceflights_project_is_tracked_with_no_configuration(spaceflights):
    assert spaceflights["first"].returncode == 0, spaceflights["first"].stderr[-3000:]
    assert "MLflow run " in spaceflights["first"].stdout and "is in sqlite:///" in spaceflights["first"].stdout
    assert spaceflights["second"].returncode == 0, spaceflights["second"].stderr[-3000:]
    client = _client(spaceflights["project"])
    experiment = client.get_experiment_by_name("spaceflights")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    latest = runs[0]
    assert set(latest.data.metrics) >= {"r2_score", "mae", "max_error"}  # the `metrics` dataset of section 2
    assert {f"kedro.node_duration_s.{n}" for n in ("split_data_node", "train_model_node", "evaluate_model_node")} \
        <= set(latest.data.metrics)  # section 4's metrics
    (model,) = client.search_logged_models([experiment.experiment_id],
                                           filter_string=f"source_run_id = '{latest.info.run_id}'")
    assert model.name == "price_model"
    assert {a.path for a in client.list_artifacts(latest.info.run_id, "kedro")} >= {"kedro/timeline.html",
                                                                                    "kedro/timeline.json"}
    assert doc_pictures.timeline_svg(Path(client.download_artifacts(
        latest.info.run_id, "kedro/timeline.html", str(spaceflights["project"] / "tl"))).read_text()).startswith("<svg")


def test_runs_and_show_print_what_the_page_shows(spaceflights):
    project = spaceflights["project"]
    page = doc_pictures.blocks()
    runs = doc_pictures.command_output(doc_pictures.kedro("mlflow", "runs", cwd=project))
    assert _shape(runs) == _shape(page["output runs"])
    assert runs.splitlines()[1] == page["output runs"].splitlines()[1]  # the column headers
    run_id = _client(project).search_runs(["1"], max_results=1)[0].info.run_id
    show = doc_pictures.command_output(doc_pictures.kedro("mlflow", "show", run_id[:8], cwd=project))
    assert _shape(show) == _shape(page["output show"])
    assert (REPO / "docs" / "img" / "timeline.svg").read_text().startswith("<svg")  # section 4's picture


def test_the_pipeline_model_predicts_with_the_pages_code(spaceflights):
    code = doc_pictures.blocks()["python predict"]
    done = subprocess.run([sys.executable, "-c", code], cwd=spaceflights["project"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    predictions = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(predictions) == 3 and all(isinstance(p, float) for p in predictions)


@pytest.mark.postgres
def test_a_tracking_server_takes_the_runs_with_the_pages_mlflow_yml(spaceflights, mlflow_server):
    from mlflow import MlflowClient

    project = spaceflights["project"]
    text = doc_pictures.blocks()["server conf/local/mlflow.yml"].replace("http://127.0.0.1:5000", mlflow_server.url)
    (project / "conf" / "local" / "mlflow.yml").write_text(text)
    try:
        done = doc_pictures.kedro("run", cwd=project)
    finally:
        (project / "conf" / "local" / "mlflow.yml").unlink()
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(mlflow_server.url)
    experiment = client.get_experiment_by_name("spaceflights")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.data.metrics["r2_score"] > 0
    (model,) = client.search_logged_models([experiment.experiment_id],
                                           filter_string=f"source_run_id = '{run.info.run_id}'")
    assert model.name == "price_model"


#: the starter's plots, logged as artifacts of the run (conf/local overrides conf/base's entries)
PLOTS_AS_ARTIFACTS = """
dummy_confusion_matrix:
  type: kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset
  dataset:
    type: matplotlib.MatplotlibDataset
    filepath: data/08_reporting/dummy_confusion_matrix.png
    versioned: true

shuttle_passenger_capacity_plot_go:
  type: kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset
  dataset:
    type: plotly.JSONDataset
    filepath: data/08_reporting/shuttle_passenger_capacity_plot_go.json
    versioned: true
"""


def test_spaceflights_by_pipeline_gives_one_parent_and_three_children(spaceflights):
    """`tracking.child_runs.by: pipeline` on the tutorial's project: the metrics in the data science child."""
    project = spaceflights["project"]
    (project / "conf" / "local" / "mlflow.yml").write_text("tracking:\n  child_runs:\n    by: pipeline\n")
    (project / "conf" / "local" / "catalog.yml").write_text(PLOTS_AS_ARTIFACTS)
    try:
        done = doc_pictures.kedro("run", cwd=project)
    finally:
        (project / "conf" / "local" / "mlflow.yml").unlink()
        (project / "conf" / "local" / "catalog.yml").unlink()
    assert done.returncode == 0, done.stderr[-3000:]
    client = _client(project)
    runs = client.search_runs(["1"], max_results=10, order_by=["attributes.start_time DESC"])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = {r.data.tags["kedro.child_group"]: r for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert sorted(children) == ["data_processing", "data_science", "reporting"]
    assert {"r2_score", "mae", "max_error"} <= set(children["data_science"].data.metrics)
    assert "r2_score" not in parent.data.metrics
    assert children["data_science"].data.params["model_options.test_size"] == "0.2"
    assert {r.info.status for r in (parent, *children.values())} == {"FINISHED"}
    # the pipeline model: made by the data science nodes, so logged into their child
    (model,) = client.search_logged_models(["1"], filter_string=f"source_run_id = '{children['data_science'].info.run_id}'")
    assert model.name == "price_model"
    assert not client.search_logged_models(["1"], filter_string=f"source_run_id = '{parent.info.run_id}'")
    # the plots the reporting nodes saved: in the reporting child, not in the parent
    reporting = {a.path for a in client.list_artifacts(children["reporting"].info.run_id)}
    assert {"dummy_confusion_matrix.png", "shuttle_passenger_capacity_plot_go.json"} <= reporting
    assert not reporting & {a.path for a in client.list_artifacts(parent.info.run_id)}
