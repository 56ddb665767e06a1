"""`kedro mlflow diff RUN_A RUN_B` on two real runs of a project in a git checkout: between them a
parameter, the input data, the code (a commit adding a node) and a metric changed."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kedro_project import kedro_run, make_project, store_uri

from kedro_mlflow_runs.cli import commands

pytestmark = pytest.mark.slow

NODES = textwrap.dedent("""\
    def total(raw, model):
        return {"score": float(raw["x"].sum()) * float(model["C"])}


    def double(raw):
        return raw.assign(x=raw["x"] * 2)
    """)
REGISTRY = textwrap.dedent("""\
    from kedro.pipeline import node, pipeline

    from .nodes import double, total


    def register_pipelines():
        return {"__default__": pipeline([node(total, ["raw", "params:model"], "scores", name="total")])}
    """)
CATALOG = {"raw": {"type": "pandas.CSVDataset", "filepath": "data/raw.csv"},
           "scores": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricsDataset"}}


def _git(project: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=project, check=True,
                   capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> dict[str, Any]:
    from mlflow import MlflowClient

    project = make_project(tmp_path_factory.mktemp("diff"), nodes=NODES, registry=REGISTRY, catalog=CATALOG,
                           parameters={"model": {"C": 1.0, "kernel": "rbf"}}, template_db=template_db)
    (project / "data").mkdir()
    (project / "data" / "raw.csv").write_text("x\n1\n2\n")
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "first")
    first = kedro_run(project)
    # the second run: another C, other data, and a commit that adds a node
    (project / "data" / "raw.csv").write_text("x\n1\n2\n3\n")
    registry = project / "src" / project.name / "pipeline_registry.py"
    registry.write_text(REGISTRY.replace('name="total")', 'name="total"),\n        node(double, "raw", "doubled", '
                                                                              'name="double")'))
    _git(project, "commit", "-qam", "second")
    second = kedro_run(project, "--params", "model.C=3.0")
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-3000:]
    client = MlflowClient(store_uri(project))
    experiment = client.get_experiment_by_name(project.name)
    runs = sorted(client.search_runs([experiment.experiment_id]), key=lambda r: r.info.start_time)
    return {"project": project, "client": client, "a": runs[0], "b": runs[1], "experiment": experiment}


def _diff(project: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.chdir(project)
    return CliRunner().invoke(commands, ["mlflow", "diff", *args], catch_exceptions=False)


def test_diff_shows_each_kind_of_change_side_by_side(two_runs, monkeypatch):
    a, b = two_runs["a"], two_runs["b"]
    result = _diff(two_runs["project"], monkeypatch, a.info.run_id[:8], b.info.run_id[:8])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"A: {a.info.run_id} (__default__, FINISHED)\nB: {b.info.run_id} (__default__, FINISHED)\n" in out
    assert "Status: FINISHED (same)" in out
    commit_a, commit_b = a.data.tags["mlflow.source.git.commit"], b.data.tags["mlflow.source.git.commit"]
    assert commit_a != commit_b and f"Code: git {commit_a[:12]} -> {commit_b[:12]}" in out
    assert "  command  kedro run -> kedro run --params model.C=3.0" in out
    assert "Parameters: 1 changed, 0 added, 0 removed\n  model.C  1.0 -> 3.0\n" in out
    assert "Metrics: 1 changed, 0 added, 0 removed\n  score  3 -> 18 (+15)\n" in out
    assert "Input data: 1 of 1 dataset(s) changed\n  raw  digest " in out
    assert "Pipeline: 1 node(s) added, 0 removed\n  + double\n" in out
    assert "Node durations (largest changes):\n  total  " in out


def test_diff_json_holds_the_same_alone_on_the_last_line(two_runs, monkeypatch):
    a, b = two_runs["a"], two_runs["b"]
    result = _diff(two_runs["project"], monkeypatch, a.info.run_id, b.info.run_id[:10], "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output.splitlines()[-1])
    assert found["runs"]["a"]["run_id"] == a.info.run_id and found["runs"]["b"]["run_id"] == b.info.run_id
    assert found["params"] == {"changed": {"model.C": ["1.0", "3.0"]}, "added": {}, "removed": {}}
    assert found["metrics"]["changed"] == {"score": {"a": 3.0, "b": 18.0, "delta": 15.0}}
    digests = {i.dataset.name: i.dataset.digest for r in (a, b) for i in r.inputs.dataset_inputs}
    assert found["inputs"]["raw"]["changed"] is True and found["inputs"]["raw"]["b"] == digests["raw"]
    assert found["nodes"] == {"added": ["double"], "removed": []}
    assert found["code"]["changed"] is True and found["status"]["changed"] is False
    assert [d["node"] for d in found["durations"]] == ["total"]


def test_diff_refuses_runs_of_two_experiments_and_unknown_runs(two_runs, monkeypatch):
    client = two_runs["client"]
    other = client.create_run(client.create_experiment("elsewhere")).info.run_id
    client.set_terminated(other, "FINISHED")
    a = two_runs["a"].info.run_id
    result = _diff(two_runs["project"], monkeypatch, a, other)
    assert result.exit_code == 1
    assert (f"Run {a} is in experiment '{two_runs['project'].name}' and run {other} in 'elsewhere': diff compares "
            f"two runs of one experiment") in result.output
    result = _diff(two_runs["project"], monkeypatch, a[:8], "ffffffff")
    assert result.exit_code == 1 and "No run whose id starts with 'ffffffff'" in result.output


def test_the_command_line_page_shows_diff_output_as_it_is(two_runs, monkeypatch):
    """docs/cli.md's example is this module's two runs: the same lines, up to ids, digests and timings."""
    import re

    page = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    shown = page.split("$ kedro mlflow diff 3f9c1a2b 7d2e8a41\n", 1)[1].split("```", 1)[0]
    result = _diff(two_runs["project"], monkeypatch, two_runs["a"].info.run_id[:8], two_runs["b"].info.run_id[:8])
    real = result.output[re.search(r"^A: ", result.output, re.M).start():]

    def generic(text: str) -> list[str]:
        text = re.sub(r"\b[0-9a-f]{12,32}\b", "<id>", text)
        return [re.sub(r"\d+(\.\d+)?(e-?\d+)? s", "<t> s", line) for line in text.splitlines()]

    assert generic(real) == generic(shown)
