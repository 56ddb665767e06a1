"""A Kedro-Viz experiment-tracking project keeps its history: `kedro mlflow import-history` turns the
versioned tracking files and Viz's session store into MLflow runs, and `migrate --write` then `kedro run`
logs the same metric names into the run.

The project is laid out the way Kedro and Kedro-Viz wrote it: versioned files
``<filepath>/<session id>/<file name>`` of ``tracking.MetricsDataset``, ``tracking.JSONDataset`` and a
versioned ``matplotlib.MatplotlibWriter``, Viz's ``SQLiteStore`` in settings.py and its
``data/session_store.db`` (tables ``runs`` and ``user_run_details``, as Kedro-Viz created them).
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from kedro_project import kedro_run, make_project, store_uri

from kedro_mlflow_runs.cli import commands

pytestmark = pytest.mark.slow

CATALOG = textwrap.dedent("""\
    model_metrics:
      type: tracking.MetricsDataset
      filepath: data/09_tracking/model_metrics.json
      versioned: true
    companies_columns:  # versioned by default, as Kedro's docs wrote it
      type: kedro_datasets.tracking.JSONDataset
      filepath: data/09_tracking/companies_columns.json
    feature_plot:
      type: matplotlib.MatplotlibWriter
      filepath: data/08_reporting/feature_plot.png
      versioned: true
      save_args:  # moved under `dataset:` by migrate
        dpi: 50
    """)

SETTINGS = textwrap.dedent("""\
    \"\"\"Project settings.\"\"\"
    from pathlib import Path

    from kedro_viz.integrations.kedro.sqlite_store import SQLiteStore

    # Viz's experiment tracking: the session store
    SESSION_STORE_CLASS = SQLiteStore
    SESSION_STORE_ARGS = {"path": str(Path(__file__).parents[2] / "data")}
    """)

NODES = textwrap.dedent("""\
    def score(data):
        return {"r2": 0.91, "mae": 1.5}


    def columns(data):
        return {"n_columns": 7, "target": "price", "nested": {"a": 1}}
    """)

REGISTRY = textwrap.dedent("""\
    from kedro.pipeline import node, pipeline

    from .nodes import columns, score


    def register_pipelines():
        return {"__default__": pipeline([node(score, "params:data", "model_metrics", name="score"),
                                         node(columns, "params:data", "companies_columns", name="columns")])}
    """)

#: The sessions: two `kedro run`s with files, one without (it failed before saving), one `kedro viz`.
SESSIONS = {
    "2024-03-01T09.15.00.123Z": {"git": {"commit_sha": "a" * 40, "dirty": False, "branch": "main"},
                                 "cli": {"command_name": "run", "command_path": "kedro run", "args": []},
                                 "username": "ana"},
    "2024-03-02T10.00.00.000Z": {"git": {"commit_sha": "b" * 40, "dirty": True, "branch": "feature"},
                                 "cli": {"command_name": "run", "command_path": "kedro run",
                                         "args": ["--pipeline", "__default__"]}, "username": "ana"},
    "2024-03-03T11.30.00.500Z": {"cli": {"command_name": "run", "command_path": "kedro run", "args": []}},
    "2024-03-04T08.00.00.000Z": {"cli": {"command_name": "viz", "command_path": "kedro viz", "args": []}},
}
FILES = {  # version -> (metrics, JSON values); the third session has none
    "2024-03-01T09.15.00.123Z": ({"r2": 0.8, "mae": 2.0}, {"n_columns": 5, "target": "price"}),
    "2024-03-02T10.00.00.000Z": ({"r2": 0.85, "mae": 1.7}, {"n_columns": 6, "target": "price", "api_key": "x"}),
}
#: A version on disk that is in no session store (Viz showed it all the same)
ORPHAN = "2024-02-28T18.00.00.000Z"


def _write_history(project: Path) -> None:
    tracking = project / "data" / "09_tracking"
    for version, (metrics, values) in {**FILES, ORPHAN: ({"r2": 0.5}, None)}.items():
        (tracking / "model_metrics.json" / version).mkdir(parents=True)
        (tracking / "model_metrics.json" / version / "model_metrics.json").write_text(json.dumps(metrics))
        if values is not None:
            (tracking / "companies_columns.json" / version).mkdir(parents=True)
            (tracking / "companies_columns.json" / version / "companies_columns.json").write_text(json.dumps(values))
    plot = project / "data" / "08_reporting" / "feature_plot.png" / "2024-03-02T10.00.00.000Z"
    plot.mkdir(parents=True)
    (plot / "feature_plot.png").write_bytes(b"\x89PNG\r\n\x1a\nnot a real picture")
    with sqlite3.connect(project / "data" / "session_store.db") as db:  # Kedro-Viz's tables
        db.execute("CREATE TABLE runs (id VARCHAR NOT NULL, blob JSON, PRIMARY KEY (id))")
        db.execute("CREATE TABLE user_run_details (id INTEGER NOT NULL, run_id VARCHAR, bookmark BOOLEAN, "
                   "title VARCHAR, notes VARCHAR, PRIMARY KEY (id), UNIQUE (run_id), FOREIGN KEY(run_id) "
                   "REFERENCES runs (id))")
        for version, blob in SESSIONS.items():  # Viz stored the JSON text in a JSON column: encoded twice
            db.execute("INSERT INTO runs VALUES (?, ?)", (version, json.dumps(json.dumps({"session_id": version,
                                                                                          **blob}))))
        db.execute("INSERT INTO user_run_details VALUES (1, '2024-03-02T10.00.00.000Z', 1, 'best so far', "
                   "'more trees')")


#: Kedro-Viz before 11, as far as the project's settings.py needs it (Kedro imports settings.py for every
#: `kedro` command): its session store class, a Kedro session store that, like Viz's, writes a row for each
#: session it saves (here a line in `saved_sessions.txt` beside the store).
OLD_VIZ = {"kedro_viz/__init__.py": "", "kedro_viz/integrations/__init__.py": "",
           "kedro_viz/integrations/kedro/__init__.py": "",
           "kedro_viz/integrations/kedro/sqlite_store.py": textwrap.dedent("""\
               from pathlib import Path

               from kedro.framework.session.store import BaseSessionStore


               class SQLiteStore(BaseSessionStore):
                   def save(self):
                       with open(Path(self._path) / "saved_sessions.txt", "a") as saved:
                           saved.write(self._session_id + "\\n")
               """)}


@pytest.fixture(scope="module")
def viz_project(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Iterator[Path]:
    old_viz = tmp_path_factory.mktemp("old_viz")
    for rel, text in OLD_VIZ.items():
        (old_viz / rel).parent.mkdir(parents=True, exist_ok=True)
        (old_viz / rel).write_text(text)
    project = make_project(tmp_path_factory.mktemp("viz"), nodes=NODES, registry=REGISTRY,
                           parameters={"data": {"n": 1}}, template_db=template_db,
                           mlflow_yml={"tracking": {"experiment": {"name": "viz"}}})
    (project / "conf" / "base" / "catalog.yml").write_text(CATALOG)
    (project / "src" / project.name / "settings.py").write_text(SETTINGS)
    _write_history(project)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.syspath_prepend(str(old_viz))
        yield project


def _cli(project: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.chdir(project)
    return CliRunner().invoke(commands, ["mlflow", *args], catch_exceptions=False)


def _runs(project: Path) -> list[Any]:
    from mlflow import MlflowClient

    client = MlflowClient(store_uri(project))
    experiment = client.get_experiment_by_name("viz")
    return [] if experiment is None else sorted(client.search_runs([experiment.experiment_id]),
                                                key=lambda r: r.info.start_time)


@pytest.fixture(scope="module")
def imported(viz_project: Path) -> dict[str, Any]:
    """The dry run, the import, and a second import, in that order."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        dry = _cli(viz_project, monkeypatch, "import-history")
        after_dry = _runs(viz_project)
        first = _cli(viz_project, monkeypatch, "import-history", "--write")
        runs = _runs(viz_project)
        again = _cli(viz_project, monkeypatch, "import-history", "--write")
    return {"project": viz_project, "dry": dry, "after_dry": after_dry, "first": first, "runs": runs, "again": again,
            "after_again": _runs(viz_project)}


def test_the_dry_run_lists_the_sessions_and_creates_nothing(imported):
    assert imported["dry"].exit_code == 0, imported["dry"].output
    out = imported["dry"].output
    assert "Kedro-Viz history: 4 session(s)" in out and "0 imported before" in out
    assert "  2024-03-02T10.00.00.000Z  kedro run --pipeline __default__  metrics: 2, params: 2, files: 2" in out
    assert "2024-03-04T08.00.00.000Z" not in out  # a `kedro viz` session holds no run
    assert "Dry run: nothing was created. Run with --write to create 4 run(s)" in out
    assert imported["after_dry"] == []
    # nor did any of the plugin's commands add a session to Viz's store (they never save their session)
    assert not (imported["project"] / "data" / "saved_sessions.txt").exists()


def test_each_session_becomes_a_finished_run_with_its_time_git_command_metrics_values_and_plots(imported):
    from mlflow import MlflowClient

    assert imported["first"].exit_code == 0, imported["first"].output
    runs = imported["runs"]
    assert [r.data.tags["kedro_viz.session_id"] for r in runs] == [ORPHAN, *list(SESSIONS)[:3]]
    assert {r.info.status for r in runs} == {"FINISHED"}
    orphan, first, second, third = runs
    assert first.info.start_time == 1709284500123  # 2024-03-01T09:15:00.123Z
    assert first.data.metrics == {"model_metrics.r2": 0.8, "model_metrics.mae": 2.0}
    assert first.data.params == {"companies_columns.n_columns": "5", "companies_columns.target": "price"}
    assert first.data.tags["mlflow.source.git.commit"] == "a" * 40
    assert first.data.tags["kedro.command"] == "kedro run" and first.data.tags["mlflow.user"] == "ana"
    assert first.info.run_name == "kedro-viz 2024-03-01T09.15.00.123Z"
    # what the user wrote in Viz: the title, the notes, the bookmark; a credential-like key is never a param
    assert second.info.run_name == "best so far" and second.data.tags["mlflow.note.content"] == "more trees"
    assert second.data.tags["kedro_viz.bookmark"] == "true" and second.data.tags["kedro_viz.git_dirty"] == "true"
    assert "companies_columns.api_key" not in second.data.params
    client = MlflowClient(store_uri(imported["project"]))
    assert {a.path for a in client.list_artifacts(second.info.run_id)} == {"companies_columns.json",
                                                                          "feature_plot.png"}
    assert third.data.metrics == {} and third.data.tags["kedro.command"] == "kedro run"  # a session without files
    assert orphan.data.metrics == {"model_metrics.r2": 0.5} and "mlflow.source.git.commit" not in orphan.data.tags


def test_a_second_import_adds_nothing(imported):
    assert imported["again"].exit_code == 0, imported["again"].output
    assert "4 imported before" in imported["again"].output and "Nothing to import." in imported["again"].output
    assert [r.info.run_id for r in imported["after_again"]] == [r.info.run_id for r in imported["runs"]]


def test_migrate_then_kedro_run_logs_the_metric_names_viz_showed(viz_project, imported, monkeypatch):
    assert imported["first"].exit_code == 0  # the history first: migrate rewrites the entries it reads
    result = _cli(viz_project, monkeypatch, "migrate", "--write")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "model_metrics: type tracking.MetricsDataset -> kedro_mlflow_runs.io.metrics.MlflowMetricsDataset" in out
    assert "model_metrics: prefix: model_metrics" in out
    assert "settings.py:4: import removed: from kedro_viz.integrations.kedro.sqlite_store import SQLiteStore" in out
    settings = (viz_project / "src" / viz_project.name / "settings.py").read_text()
    assert "SESSION_STORE" not in settings and "kedro_viz" not in settings
    compile(settings, "settings.py", "exec")
    import yaml
    from kedro.io import AbstractDataset

    catalog = yaml.safe_load((viz_project / "conf" / "base" / "catalog.yml").read_text())
    assert catalog["feature_plot"]["dataset"]["type"] == "matplotlib.MatplotlibDataset"  # kedro-datasets' new name
    assert catalog["feature_plot"]["dataset"]["save_args"] == {"dpi": 50}  # its arguments went with it
    for name in ("feature_plot", "companies_columns"):  # each migrated entry builds with today's kedro-datasets
        AbstractDataset.from_config(name, catalog[name])
    run = kedro_run(viz_project)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    latest = _runs(viz_project)[-1]
    assert latest.data.tags.get("kedro_viz.session_id") is None and latest.info.status == "FINISHED"
    assert latest.data.metrics == {"model_metrics.r2": 0.91, "model_metrics.mae": 1.5} | {
        k: v for k, v in latest.data.metrics.items() if k.startswith("kedro.")}
    from mlflow import MlflowClient

    artifacts = {a.path for a in MlflowClient(store_uri(viz_project)).list_artifacts(latest.info.run_id)}
    assert "companies_columns.json" in artifacts  # the JSON values, logged as the file Viz showed
    # the history is still found after the migration (in the catalog's .bak): nothing new to import
    again = _cli(viz_project, monkeypatch, "import-history")
    assert again.exit_code == 0 and "4 imported before" in again.output


def test_migrate_rules_for_viz_entries_keep_unversioned_plots_and_report_what_they_cannot_move():
    from kedro_mlflow_runs.cli._catalog_edit import rewrite_catalog
    from kedro_mlflow_runs.cli.migration import RULESETS

    text = textwrap.dedent("""\
        old_metrics:
          type: kedro.extras.datasets.tracking.MetricsDataSet
          filepath: data/09_tracking/old.json
        live_plot:
          type: matplotlib.MatplotlibWriter
          filepath: data/08_reporting/live.png
        flow_plot: {type: plotly.PlotlyDataset, filepath: data/08_reporting/f.json, versioned: true, plotly_args: {type: bar}}
        notes:
          <<: *defaults
          type: tracking.JSONDataset
          filepath: data/09_tracking/notes.json
        """)
    text = "_defaults: &defaults\n  save_args: {indent: 2}\n" + text
    edit = rewrite_catalog(text, "catalog.yml", RULESETS)
    assert "catalog.yml:4: old_metrics: type kedro.extras.datasets.tracking.MetricsDataSet -> " \
           "kedro_mlflow_runs.io.metrics.MlflowMetricsDataset" in edit.changes
    assert not any("live_plot" in change for change in edit.changes)  # not versioned: Viz never showed it
    # what cannot be moved as text is named: an argument from an anchor, a nested value of a one-line entry
    assert ("catalog.yml:11: notes: save_args come(s) from a YAML anchor; move them under dataset: by hand. the "
            "file dataset it wraps, logged to the run") in edit.problems
    assert ("catalog.yml:9: flow_plot: the entry is written in flow style; move filepath, versioned, plotly_args "
            "under dataset: by hand. the file dataset it wraps, logged to the run") in edit.problems


ARTIFACT = "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset"


def test_migrate_moves_every_argument_of_a_wrapped_plot_under_dataset_as_written():
    """Nested mappings, comments, block scalars and Windows line ends move with the wrapped dataset; Kedro-Viz's
    `metadata` stays on the entry."""
    from kedro_mlflow_runs.cli._catalog_edit import rewrite_catalog
    from kedro_mlflow_runs.cli.migration import RULESETS

    text = textwrap.dedent("""\
        styled_plot:
          type: plotly.PlotlyDataset
          filepath: data/08_reporting/styled.json
          versioned: true
          plotly_args:  # how Viz drew it
            type: bar
            fig:
              x: shuttle_type
              y: passenger_capacity
            layout: {title: Capacity}
          metadata:
            kedro-viz: {layer: reporting}

        fig_plot:
          type: matplotlib.MatplotlibWriter
          filepath: data/08_reporting/fig.png
          save_args: {dpi: 200}
          versioned: true
        notes:
          type: tracking.JSONDataset
          filepath: data/09_tracking/notes.json
          save_args:
            indent: 2
          fs_args:
            open_args_save: |
              kept as written
        """).replace("\n", "\r\n")
    edit = rewrite_catalog(text, "catalog.yml", RULESETS)
    assert edit.problems == []
    written = edit.applied()
    assert "\r\n" in written and "\n" not in written.replace("\r\n", "")  # the file's own line ends
    assert "    plotly_args:  # how Viz drew it\r\n      type: bar\r\n" in written  # the comment moved too
    assert yaml.safe_load(written) == {
        "styled_plot": {"type": ARTIFACT, "metadata": {"kedro-viz": {"layer": "reporting"}}, "dataset": {
            "type": "plotly.PlotlyDataset", "filepath": "data/08_reporting/styled.json", "versioned": True,
            "plotly_args": {"type": "bar", "fig": {"x": "shuttle_type", "y": "passenger_capacity"},
                            "layout": {"title": "Capacity"}}}},
        "fig_plot": {"type": ARTIFACT, "dataset": {"type": "matplotlib.MatplotlibDataset",
                                                   "filepath": "data/08_reporting/fig.png",
                                                   "save_args": {"dpi": 200}, "versioned": True}},
        "notes": {"type": ARTIFACT, "dataset": {"type": "json.JSONDataset", "versioned": True,
                                                "filepath": "data/09_tracking/notes.json", "save_args": {"indent": 2},
                                                "fs_args": {"open_args_save": "kept as written\n"}}}}
    assert "catalog.yml:2: styled_plot: dataset: {type, filepath, versioned, plotly_args} (the file dataset it " \
           "wraps, logged to the run)" in edit.changes


def test_a_broken_tracking_file_or_session_store_is_named_and_nothing_is_imported(project_factory, monkeypatch):
    project = project_factory(mlflow_yml={"tracking": {"experiment": {"name": "viz"}}})
    (project / "conf" / "base" / "catalog.yml").write_text(CATALOG)
    version = project / "data" / "09_tracking" / "model_metrics.json" / "2024-03-01T09.15.00.123Z"
    version.mkdir(parents=True)
    (version / "model_metrics.json").write_text('{"r2": "high"}')
    result = _cli(project, monkeypatch, "import-history", "--write")
    assert result.exit_code == 1
    assert (f"{version / 'model_metrics.json'} (dataset 'model_metrics'): metric 'r2' is 'high', not a number"
            in result.output)
    (version / "model_metrics.json").write_text('{"r2": 0.5')
    result = _cli(project, monkeypatch, "import-history", "--write")
    assert result.exit_code == 1 and "(dataset 'model_metrics', version 2024-03-01T09.15.00.123Z) is not valid JSON" \
        in result.output
    result = _cli(project, monkeypatch, "import-history", "--session-store", "nowhere.db")
    assert result.exit_code == 1 and "no session store at nowhere.db" in result.output
    assert _runs(project) == []


def test_a_dry_run_in_a_project_with_no_store_yet_creates_none(project_factory, monkeypatch):
    """A newcomer's first look at the history: no `mlflow.db` is left behind by the dry run."""
    project = project_factory(mlflow_yml={"tracking": {"experiment": {"name": "viz"}}})
    (project / "mlflow.db").unlink(missing_ok=True)
    (project / "conf" / "base" / "catalog.yml").write_text(CATALOG)
    version = project / "data" / "09_tracking" / "model_metrics.json" / "2024-03-01T09.15.00.123Z"
    version.mkdir(parents=True)
    (version / "model_metrics.json").write_text('{"r2": 0.5}')
    dry = _cli(project, monkeypatch, "import-history")
    assert dry.exit_code == 0, dry.output
    assert "1 session(s)" in dry.output and "0 imported before" in dry.output
    assert "Dry run: nothing was created. Run with --write to create 1 run(s)" in dry.output
    assert not (project / "mlflow.db").exists()
    written = _cli(project, monkeypatch, "import-history", "--write")
    assert written.exit_code == 0, written.output
    (run,) = _runs(project)
    assert run.info.status == "FINISHED" and run.data.metrics == {"model_metrics.r2": 0.5}


def test_a_failed_import_is_named_kept_by_a_dry_run_and_replaced_by_the_next_import(project_factory, monkeypatch,
                                                                                    mocker):
    from mlflow import MlflowClient

    project = project_factory(mlflow_yml={"tracking": {"experiment": {"name": "viz"}}})
    (project / "conf" / "base" / "catalog.yml").write_text(CATALOG)
    _write_history(project)
    real = MlflowClient.log_artifact
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):  # the store fails on the first upload only
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    mocker.patch.object(MlflowClient, "log_artifact", flaky)
    first = _cli(project, monkeypatch, "import-history", "--write")
    assert first.exit_code == 1
    assert "Could not import Kedro-Viz session 2024-03-01T09.15.00.123Z (" in first.output
    assert "OSError: disk full. Run the command again: it replaces that run." in first.output
    (failed,) = [r for r in _runs(project) if r.info.status == "FAILED"]
    dry = _cli(project, monkeypatch, "import-history")
    assert dry.exit_code == 0 and "  2024-03-01T09.15.00.123Z  kedro run" in dry.output
    assert failed.info.run_id in [r.info.run_id for r in _runs(project)]  # a dry run deletes nothing
    again = _cli(project, monkeypatch, "import-history", "--write")
    assert again.exit_code == 0, again.output
    runs = _runs(project)
    assert failed.info.run_id not in [r.info.run_id for r in runs]
    assert sorted(r.data.tags["kedro_viz.session_id"] for r in runs) == sorted([ORPHAN, *list(SESSIONS)[:3]])
    assert {r.info.status for r in runs} == {"FINISHED"}
