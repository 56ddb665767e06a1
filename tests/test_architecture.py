"""What the architecture promises users: importing changes nothing, disabled means disabled,
``start()`` is the ``with`` block, the runner guard covers the first session of a process,
errors carry what they are about, and the MLflow private names we use still exist."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import all_runs
from kedro_project import kedro_env, store_uri

from kedro_mlflow_runs import (
    ConfigError,
    RunConflictError,
    RunContext,
    RunNotFoundError,
    RunState,
    build_config,
)

IO = "kedro_mlflow_runs.io"

#: One catalog entry per dataset class the plugin exports (legacy names included).
EVERY_DATASET = {
    "logger": {"type": f"{IO}.models.MlflowModelLoggerDataset", "flavor": "mlflow.sklearn"},
    "logger_legacy": {"type": f"{IO}.models.MlflowModelLoggerDataSet", "flavor": "mlflow.sklearn"},
    "tracking_alias": {"type": f"{IO}.models.MlflowModelTrackingDataset", "flavor": "mlflow.pyfunc"},
    "saver": {"type": f"{IO}.models.MlflowModelSaverDataset", "flavor": "mlflow.sklearn", "filepath": "data/m"},
    "saver_legacy": {"type": f"{IO}.models.MlflowModelSaverDataSet", "flavor": "mlflow.sklearn",
                     "filepath": "data/m2"},
    "local_fs": {"type": f"{IO}.models.MlflowModelLocalFileSystemDataset", "flavor": "mlflow.sklearn",
                 "filepath": "data/m3"},
    "registry": {"type": f"{IO}.models.MlflowModelRegistryDataset", "model_name": "clf", "alias": "champion"},
    "artifact": {"type": f"{IO}.artifacts.MlflowArtifactDataset",
                 "dataset": {"type": "json.JSONDataset", "filepath": "data/a.json"}},
    "artifact_legacy": {"type": f"{IO}.artifacts.MlflowArtifactDataSet",
                        "dataset": {"type": f"{IO}.models.MlflowModelSaverDataset", "flavor": "mlflow.sklearn",
                                    "filepath": "data/m4"}},
    "metric": {"type": f"{IO}.metrics.MlflowMetricDataset"},
    "history": {"type": f"{IO}.metrics.MlflowMetricHistoryDataset"},
    "metrics": {"type": f"{IO}.metrics.MlflowMetricsDataset", "prefix": "eval"},
    "metrics_history": {"type": f"{IO}.metrics.MlflowMetricsHistoryDataset"},
}


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=kedro_env(), capture_output=True,
                          text=True, timeout=180)


def test_every_exported_dataset_class_is_in_the_disabled_catalog():
    import kedro_mlflow_runs.io as io

    exported = {name for name in io.__all__ if name.startswith("Mlflow")}
    used = {entry["type"].rpartition(".")[2] for entry in EVERY_DATASET.values()}
    used |= {EVERY_DATASET["artifact_legacy"]["dataset"]["type"].rpartition(".")[2]}
    assert exported <= used


def test_disabled_pipeline_with_every_dataset_type_imports_no_mlflow(project_factory):
    project = project_factory(catalog=EVERY_DATASET,
                              mlflow_yml={"tracking": {"disable_tracking": {"pipelines": ["quiet"]}}})
    result = _python(f"""
        import sys
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project
        bootstrap_project({str(project)!r})
        with KedroSession.create(project_path={str(project)!r}) as session:
            session.run(pipeline_names=["quiet"])
        with KedroSession.create(project_path={str(project)!r}) as session:
            catalog = session.load_context().catalog
            built = [type(catalog.get(name)).__name__ for name in {sorted(EVERY_DATASET)!r}]
        print("BUILT", len(built))
        print("MLFLOW_MODULES", sorted(m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")))
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"BUILT {len(EVERY_DATASET)}" in result.stdout
    assert "MLFLOW_MODULES []" in result.stdout


def test_importing_the_plugin_changes_nothing_in_the_process():
    result = _python("""
        import atexit, logging, signal, sys
        from kedro.framework.session import KedroSession
        from kedro.runner import SequentialRunner
        before = (KedroSession.run, SequentialRunner.run, atexit._ncallbacks(),
                  [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)],
                  logging.getLogger("kedro_mlflow_runs").level)
        import kedro_mlflow_runs, kedro_mlflow_runs.hooks, kedro_mlflow_runs.io, kedro_mlflow_runs.cli
        after = (KedroSession.run, SequentialRunner.run, atexit._ncallbacks(),
                 [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)],
                 logging.getLogger("kedro_mlflow_runs").level)
        print("UNCHANGED", before == after, "MLFLOW", "mlflow" in sys.modules)
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "UNCHANGED True MLFLOW False" in result.stdout


def test_what_kedro_loads_for_every_command_is_two_small_modules():
    """Kedro imports our hooks and commands for every ``kedro`` command: they pull in nothing else of
    ours (config, run state, datasets load on first use), and the package's names still resolve."""
    result = _python("""
        import sys
        import kedro_mlflow_runs.cli, kedro_mlflow_runs.framework.hooks
        print("LOADED", sorted(m for m in sys.modules if m.startswith("kedro_mlflow_runs")))
        import kedro_mlflow_runs
        print("RESOLVED", all(getattr(kedro_mlflow_runs, name) is not None for name in kedro_mlflow_runs.__all__))
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = set(ast.literal_eval(result.stdout.split("LOADED ", 1)[1].splitlines()[0]))
    commands = {f"kedro_mlflow_runs.cli.{name}" for name in
                ("close_run", "diff", "import_history", "init", "migrate", "modelify", "open_run", "runs", "ui")}
    assert loaded == {"kedro_mlflow_runs", "kedro_mlflow_runs._version",
                      "kedro_mlflow_runs.cli", "kedro_mlflow_runs.framework", "kedro_mlflow_runs.framework.hooks",
                      *commands}
    assert "RESOLVED True" in result.stdout


def test_system_exit_in_the_first_session_of_a_process_ends_the_run_before_run_returns(project):
    """The runner guard, not a later session or atexit: checked before the process does anything else."""
    result = _python(f"""
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project
        from mlflow import MlflowClient
        bootstrap_project({str(project)!r})
        from kedro.runner import SequentialRunner
        runner = SequentialRunner()
        with KedroSession.create(project_path={str(project)!r}, runtime_params={{"model": {{"exit": 3}}}}) as s:
            try:
                s.run(runner=runner)
            except SystemExit:
                client = MlflowClient({store_uri(project)!r})
                (exp,) = [e for e in client.search_experiments() if e.name != "Default"]
                (run,) = client.search_runs([exp.experiment_id])
                print("STATUS", run.info.status, "GUARD_LEFT", "run" in vars(runner))
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "STATUS KILLED GUARD_LEFT False" in result.stdout


def _published_state() -> tuple:
    import os

    import mlflow

    active = mlflow.active_run()
    return (active.info.run_id if active else None, mlflow.get_tracking_uri(),
            "KEDRO_MLFLOW_RUNS_HANDLE" in os.environ, os.environ.get("MLFLOW_TRACKING_URI"))


def test_start_and_end_mean_the_same_as_the_with_block(project, client_for):
    import mlflow

    config = build_config({}, project_path=project)
    outside = _published_state()

    explicit = RunContext(config, kedro_run_id="explicit")
    explicit.start()
    inside_explicit = _published_state()
    explicit.end(RunState.FINISHED)
    after_explicit = _published_state()

    with RunContext(config, kedro_run_id="block") as block:
        inside_block = _published_state()
    after_block = _published_state()

    assert inside_explicit == (explicit.run_id, store_uri(project), True, store_uri(project))
    assert inside_block == (block.run_id, store_uri(project), True, store_uri(project))
    assert after_explicit == after_block == outside
    assert mlflow.active_run() is None
    statuses = {r.info.run_id: r.info.status for r in all_runs(client_for(project))}
    assert statuses == {explicit.run_id: "FINISHED", block.run_id: "FINISHED"}

    quiet = RunContext(config, kedro_run_id="quiet")
    quiet.start(publish=False)  # the one documented difference: nothing process-wide changes
    assert _published_state() == outside
    quiet.end(RunState.FINISHED)


def test_errors_carry_the_run_dataset_or_key_they_are_about(project, client_for):
    from io_support import active_run, new_run

    from kedro_mlflow_runs.io import MlflowMetricDataset

    with pytest.raises(ConfigError) as info:
        build_config({"tracking": {"run": {"nmae": "x"}}}, project_path=project)
    assert info.value.key == "tracking.run.nmae"

    other = new_run(client_for(project))
    with active_run(project) as ctx, pytest.raises(RunConflictError) as conflict:
        MlflowMetricDataset(key="m", run_id=other).save(1.0)
    assert conflict.value.run_id == other and "MlflowMetricDataset" in conflict.value.dataset
    assert ctx.run_id not in (conflict.value.run_id,)

    missing = build_config({"tracking": {"run": {"id": "0" * 32}}}, project_path=project)
    with pytest.raises(RunNotFoundError) as not_found:
        RunContext(missing).start()
    assert not_found.value.run_id == "0" * 32


def test_the_mlflow_private_names_we_use_still_exist():
    from kedro_mlflow_runs.compat import mlflow as _compat

    assert _compat.verify() == []


def test_the_kedro_dataset_private_names_we_use_still_exist(monkeypatch):
    """Kedro's and kedro-datasets' dataset internals that the artifact dataset, the lineage recorder and
    the pipeline models use are all there; a name that goes missing is reported by name."""
    from kedro.io.core import AbstractVersionedDataset
    from kedro_datasets.partitions import PartitionedDataset

    from kedro_mlflow_runs.compat import kedro_datasets as _compat

    assert _compat.verify() == []
    monkeypatch.delattr(AbstractVersionedDataset, "_get_load_path")
    monkeypatch.delattr(PartitionedDataset, "_partition_to_path")
    assert _compat.verify() == ["AbstractVersionedDataset._get_load_path", "PartitionedDataset._partition_to_path"]


def _settings_adding_steps(steps: str) -> str:
    """A settings.py whose hook gives the Kedro run's TrackedRun the steps ``steps`` defines
    (``tracked`` and ``out``, a file in the project, are in scope)."""
    body = textwrap.indent(textwrap.dedent(steps), " " * 8)
    return (
        "from pathlib import Path\n"
        "from kedro.framework.hooks import hook_impl\n\n\n"
        "class Steps:\n"
        "    @hook_impl\n"
        "    def before_pipeline_run(self, run_params):\n"
        "        from kedro_mlflow_runs.core.registry import registry\n"
        "        from kedro_mlflow_runs.core.tracked import EndStep\n\n"
        "        tracked = registry().tracked(run_params['run_id'])\n"
        "        out = Path(run_params['project_path']) / 'steps.txt'\n"
        f"{body}\n\n"
        "HOOKS = (Steps(),)\n"
    )


_STEPS_SETTINGS = _settings_adding_steps("""
    def first(ctx):
        out.write_text(ctx.state.name)

    def second(ctx):
        raise RuntimeError("step two broke")

    tracked.before_success.extend([first, second])
""")


def test_a_failing_before_success_step_ends_the_run_failed_and_raises(project_factory, client_for):
    from kedro_project import run_session

    project = project_factory(settings=_STEPS_SETTINGS)
    with pytest.raises(RuntimeError, match="step two broke"):
        run_session(project)
    assert (project / "steps.txt").read_text() == "ACTIVE"  # steps run before the run ends
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FAILED"
    assert "step two broke" in run.data.tags["kedro.error.message"]


@pytest.mark.parametrize("setting, frozen", [(None, True), ("0", False)])
def test_a_process_that_tracked_a_run_exits_fast_unless_told_not_to(project, setting, frozen):
    """At exit the plugin freezes the objects alive (Python's shutdown then skips them);
    KEDRO_MLFLOW_RUNS_FAST_EXIT=0 turns it off. A process that tracked nothing is left alone."""
    env = kedro_env(**({"KEDRO_MLFLOW_RUNS_FAST_EXIT": setting} if setting else {}))
    code = textwrap.dedent(f"""
        import atexit, gc, sys
        atexit.register(lambda: print("FROZEN", gc.get_freeze_count() > 0))  # runs after the plugin's
        if sys.argv[1] == "run":
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from kedro_project import run_session
            run_session(__import__("pathlib").Path({str(project)!r}))
        else:
            import kedro_mlflow_runs, kedro_mlflow_runs.hooks
    """)
    ran = subprocess.run([sys.executable, "-c", code, "run"], env=env, capture_output=True, text=True, timeout=180)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert f"FROZEN {frozen}" in ran.stdout
    idle = subprocess.run([sys.executable, "-c", code, "idle"], env=env, capture_output=True, text=True, timeout=180)
    assert "FROZEN False" in idle.stdout


_END_STEP_SETTINGS = _settings_adding_steps("""
    def step(ctx, outcome):  # what MLflow holds while the end steps run
        out.write_text(ctx.tracker.get_run(ctx.run_id).info.status)

    tracked.before_end.append(EndStep("the status MLflow holds", step))
""")


def test_a_killed_run_gets_its_status_before_the_end_steps_run(project_factory):
    """A signal or an exit may be followed by SIGKILL: the KILLED status goes first, the timeline
    and lineage after; other outcomes record them first, then close."""
    from kedro_project import run_session

    project = project_factory(settings=_END_STEP_SETTINGS)
    run_session(project)
    assert (project / "steps.txt").read_text() == "RUNNING"
    with pytest.raises(SystemExit):
        run_session(project, runtime_params={"model": {"exit": 3}})
    assert (project / "steps.txt").read_text() == "KILLED"


def test_the_kedro_private_names_we_use_still_exist():
    from kedro_mlflow_runs.compat import kedro as compat_kedro

    assert compat_kedro.verify() == []


def test_a_kedro_private_name_that_is_gone_is_reported(monkeypatch):
    """verify() is not vacuous: a Kedro without the loader's raw reader is named."""
    from kedro.config import OmegaConfigLoader

    from kedro_mlflow_runs.compat import kedro as compat_kedro

    monkeypatch.delattr(OmegaConfigLoader, "_read_raw_config")
    assert compat_kedro.verify() == ["OmegaConfigLoader._read_raw_config"]
