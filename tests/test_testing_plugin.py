"""The pytest plugin users get with the package: `mlflow_store` and its assertions."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
from kedro_project import kedro_env

import kedro_mlflow_runs.testing


def test_the_plugin_is_registered_through_the_pytest11_entry_point(request):
    (entry,) = [e for e in entry_points(group="pytest11") if e.name == "kedro_mlflow_runs"]
    assert entry.value == "kedro_mlflow_runs.testing"
    assert request.config.pluginmanager.get_plugin("kedro_mlflow_runs") is kedro_mlflow_runs.testing
    assert "mlflow_store" not in vars(sys.modules["conftest"])  # the fixture comes from the plugin


def test_loading_the_plugin_imports_neither_mlflow_nor_a_kedro_session():
    code = ("import sys, kedro_mlflow_runs.testing; "
            "print('HEAVY', sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow' "
            "or m == 'kedro.framework.session'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=kedro_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HEAVY []" in result.stdout


def test_the_store_is_wired_into_the_environment_for_the_test(monkeypatch, request, tmp_path):
    monkeypatch.setenv("MLFLOW_RUN_ID", "0" * 32)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "elsewhere")
    store = request.getfixturevalue("mlflow_store")
    assert os.environ["MLFLOW_TRACKING_URI"] == os.environ["MLFLOW_REGISTRY_URI"] == store.uri
    assert "MLFLOW_RUN_ID" not in os.environ and "MLFLOW_EXPERIMENT_NAME" not in os.environ
    assert store.path.parent.parent == tmp_path and store.path.is_file()
    assert store.runs() == []


def _store_with_runs(store, *statuses: str):
    client = store.client
    exp = client.create_experiment("exp", artifact_location=(store.path.parent / "artifacts").as_uri())
    runs = []
    for status in statuses:
        run = client.create_run(exp, run_name=f"run-{status.lower()}")
        client.log_param(run.info.run_id, "alpha", "0.1")
        client.log_metric(run.info.run_id, "rmse", 1.5)
        client.set_tag(run.info.run_id, "team", "fraud")
        if status == "FAILED":
            client.set_tag(run.info.run_id, "kedro.error.type", "ValueError")
            client.set_tag(run.info.run_id, "kedro.error.message", "bad input in node train")
        client.set_terminated(run.info.run_id, status)
        runs.append(run.info.run_id)
    return runs


def test_failed_assertions_show_what_the_run_had(mlflow_store, tmp_path):
    (run_id,) = _store_with_runs(mlflow_store, "FAILED")
    report = tmp_path / "report.txt"
    report.write_text("ok")
    mlflow_store.client.log_artifact(run_id, str(report), "reports")

    with pytest.raises(AssertionError, match=r"is FAILED, expected FINISHED .*'ValueError'.*bad input in node train"):
        mlflow_store.assert_one_run(status="FINISHED")
    run = mlflow_store.assert_one_run(status="FAILED")
    assert run.run_id == run_id

    run.assert_param("alpha", "0.1").assert_metric("rmse", 1.5).assert_tag("team", "fraud")
    run.assert_artifact("reports/report.txt").assert_artifact("reports")
    with pytest.raises(AssertionError, match=r"has no param 'beta'; its params: alpha='0.1'"):
        run.assert_param("beta")
    with pytest.raises(AssertionError, match=r"param 'alpha' is '0.1', expected '0.2'"):
        run.assert_param("alpha", 0.2)
    with pytest.raises(AssertionError, match=r"has no metric 'mae'; its metrics: rmse=1.5"):
        run.assert_metric("mae")
    with pytest.raises(AssertionError, match=r"metric 'rmse' is 1.5, expected 2"):
        run.assert_metric("rmse", 2)
    with pytest.raises(AssertionError, match=r"has no artifact 'plots/roc.png'; its artifacts: \['reports/report.txt'\]"):
        run.assert_artifact("plots/roc.png")
    with pytest.raises(AssertionError, match=r"has no model 'regressor'; its models: none"):
        run.assert_model("regressor")


def test_assert_one_run_lists_the_runs_when_there_are_several(mlflow_store):
    first, second = _store_with_runs(mlflow_store, "FINISHED", "KILLED")
    with pytest.raises(AssertionError, match=rf"found 2: {first} FINISHED name='run-finished'; {second} KILLED"):
        mlflow_store.assert_one_run()
    assert [r.run_id for r in mlflow_store.runs(status="KILLED")] == [second]
    with pytest.raises(AssertionError, match=r"expected one MLflow run in experiment 'other' .* found 0: none"):
        mlflow_store.assert_one_run(experiment="other")


def test_a_store_thrown_away_closes_its_connections(tmp_path_factory, monkeypatch):
    """Each cached sqlite store keeps a file open: the fixture's teardown closes them, so a suite of
    thousands of tests does not run out of file descriptors."""
    from kedro_mlflow_runs import RunContext, RunState, build_config
    from kedro_mlflow_runs.testing import _open_store, _template

    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = None
    for i in range(12):
        store = _open_store(tmp_path_factory.mktemp("thrown") / "s", _template(tmp_path_factory), monkeypatch)
        ctx = RunContext(build_config({"server": {"mlflow_tracking_uri": store.uri}},
                                      project_path=tmp_path_factory.mktemp("p")), kedro_run_id=f"fd-{i}")
        ctx.start(publish=False)
        ctx.end(RunState.FINISHED)
        store.assert_one_run(status="FINISHED")
        store.close()
        if i == 1:  # after the one-off imports and caches of the first stores
            before = open_files()
    assert open_files() <= before + 2


def test_the_store_wins_over_a_tracking_uri_the_projects_mlflow_yml_pins(project_factory, mlflow_store, tmp_path):
    """A project whose mlflow.yml pins its real store: the run goes to the fixture's store, the real
    store is never touched."""
    from kedro_project import run_session

    from kedro_mlflow_runs.config.build import TEST_STORE

    assert kedro_mlflow_runs.testing.TEST_STORE == TEST_STORE and os.environ[TEST_STORE] == mlflow_store.uri
    real = tmp_path / "real" / "mlflow.db"
    project = project_factory(mlflow_yml={"server": {"mlflow_tracking_uri": f"sqlite:///{real}",
                                                     "mlflow_registry_uri": f"sqlite:///{real}"}})
    run_session(project)
    mlflow_store.assert_one_run(status="FINISHED", experiment=project.name)
    assert not real.exists()
