"""`kedro mlflow runs` and `kedro mlflow show` on a real project after two runs, one of them failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import all_runs
from kedro_project import kedro_cmd, kedro_env, make_project, run_session, store_uri

from kedro_mlflow_runs.cli import commands, mlflow_commands

NODES = '''
import numpy as np


def train(data, model):
    if model["fail"]:
        raise ValueError("train failed on purpose: " + str(model["fail"]))
    from sklearn.linear_model import LinearRegression

    x = np.arange(float(data["n"])).reshape(-1, 1)
    regressor = LinearRegression().fit(x, 2 * x[:, 0] + 1)
    return regressor, {"r2": regressor.score(x, 2 * x[:, 0] + 1), "coef": float(regressor.coef_[0])}, {"n": data["n"]}
'''

REGISTRY = '''
from kedro.pipeline import Pipeline, node, pipeline

from .nodes import train


def register_pipelines():
    training = pipeline([node(train, ["params:data", "params:model"], ["regressor", "scores", "report"], name="train")])
    return {"__default__": training, "training": training}
'''

CATALOG = {
    "regressor": {"type": "kedro_mlflow_runs.io.models.MlflowModelLoggerDataset", "flavor": "mlflow.sklearn"},
    "scores": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricsDataset"},
    "report": {"type": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset", "artifact_path": "reports",
               "dataset": {"type": "json.JSONDataset", "filepath": "data/report.json"}},
}


class Runs:
    """The project, and its two runs as MLflow holds them (newest first)."""

    def __init__(self, project: Path) -> None:
        from mlflow import MlflowClient

        self.project = project
        self.client = MlflowClient(tracking_uri=store_uri(project))
        runs = sorted(all_runs(self.client), key=lambda r: r.info.start_time, reverse=True)
        self.failed, self.finished = runs
        assert (self.failed.info.status, self.finished.info.status) == ("FAILED", "FINISHED")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Iterator[Runs]:
    with pytest.MonkeyPatch.context() as mp:
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_REGISTRY_URI"):
            mp.delenv(name, raising=False)
        root = tmp_path_factory.mktemp("inspect")
        mp.chdir(root)
        project = make_project(root, nodes=NODES, registry=REGISTRY, catalog=CATALOG, template_db=template_db,
                               parameters={"data": {"n": 5}, "model": {"fail": False, "C": 0.5}})
        run_session(project, pipeline_names=["training"])
        with pytest.raises(ValueError, match="on purpose"):
            run_session(project, runtime_params={"model": {"fail": "bad input"}})
        yield Runs(project)


def cli(project: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    """``kedro mlflow <args>`` in this process, from the project folder, as Kedro's CLI calls the command."""
    monkeypatch.chdir(project)
    return CliRunner().invoke(commands, ["mlflow", *args], catch_exceptions=False)


def test_kedro_mlflow_runs_lists_the_runs_newest_first_from_the_command_line(two_runs):
    result = subprocess.run(kedro_cmd("mlflow", "runs"), cwd=two_runs.project, env=kedro_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("RUN "))
    assert lines[header].split() == ["RUN", "NAME", "STATUS", "STARTED", "DURATION", "PIPELINE", "RUNNER", "METRICS"]
    failed, finished = lines[header + 1], lines[header + 2]
    assert failed.split()[:3] == [two_runs.failed.info.run_id[:8], "__default__", "FAILED"]
    assert finished.split()[:3] == [two_runs.finished.info.run_id[:8], "training", "FINISHED"]
    assert finished.split()[6:8] == ["training", "SequentialRunner"]  # STARTED is a date and a time
    assert failed.split()[6:8] == ["__default__", "SequentialRunner"]
    coef = two_runs.finished.data.metrics["coef"]
    assert f"coef={coef:.6g}" in finished and "r2=" in finished
    assert failed.rstrip().endswith("-")  # no metric: it failed before any was logged
    assert f"Experiment '{two_runs.project.name}' in {store_uri(two_runs.project)}:" in result.stdout


def test_runs_filters_by_status_and_limit(two_runs, monkeypatch):
    failed = cli(two_runs.project, monkeypatch, "runs", "--status", "failed")
    assert failed.exit_code == 0, failed.output
    rows = failed.output.splitlines()[2:]
    assert [row.split()[0] for row in rows] == [two_runs.failed.info.run_id[:8]]

    newest = cli(two_runs.project, monkeypatch, "runs", "--limit", "1")
    assert [row.split()[0] for row in newest.output.splitlines()[2:]] == [two_runs.failed.info.run_id[:8]]

    running = cli(two_runs.project, monkeypatch, "runs", "--status", "RUNNING")
    assert running.exit_code == 0
    assert f"No RUNNING run in experiment '{two_runs.project.name}'" in running.output


def test_runs_json_holds_what_mlflow_holds(two_runs, monkeypatch):
    result = cli(two_runs.project, monkeypatch, "runs", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output.splitlines()[-1])
    assert [r["run_id"] for r in listed] == [two_runs.failed.info.run_id, two_runs.finished.info.run_id]
    failed, finished = listed
    assert failed["status"] == "FAILED" and finished["status"] == "FINISHED"
    assert finished["metrics"] == two_runs.finished.data.metrics and failed["metrics"] == two_runs.failed.data.metrics
    assert finished["pipeline"] == "training" and finished["runner"] == "SequentialRunner"
    assert finished["kedro_run_id"] == two_runs.finished.data.tags["kedro.run_id"]
    info = two_runs.finished.info
    assert finished["duration_s"] == (info.end_time - info.start_time) / 1000


def test_runs_of_an_unknown_experiment_names_the_known_ones(two_runs, monkeypatch):
    result = cli(two_runs.project, monkeypatch, "runs", "--experiment", "nosuch")
    assert result.exit_code == 1
    assert "No experiment 'nosuch'" in result.output and two_runs.project.name in result.output


def test_show_a_failed_run_by_short_id(two_runs, monkeypatch):
    run = two_runs.failed
    result = cli(two_runs.project, monkeypatch, "show", run.info.run_id[:8])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith(f"MLflow run {run.info.run_id} (__default__): FAILED")
    assert "Error:" in out
    assert "  type     ValueError" in out and "  node     train" in out
    assert "  message  train failed on purpose: bad input" in out
    assert "  runner      SequentialRunner" in out and "  pipeline    __default__" in out
    assert "  model.fail  bad input" in out
    assert "Models: none" in out and "Metrics (last values): none" in out
    # every artifact, the plugin's own records included, and the timeline summed up
    files = two_runs.client.list_artifacts(run.info.run_id, "kedro")
    assert {f.path for f in files} >= {"kedro/timeline.html", "kedro/timeline.json"}
    listed = out.split("Artifacts:\n", 1)[1].split("Node timeline:")[0]
    assert {line.split()[0] for line in listed.splitlines()} == {f.path for f in files}
    timeline = next(f for f in files if f.path == "kedro/timeline.html")
    assert f"kedro/timeline.html  {timeline.file_size} bytes" in listed and "Artifacts: none" not in out
    assert "Node timeline: kedro/timeline.html (1 node(s), slowest train " in out
    assert (f"Open it in the MLflow UI: http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs/"
            f"{run.info.run_id} (start the UI with: kedro mlflow ui)") in out


def test_show_a_finished_run_lists_its_params_metrics_models_and_artifacts(two_runs, monkeypatch):
    run = two_runs.finished
    (model,) = two_runs.client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                                     filter_string=f"source_run_id = '{run.info.run_id}'")
    text = cli(two_runs.project, monkeypatch, "show", run.info.run_id)
    assert text.exit_code == 0, text.output
    assert "Error:" not in text.output
    assert f"  regressor  models:/{model.model_id}  READY" in text.output
    assert "  reports/report.json  " in text.output and "  kedro/timeline.html  " in text.output
    assert f"  coef  {run.data.metrics['coef']:.6g}" in text.output
    # the plugin's own bookkeeping tags are not listed as the user's tags
    assert run.data.tags["kedro.host"] and "kedro.host" not in text.output and "kedro.pid" not in text.output

    result = cli(two_runs.project, monkeypatch, "show", run.info.run_id[:12], "--json")
    shown = json.loads(result.output.splitlines()[-1])
    assert shown["run_id"] == run.info.run_id and shown["status"] == "FINISHED" and shown["error"] is None
    assert shown["params"] == run.data.params and shown["metrics"] == run.data.metrics
    assert shown["tags"] == run.data.tags
    assert shown["models"] == [{"name": "regressor", "model_id": model.model_id, "uri": f"models:/{model.model_id}",
                                "status": "READY"}]
    assert [a["path"] for a in shown["artifacts"]] == ["kedro/outputs.json", "kedro/pipeline.json", "kedro/timeline.html",
                                                    "kedro/timeline.json", "reports/report.json"]  # --json: all
    assert shown["artifacts"][-1]["size"] == (two_runs.project / "data" / "report.json").stat().st_size
    assert shown["experiment"] == two_runs.project.name


def test_show_an_unknown_run_says_how_to_find_one(two_runs, monkeypatch):
    prefix = cli(two_runs.project, monkeypatch, "show", "zzzz")
    assert prefix.exit_code == 1
    assert "No run whose id starts with 'zzzz'" in prefix.output and "kedro mlflow runs" in prefix.output
    full = cli(two_runs.project, monkeypatch, "show", "0" * 32)
    assert full.exit_code == 1
    assert f"No MLflow run '{'0' * 32}' in {store_uri(two_runs.project)}" in full.output


def test_every_command_help_says_what_it_does_and_gives_an_example():
    for name, _command in mlflow_commands.commands.items():
        result = CliRunner().invoke(commands, ["mlflow", name, "--help"])
        assert result.exit_code == 0, result.output
        summary = result.output.split("\n\n")[1].strip()
        assert summary and "\n" not in summary, f"{name}: {summary!r}"
        assert "Example" in result.output and f"kedro mlflow {name}" in result.output, name


def test_the_commands_import_mlflow_only_when_they_run():
    code = """
import sys
from click.testing import CliRunner
from kedro_mlflow_runs.cli import commands
for name in ("runs", "show", "ui", "close-run", "init", "migrate"):
    assert CliRunner().invoke(commands, ["mlflow", name, "--help"]).exit_code == 0
print("MLFLOW", "mlflow" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env=kedro_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MLFLOW False" in result.stdout


@pytest.mark.postgres
def test_runs_and_show_read_a_tracking_server_with_the_project_credentials(project_factory, mlflow_server,
                                                                            monkeypatch):
    url = mlflow_server.url.replace("http://", "http://kmr:s3cret@")
    experiment = f"inspect-{mlflow_server.port}-{id(monkeypatch)}"
    project = project_factory(
        mlflow_yml={"server": {"mlflow_tracking_uri": url, "credentials": "mlflow_creds"},
                    "tracking": {"experiment": {"name": experiment}}},
        local_files={"conf/local/credentials.yml": "mlflow_creds:\n  MLFLOW_TRACKING_TOKEN: t0ken\n"})
    run_session(project)
    # the commands set the credentials in their (short-lived) process: give them back after the test
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)

    listed = cli(project, monkeypatch, "runs", "--json")
    assert listed.exit_code == 0, listed.output
    (run,) = json.loads(listed.output.splitlines()[-1])
    assert run["status"] == "FINISHED"
    assert os.environ["MLFLOW_TRACKING_TOKEN"] == "t0ken"  # server.credentials was read and exported

    table = cli(project, monkeypatch, "runs")
    shown = cli(project, monkeypatch, "show", run["run_id"][:8])
    assert shown.exit_code == 0, shown.output
    from mlflow import MlflowClient

    exp_id = MlflowClient(mlflow_server.url).get_run(run["run_id"]).info.experiment_id
    assert f"Open it in the MLflow UI: {mlflow_server.url}/#/experiments/{exp_id}/runs/{run['run_id']}" in shown.output
    assert f"Experiment '{experiment}' in {mlflow_server.url}:" in table.output
    assert "s3cret" not in listed.output + table.output + shown.output


def test_the_table_shows_three_metrics_and_the_time_so_far_of_a_running_run():
    from kedro_mlflow_runs.cli.view import RunSummary, format_duration, render_table

    running = RunSummary(run_id="a" * 32, name="nightly", status="RUNNING", start_ms=1_000, end_ms=None,
                         pipeline="training", runner="ThreadRunner", kedro_run_id="k",
                         metrics={"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "e": 5.0})
    row = render_table([running], now_ms=1_000 + 125_000).splitlines()[1]
    assert "2m05s so far" in row
    assert row.endswith("a=1 b=2 c=3 +2 more")
    assert [format_duration(s) for s in (0.42, 59.9, 3725, None)] == ["0.4s", "59.9s", "1h02m", "-"]


def test_status_choices_show_as_the_docs_write_them_and_any_case_is_accepted(two_runs, monkeypatch):
    """Uppercase in --help and in the error for a wrong one (docs/cli.md); `failed` works as `FAILED`."""
    runs_help = CliRunner().invoke(commands, ["mlflow", "runs", "--help"]).output
    assert "--status [RUNNING|SCHEDULED|FINISHED|FAILED|KILLED]" in runs_help
    close_help = CliRunner().invoke(commands, ["mlflow", "close-run", "--help"]).output
    assert "--status [auto|FINISHED|FAILED|KILLED]" in close_help
    wrong = CliRunner().invoke(commands, ["mlflow", "runs", "--status", "DONE"])
    assert wrong.exit_code == 2
    assert "'DONE' is not one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED." in wrong.output
    result = cli(two_runs.project, monkeypatch, "runs", "--status", "failed", "--json")
    assert [r["run_id"] for r in json.loads(result.output.splitlines()[-1])] == [two_runs.failed.info.run_id]
