"""The rewrites of `kedro mlflow migrate`, one file at a time: what is found (code, never comments
or strings), what is written (it parses, a tuple stays a tuple), what is refused and named, and how
another tool's migration plugs in with a table of rules."""

from __future__ import annotations

import ast
import dataclasses
import os
import textwrap

import pytest
import yaml
from migrate_projects import migrate

from kedro_mlflow_runs.cli._catalog_edit import CatalogRule, RuleSet, rewrite_catalog
from kedro_mlflow_runs.cli._kedro_mlflow_rules import KEDRO_MLFLOW, KEDRO_MLFLOW_PYTHON
from kedro_mlflow_runs.cli._python_edit import SettingsRule, rewrite_python
from kedro_mlflow_runs.cli.migration import RULESETS, SETTINGS_RULES

PYTHON = dataclasses.replace(KEDRO_MLFLOW_PYTHON, settings=SETTINGS_RULES)
IMPORT = "from kedro_mlflow.framework.hooks import MlflowHook\n"


def _settings(text: str) -> tuple[str, list[str], list[str]]:
    edit = rewrite_python(text, "settings.py", PYTHON, settings=True)
    return edit.applied(), edit.changes, edit.problems


@pytest.mark.parametrize(("hooks", "expected"), [
    ("HOOKS = (MlflowHook(), MyHooks())\n", "HOOKS = (MyHooks(),)\n"),
    ("HOOKS = (MyHooks(), MlflowHook())\n", "HOOKS = (MyHooks(),)\n"),
    ("HOOKS = (MlflowHook(),)  # kedro-mlflow's\n", "HOOKS = ()  # kedro-mlflow's\n"),
    ("HOOKS = MlflowHook(),\n", "HOOKS = ()\n"),
    ("HOOKS = [MlflowHook(), MyHooks()]\n", "HOOKS = [MyHooks()]\n"),
    ("HOOKS = (\n    MyHooks(),\n    MlflowHook(),  # tracking\n    Other(),\n)\n",
     "HOOKS = (\n    MyHooks(),\n    Other(),\n)\n"),
    ("HOOKS = (MlflowHook(), A(), B())\n", "HOOKS = (A(), B())\n"),
])
def test_mlflow_hook_leaves_hooks_and_a_tuple_stays_a_tuple(hooks, expected):
    text = IMPORT + "from .hooks import MyHooks, Other, A, B\n" + hooks
    new, changes, problems = _settings(text)
    assert problems == [] and new == "from .hooks import MyHooks, Other, A, B\n" + expected
    assert type(ast.parse(new).body[-1].value) is type(ast.parse(hooks).body[-1].value)
    assert changes[0] == f"settings.py:1: import removed: {IMPORT.strip()} (kedro-mlflow's hook: this plugin " \
                         f"registers its own hooks)"
    line = next(n for n, code in enumerate(text.splitlines(), 1) if "MlflowHook()" in code)
    assert changes[1].startswith(f"settings.py:{line}: MlflowHook() removed from HOOKS")


def test_comments_and_strings_are_never_findings():
    text = textwrap.dedent('''\
        """Settings of kedro_mlflow_demo: from kedro_mlflow.framework.hooks import MlflowHook."""
        # from kedro_mlflow_demo.hooks import ProjectHooks
        # HOOKS = (MlflowHook(),)
        NOTE = "kedro_mlflow.io.models.MlflowModelTrackingDataset"  # kedro_mlflow
        ''')
    assert _settings(text) == (text, [], [])
    catalog = "# type: kedro_mlflow.io.models.MlflowModelTrackingDataset\nx:\n  type: pickle.PickleDataset\n" \
              "  filepath: 'kedro_mlflow.io.metrics.MlflowMetricDataset'\n"
    edit = rewrite_catalog(catalog, "catalog.yml", RULESETS)
    assert (edit.edits, edit.changes, edit.problems) == ([], [], [])


def test_code_it_cannot_rewrite_is_named_with_its_line():
    text = IMPORT + "import os; from kedro_mlflow.framework.hooks import MlflowHook as H\nhook = MlflowHook()  # mine\n"
    _, _, problems = _settings(text)
    assert "settings.py:3: 'hook = MlflowHook()  # mine' is used in a way this command does not rewrite" in problems[0]
    assert any(p.startswith("settings.py: cannot be rewritten safely (line 2 holds more than") for p in problems)


def test_catalog_edits_keep_comments_quotes_and_flow_style_and_load_as_intended():
    text = textwrap.dedent("""\
        m: {type: kedro_mlflow.io.models.MlflowModelTrackingDataset, flavor: mlflow.sklearn, artifact_path: "clf"}
        n:
          type: 'kedro_mlflow.io.models.mlflow_model_tracking_dataset.MlflowModelTrackingDataset'  # full path
          flavor: mlflow.sklearn
          save_args:
          run_id: ${globals:training_run}
        local:
          type: kedro_mlflow.io.models.MlflowModelLocalFileSystemDataset
          flavor: mlflow.sklearn
          filepath: data/06_models/m
          log_args: {a: 1}  # ignored by kedro-mlflow
        _metrics: &metrics
          type: kedro_mlflow.io.metrics.MlflowMetricsHistoryDataset
        train_metrics:
          <<: *metrics
        "{name}_metrics":
          type: kedro_mlflow.io.metrics.MlflowMetricsHistoryDataset
        old_spelling:  # kedro-mlflow 0.11's names
          type: kedro_mlflow.io.artifacts.MlflowArtifactDataSet
          data_set: {type: pickle.PickleDataset, filepath: data/x.pkl}
        registered:  # every argument of kedro-mlflow 1.x's registry dataset is taken here
          type: kedro_mlflow.io.models.MlflowModelRegistryDataset
          model_name: churn
          stage_or_version: 3
          alias: null
          flavor: mlflow.pyfunc
          pyfunc_workflow: python_model
          load_args: {}
          metadata: {owner: me}
        """)
    edit = rewrite_catalog(text, "catalog.yml", RULESETS)
    assert edit.problems == []
    new = yaml.safe_load(edit.applied())
    models = "kedro_mlflow_runs.io.models."
    assert new["m"] == {"type": f"{models}MlflowModelLoggerDataset", "flavor": "mlflow.sklearn", "save_args": {"name": "clf"}}
    assert new["n"] == {"type": f"{models}MlflowModelLoggerDataset", "flavor": "mlflow.sklearn",
                        "save_args": {"name": "model"}, "run_id": "${globals:training_run}"}
    assert new["local"] == {"type": f"{models}MlflowModelSaverDataset", "flavor": "mlflow.sklearn",
                            "filepath": "data/06_models/m"}
    assert new["train_metrics"] == {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricsHistoryDataset",
                                    "prefix": "train_metrics"}
    assert "prefix" not in new["{name}_metrics"]  # kedro-mlflow's hook never saw factory entries
    assert new["old_spelling"]["type"] == "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset"
    assert new["registered"]["type"] == f"{models}MlflowModelRegistryDataset"
    assert "# full path" in edit.applied() and "  run_id: ${globals:training_run}\n" in edit.applied()


def test_a_rewrite_that_would_not_load_as_intended_is_refused_and_nothing_is_written(project_factory, mocker):
    project = project_factory(catalog={"m": {"type": "kedro_mlflow.io.models.MlflowModelTrackingDataset",
                                             "flavor": "mlflow.sklearn"}})
    catalog = project / "conf" / "base" / "catalog.yml"
    before = catalog.read_bytes()
    mocker.patch("kedro_mlflow_runs.cli._catalog_entry._scalar_text", return_value="[model")  # a broken edit
    result = migrate(project, "--write")
    assert result.exit_code != 0 and "Nothing was written" not in result.output
    assert "conf/base/catalog.yml: cannot be rewritten safely (" in result.output
    assert catalog.read_bytes() == before and not catalog.with_name("catalog.yml.bak").exists()


def test_another_tool_plugs_in_with_a_rule_table_and_a_settings_rule():
    """How a migration from another tool adds its catalog types and settings.py edits."""

    def metrics(entry):
        entry.remove(("filepath",), "the metrics go to the run")
        entry.set(("prefix",), entry.name, "its metrics were shown under the entry name")

    tool = RuleSet(name="kedro-viz", key_of=lambda t: t.removeprefix("kedro_datasets.") if t.startswith(
        ("tracking.", "kedro_datasets.tracking.")) else None,
        rules={"tracking.MetricsDataset": CatalogRule("kedro_mlflow_runs.io.metrics.MlflowMetricsDataset", metrics)},
        hint="See the Kedro-Viz section.")
    edit = rewrite_catalog("scores:\n  type: tracking.MetricsDataset\n  filepath: data/09_tracking/scores.json\n"
                           "plot:\n  type: tracking.JSONDataset\n", "catalog.yml", (KEDRO_MLFLOW, tool))
    assert edit.changes[0] == "catalog.yml:2: scores: type tracking.MetricsDataset -> " \
                              "kedro_mlflow_runs.io.metrics.MlflowMetricsDataset"
    assert edit.problems == ["catalog.yml:5: plot: 'tracking.JSONDataset' has no counterpart in kedro-mlflow-runs. "
                             "See the Kedro-Viz section."]
    store = SettingsRule(modules=("kedro_viz.integrations.kedro.sqlite_store",),
                         assignments={"SESSION_STORE_CLASS": ("SESSION_STORE_ARGS",)}, why="Kedro-Viz's session store")
    rules = dataclasses.replace(KEDRO_MLFLOW_PYTHON, settings=(*SETTINGS_RULES, store))
    text = textwrap.dedent("""\
        from pathlib import Path

        from kedro_viz.integrations.kedro.sqlite_store import SQLiteStore

        SESSION_STORE_CLASS = SQLiteStore
        SESSION_STORE_ARGS = {"path": str(Path(__file__).parents[2] / "data")}
        """)
    edit = rewrite_python(text, "settings.py", rules, settings=True)
    assert edit.problems == [] and edit.applied() == "from pathlib import Path\n\n\n"
    assert [c.split(" (")[0] for c in edit.changes] == [
        "settings.py:3: import removed: from kedro_viz.integrations.kedro.sqlite_store import SQLiteStore",
        "settings.py:5: SESSION_STORE_CLASS removed", "settings.py:6: SESSION_STORE_ARGS removed"]


def test_what_cannot_be_migrated_is_named_and_fails_the_command(project_factory):
    project = project_factory()
    (project / "conf" / "base" / "catalog.yml").write_text(textwrap.dedent("""\
        parts:
          type: kedro_mlflow.io.artifacts.MlflowArtifactDataset
          dataset:
            type: partitions.PartitionedDataset
            path: data/parts
            dataset: json.JSONDataset
        odd:
          type: kedro_mlflow.io.something.Else
        typo:
          type: kedro_mlflow.io.metrics.MlflowMetricDataset
          kee: accuracy
        """))
    nodes = next((project / "src").iterdir()) / "nodes.py"
    nodes.write_text(nodes.read_text() + "\n\ndef wrap(p, c):\n    return KedroPipelineModel(p, c, 'x')\n"
                     "\nfrom kedro_mlflow.pipeline.pipeline_ml_factory import pipeline_ml_factory\n"
                     "from kedro_mlflow.io.catalog.switch_catalog_logging import switch_catalog_logging\n")
    result = migrate(project)
    assert result.exit_code != 0
    assert f"src/{nodes.parent.name}/nodes.py:" in result.output and "builds a KedroPipelineModel by hand" in result.output
    # a module path of kedro-mlflow's is rewritten to ours when the names exist here; else it is named
    assert "from kedro_mlflow.pipeline.pipeline_ml_factory import ... -> from kedro_mlflow_runs.pipeline" in result.output
    assert "imports switch_catalog_logging from kedro_mlflow.io.catalog.switch_catalog_logging, which has no " \
           "counterpart" in result.output
    assert "conf/base/catalog.yml:8: odd: 'kedro_mlflow.io.something.Else' has no counterpart" in result.output
    assert "parts: type kedro_mlflow.io.artifacts.MlflowArtifactDataset ->" in result.output  # that one migrates
    assert "conf/base/catalog.yml:11: typo: MlflowMetricDataset takes no argument kee; remove or rename it" \
           in result.output  # checked against the dataset it becomes


def test_migrate_writes_nothing_when_part_cannot_be_migrated(project_factory):
    project = project_factory(catalog={"m": {"type": "kedro_mlflow.io.models.MlflowModelTrackingDataset",
                                             "flavor": "mlflow.sklearn"}})
    settings = next((project / "src").iterdir()) / "settings.py"
    settings.write_text(IMPORT + "hook = MlflowHook()  # mine\n")
    catalog_before = (project / "conf" / "base" / "catalog.yml").read_text()
    result = migrate(project, "--write")
    assert result.exit_code != 0 and "settings.py:2" in result.output and "Nothing was written" in result.output
    assert (project / "conf" / "base" / "catalog.yml").read_text() == catalog_before
    assert settings.read_text().endswith("hook = MlflowHook()  # mine\n")


def test_a_file_that_is_not_text_in_its_encoding_is_named_and_nothing_is_written(project_factory):
    project = project_factory()
    package = next((project / "src").iterdir())
    catalog = project / "conf" / "base" / "catalog.yml"
    text = "m:\n  type: kedro_mlflow.io.metrics.MlflowMetricDataset\n"
    catalog.write_bytes(text.encode() + "# café\n".encode("latin-1"))
    result = migrate(project, "--write")
    assert result.exit_code != 0
    assert f"conf/base/catalog.yml: it is not utf-8 text (byte 0xe9 at offset {len(text) + 5}), and Kedro reads" \
           in result.output
    assert "iconv" in result.output and "Traceback" not in result.output
    assert not catalog.with_name("catalog.yml.bak").exists()

    catalog.write_text(text)
    nodes = package / "nodes.py"
    nodes.write_bytes(b"from kedro_mlflow.io.metrics import MlflowMetricDataset  # caf\xe9\n")
    result = migrate(project, "--write")
    assert result.exit_code != 0 and f"src/{package.name}/nodes.py: it is not utf-8 text" in result.output
    assert catalog.read_text() == text

    # a Python file that declares its encoding is read and written in it
    nodes.write_bytes(b"# -*- coding: latin-1 -*-\nfrom kedro_mlflow.io.metrics import MlflowMetricDataset  # caf\xe9\n")
    result = migrate(project, "--write")
    assert result.exit_code == 0, result.output
    assert nodes.read_bytes().endswith(b"from kedro_mlflow_runs.io.metrics import MlflowMetricDataset  # caf\xe9\n")


@pytest.mark.parametrize(("old", "new"), [
    ("MlflowModelLoggerDataSet", "models.MlflowModelLoggerDataset"),
    ("MlflowModelSaverDataSet", "models.MlflowModelSaverDataset"),
    ("MlflowArtifactDataSet", "artifacts.MlflowArtifactDataset"),
    ("MlflowMetricDataSet", "metrics.MlflowMetricDataset"),
    ("MlflowMetricHistoryDataSet", "metrics.MlflowMetricHistoryDataset"),
    ("MlflowMetricsDataSet", "metrics.MlflowMetricsHistoryDataset"),
    ("MlflowModelRegistryDataSet", "models.MlflowModelRegistryDataset"),
])
def test_kedro_mlflow_0_11_names_are_rewritten(old, new):
    edit = rewrite_catalog(f"x:\n  type: kedro_mlflow.io.{old}\n", "catalog.yml", RULESETS)
    assert edit.changes[0] == f"catalog.yml:2: x: type kedro_mlflow.io.{old} -> kedro_mlflow_runs.io.{new}"


def test_a_file_that_cannot_be_written_is_named_and_left_as_it_was(project_factory, mocker):
    project = project_factory(catalog={"m": {"type": "kedro_mlflow.io.metrics.MlflowMetricDataset"}})
    settings = next((project / "src").iterdir()) / "settings.py"
    settings.write_text(IMPORT + "HOOKS = (MlflowHook(),)\n")
    real_replace = os.replace

    def full_disk(source, target):
        if str(target).endswith("settings.py"):
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    mocker.patch("kedro_mlflow_runs.cli.migration.os.replace", side_effect=full_disk)
    result = migrate(project, "--write")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert f"could not write {settings}: No space left on device. Files already rewritten: catalog.yml" in result.output
    assert settings.read_text() == IMPORT + "HOOKS = (MlflowHook(),)\n"  # unchanged, and no temporary file left
    assert sorted(p.name for p in settings.parent.iterdir() if "settings" in p.name) == ["settings.py", "settings.py.bak"]
    catalog = project / "conf" / "base" / "catalog.yml"
    assert "kedro_mlflow_runs.io.metrics" in catalog.read_text() and catalog.with_name("catalog.yml.bak").exists()
