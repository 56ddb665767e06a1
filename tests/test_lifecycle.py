"""One MLflow run per Kedro run, opened and closed right, through KedroSession in this process."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import all_runs, user_artifacts, user_metrics
from kedro_project import run_session

import kedro_mlflow_runs
from kedro_mlflow_runs import RunNotFoundError, current_run_context


def test_success_gives_one_finished_run_with_params_and_tags(project, client_for):
    run_session(project)

    runs = all_runs(client_for(project))
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "__default__"
    assert run.info.end_time is not None
    exp = client_for(project).get_experiment(run.info.experiment_id)
    assert exp.name == project.name  # the package name
    assert exp.artifact_location == (project / "mlartifacts").as_uri()
    params = run.data.params
    assert params["model.C"] == "0.5"
    assert params["model.nested.depth"] == "3"
    assert params["data.n"] == "4"
    assert params["seed"] == "42"  # from the `parameters` input of the report node
    tags = run.data.tags
    assert tags["kedro.pipeline_names"] == "__default__"
    assert tags["kedro.env"] == "local"
    assert tags["kedro.runner"] == "SequentialRunner"
    assert tags["kedro_mlflow_runs.version"] == kedro_mlflow_runs.__version__
    assert tags["kedro.run_id"]
    assert "kedro.command" not in tags  # no CLI involved
    import mlflow

    assert mlflow.active_run() is None
    assert current_run_context() is None


# These tests use the pytest plugin the package ships (kedro_mlflow_runs.testing): `mlflow_store` is
# a fresh store set as MLFLOW_TRACKING_URI, which the project's default configuration then uses.


def test_only_the_params_the_run_reads_are_logged(project, mlflow_store):
    run_session(project, pipeline_names=["data"])

    run = mlflow_store.assert_one_run(status="FINISHED").assert_tag("kedro.pipeline_names", "data")
    assert run.name == "data"
    assert set(run.params) == {"data.n"}


def test_node_error_marks_the_run_failed_with_the_error(project, mlflow_store):
    with pytest.raises(ValueError, match="on purpose"):
        run_session(project, runtime_params={"model": {"fail": "yes"}})

    run = mlflow_store.assert_one_run(status="FAILED")
    run.assert_tag("kedro.error.type", "ValueError").assert_tag("kedro.error.node", "train")
    assert "train failed on purpose: yes" in run.tags["kedro.error.message"]


def test_system_exit_in_a_node_ends_the_run_killed_before_the_session_returns(project, client_for):
    import os
    import signal

    import mlflow

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(SystemExit):
        run_session(project, runtime_params={"model": {"exit": 3}})

    # SystemExit is not an Exception: no Kedro hook sees it, yet nothing is left behind
    (run,) = all_runs(client_for(project))
    assert run.info.status == "KILLED"
    assert run.data.tags["kedro.error.type"] == "kedro_mlflow_runs.errors.RunInterruptedError"
    assert "SystemExit" in run.data.tags["kedro.error.message"]
    assert mlflow.active_run() is None
    assert current_run_context() is None
    assert "KEDRO_MLFLOW_RUNS_HANDLE" not in os.environ
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers

    run_session(project)
    statuses = sorted(r.info.status for r in all_runs(client_for(project)))
    assert statuses == ["FINISHED", "KILLED"]


def test_two_sessions_in_one_process_give_two_closed_runs(project, client_for):
    import mlflow

    run_session(project)
    assert mlflow.active_run() is None
    run_session(project, pipeline_names=["data"])
    assert mlflow.active_run() is None

    runs = all_runs(client_for(project))
    assert len(runs) == 2
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["kedro.run_id"] for r in runs}) == 2
    # nothing leaks: the second run has only its own params, and is not nested in the first
    by_name = {r.info.run_name: r for r in runs}
    assert set(by_name["data"].data.params) == {"data.n"}
    assert "mlflow.parentRunId" not in by_name["data"].data.tags


def test_two_projects_in_one_process_use_their_own_stores(project_factory, client_for):
    first = project_factory()
    second = project_factory(mlflow_yml={"tracking": {"experiment": {"name": "second-exp"}}})
    run_session(first)
    run_session(second)

    (run1,) = all_runs(client_for(first))
    (run2,) = all_runs(client_for(second))
    assert run1.info.status == run2.info.status == "FINISHED"
    assert client_for(second).get_experiment(run2.info.experiment_id).name == "second-exp"


def test_user_code_calling_mlflow_log_metric_lands_in_the_run(project, mlflow_store):
    run_session(project, runtime_params={"model": {"log_metric": True}})

    run = mlflow_store.assert_one_run(status="FINISHED").assert_metric("user_metric", 0.5)
    assert user_metrics(run.metrics) == {"user_metric": 0.5}


def test_user_tags_and_run_name_from_mlflow_yml(project_factory, mlflow_store, monkeypatch):
    project = project_factory(
        mlflow_yml={"tracking": {"run": {"name": "nightly", "tags": {"team": "fraud", "ticket": 12}}}}
    )
    run_session(project)

    run = mlflow_store.assert_one_run(status="FINISHED", experiment=project.name)
    run.assert_tag("team", "fraud").assert_tag("ticket", 12).assert_tag("mlflow.runName", "nightly")

    # `kedro mlflow show` lists the user's tags, and only those, under "Tags"
    from click.testing import CliRunner

    from kedro_mlflow_runs.cli import commands

    monkeypatch.chdir(project)
    shown = CliRunner().invoke(commands, ["mlflow", "show", run.run_id], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert shown.output.split("Tags:\n", 1)[1].split("Params (")[0].splitlines() == ["  team    fraud",
                                                                                 "  ticket  12"]


def test_run_started_by_user_becomes_parent_when_nested(project, client_for):
    import mlflow
    from kedro_project import store_uri

    mlflow.set_tracking_uri(store_uri(project))
    try:
        with mlflow.start_run() as parent:
            run_session(project)
            assert mlflow.active_run().info.run_id == parent.info.run_id
    finally:
        mlflow.set_tracking_uri(None)

    runs = {r.info.run_id: r for r in all_runs(client_for(project))}
    assert len(runs) == 2
    child = next(r for rid, r in runs.items() if rid != parent.info.run_id)
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.info.status == "FINISHED"
    assert runs[parent.info.run_id].info.status == "FINISHED"


def test_git_commit_is_tagged_in_a_git_checkout(project, client_for):
    import subprocess

    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "pyproject.toml"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=project, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout.strip()

    run_session(project)

    (run,) = all_runs(client_for(project))
    assert run.data.tags["mlflow.source.git.commit"] == sha


def test_the_commit_is_read_from_git_files_in_every_layout(tmp_path):
    """No git subprocess: HEAD, loose and packed refs, detached HEAD, a worktree, a subfolder."""
    import subprocess

    from kedro_mlflow_runs.framework.run_info import git_commit

    repo = tmp_path / "repo"
    (repo / "src" / "pkg").mkdir(parents=True)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main"]

    def sh(*args, cwd=repo):
        return subprocess.run([*git, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()

    sh("init", "-q")
    assert git_commit(repo) is None  # an unborn branch
    (repo / "a.txt").write_text("a")
    sh("add", "a.txt")
    sh("commit", "-qm", "one")
    first = sh("rev-parse", "HEAD")
    assert git_commit(repo) == first and git_commit(repo / "src" / "pkg") == first  # loose ref, from a subfolder
    sh("pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert git_commit(repo) == first  # packed ref
    sh("commit", "-q", "--allow-empty", "-m", "two")
    second = sh("rev-parse", "HEAD")
    assert git_commit(repo) == second
    sh("worktree", "add", "-q", "--detach", str(tmp_path / "wt"), first)
    assert git_commit(tmp_path / "wt") == first  # a worktree, detached
    sh("checkout", "-q", "-b", "feature", cwd=tmp_path / "wt")
    sh("commit", "-q", "--allow-empty", "-m", "three", cwd=tmp_path / "wt")
    assert git_commit(tmp_path / "wt") == sh("rev-parse", "HEAD", cwd=tmp_path / "wt")  # a worktree's branch
    assert git_commit(tmp_path / "elsewhere") is None


def test_no_git_commit_tag_outside_a_checkout(project, client_for):
    run_session(project)
    (run,) = all_runs(client_for(project))
    assert "mlflow.source.git.commit" not in run.data.tags


# --- attach ---------------------------------------------------------------------------


def _orchestrator_run(client, name="orchestrator"):
    # artifacts beside the store (the default, ./mlruns, would be the test's working directory)
    store = Path(client.tracking_uri.removeprefix("sqlite:///")).parent
    exp_id = client.create_experiment(name, artifact_location=(store / "mlartifacts").as_uri())
    return client.create_run(exp_id, run_name=name)


def test_attach_via_mlflow_run_id_env_leaves_the_run_open(project, client_for, monkeypatch):
    client = client_for(project)
    parent = _orchestrator_run(client)
    monkeypatch.setenv("MLFLOW_RUN_ID", parent.info.run_id)

    run_session(project)

    runs = all_runs(client)
    assert [r.info.run_id for r in runs] == [parent.info.run_id]  # no new run
    run = client.get_run(parent.info.run_id)
    assert run.info.status == "RUNNING"  # left open for its owner
    assert run.data.params["model.C"] == "0.5"
    assert run.data.tags["kedro.pipeline_names"] == "__default__"
    import os

    assert os.environ["MLFLOW_RUN_ID"] == parent.info.run_id  # not consumed
    client.set_terminated(parent.info.run_id)


def test_attach_via_mlflow_yml_and_end_it_when_configured(project_factory, client_for, template_db):
    from kedro_project import store_uri
    from mlflow import MlflowClient

    project = project_factory(mlflow_yml="tracking:\n  run:\n    id: ${runtime_params:orchestrator_run, null}\n"
                              "    attached:\n      end_run: true\n")
    client = MlflowClient(store_uri(project))
    parent = _orchestrator_run(client)

    run_session(project, runtime_params={"orchestrator_run": parent.info.run_id})

    assert [r.info.run_id for r in all_runs(client)] == [parent.info.run_id]
    assert client.get_run(parent.info.run_id).info.status == "FINISHED"


def test_attached_error_leaves_run_open_unless_record_failure(project_factory, client_for, monkeypatch):
    plain = project_factory()
    recording = project_factory(mlflow_yml={"tracking": {"run": {"attached": {"record_failure": True}}}})
    for project, expected in ((plain, "RUNNING"), (recording, "FAILED")):
        client = client_for(project)
        parent = _orchestrator_run(client)
        monkeypatch.setenv("MLFLOW_RUN_ID", parent.info.run_id)
        with pytest.raises(ValueError):
            run_session(project, runtime_params={"model": {"fail": "x"}})
        run = client.get_run(parent.info.run_id)
        assert run.info.status == expected
        assert run.data.tags["kedro.error.type"] == "ValueError"


def test_missing_run_id_is_a_clear_error_before_any_node_runs(project, client_for, monkeypatch, tmp_path):
    marker = tmp_path / "started"
    monkeypatch.setenv("MLFLOW_RUN_ID", "0123456789abcdef0123456789abcdef")

    with pytest.raises(RunNotFoundError) as err:
        run_session(project, runtime_params={"model": {"started_marker": str(marker)}})

    message = str(err.value)
    assert "0123456789abcdef0123456789abcdef" in message
    assert "MLFLOW_RUN_ID" in message
    assert not marker.exists()  # no node ran
    assert all_runs(client_for(project)) == []


def test_conflicting_param_in_attached_run_is_a_clear_error(project, client_for, monkeypatch):
    client = client_for(project)
    parent = _orchestrator_run(client)
    client.log_param(parent.info.run_id, "model.C", "99")
    monkeypatch.setenv("MLFLOW_RUN_ID", parent.info.run_id)

    with pytest.raises(kedro_mlflow_runs.ParameterError, match=r"'model\.C'.*'99'.*'0\.5'"):
        run_session(project)
    assert client.get_run(parent.info.run_id).data.params["model.C"] == "99"


def test_same_params_logged_twice_into_one_run_are_fine(project, client_for, monkeypatch):
    client = client_for(project)
    parent = _orchestrator_run(client)
    monkeypatch.setenv("MLFLOW_RUN_ID", parent.info.run_id)

    run_session(project, pipeline_names=["data"])
    run_session(project, pipeline_names=["training"])

    run = client.get_run(parent.info.run_id)
    assert run.data.params["data.n"] == "4" and run.data.params["model.C"] == "0.5"
    assert len(all_runs(client)) == 1


# --- parameters --------------------------------------------------------------------------


def _long_params(project_factory, strategy):
    yml = {"tracking": {"params": {"long_params_strategy": strategy}}} if strategy else None
    params = {"data": {"n": 2}, "model": {"C": 1.0, "blob": "x" * 7000}}
    return project_factory(mlflow_yml=yml, parameters=params)


def test_long_param_fails_by_default_naming_it(project_factory, client_for):
    project = _long_params(project_factory, None)
    with pytest.raises(kedro_mlflow_runs.ParameterError, match=r"'model\.blob'.*7000.*6000"):
        run_session(project)
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FAILED"  # opened, then closed: never left RUNNING


@pytest.mark.parametrize("strategy", ["tag", "truncate"])
def test_long_param_strategies(project_factory, client_for, strategy):
    project = _long_params(project_factory, strategy)
    run_session(project)
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FINISHED"
    if strategy == "tag":
        assert "model.blob" not in run.data.params
        assert run.data.tags["model.blob"] == "x" * 7000
    else:
        assert run.data.params["model.blob"] == "x" * 6000


def test_dict_params_unflattened_and_custom_separator(project_factory, client_for):
    flat_off = project_factory(mlflow_yml={"tracking": {"params": {"dict_params": {"flatten": False}}}})
    slash = project_factory(mlflow_yml={"tracking": {"params": {"dict_params": {"sep": "/"}}}})
    run_session(flat_off, pipeline_names=["data"])
    run_session(slash, pipeline_names=["data"])
    (r1,) = all_runs(client_for(flat_off))
    (r2,) = all_runs(client_for(slash))
    assert r1.data.params == {"data": "{'n': 4}"}
    assert r2.data.params == {"data/n": "4"}


def test_many_params_are_sent_in_batches(project_factory, client_for, mocker):
    params = {"data": {"n": 1}, "model": {"C": 1.0}, "wide": {f"p{i}": i for i in range(250)}}
    registry = (
        "from kedro.pipeline import node, pipeline\n"
        "def register_pipelines():\n"
        "    return {'__default__': pipeline([node(lambda w: len(w), 'params:wide', 'n_wide', name='wide')])}\n"
    )
    project = project_factory(parameters=params, registry=registry)
    from mlflow import MlflowClient

    spy = mocker.spy(MlflowClient, "log_batch")
    run_session(project)

    (run,) = all_runs(client_for(project))
    assert len(run.data.params) == 250
    param_calls = [c for c in spy.call_args_list if c.kwargs.get("params")]
    assert len(param_calls) == 3  # 100 + 100 + 50, not 250 requests
    assert all(len(c.kwargs.get("params") or []) + len(c.kwargs.get("tags") or []) <= 100 for c in spy.call_args_list)


CREDS_REGISTRY = """
import os
from kedro.pipeline import node, pipeline


def read_env(data):
    return {"seen": os.environ.get("KMR_TEST_SECRET")}


def register_pipelines():
    return {"__default__": pipeline([node(read_env, "params:data", "seen", name="read_env")])}
"""


def test_credentials_are_exported_for_the_run_only_and_never_logged(project_factory, client_for):
    import json
    import os

    project = project_factory(
        mlflow_yml={"server": {"credentials": "mlflow_creds"}},
        registry=CREDS_REGISTRY,
        catalog={"seen": {"type": "json.JSONDataset", "filepath": "data/seen.json"}},
        local_files={"conf/local/credentials.yml": "mlflow_creds:\n  KMR_TEST_SECRET: s3cr3t-value\n"},
    )
    run_session(project)

    assert json.loads((project / "data" / "seen.json").read_text()) == {"seen": "s3cr3t-value"}
    assert "KMR_TEST_SECRET" not in os.environ  # gone after the run: nothing leaks into the next
    (run,) = all_runs(client_for(project))
    everything = {**run.data.params, **run.data.tags}
    assert not any("s3cr3t" in str(v) for v in everything.values())
    assert not any("KMR_TEST_SECRET" in k for k in everything)


def test_two_sessions_running_at_once_in_threads_keep_their_runs_apart(project_factory, client_for, tmp_path):
    """Sessions overlapping in two threads, ending in the order they did not start in."""
    import threading
    import time

    import mlflow

    catalog = {"result": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricsDataset"}}
    project = project_factory(catalog=catalog)
    run_session(project, pipeline_names=["data"])  # bootstrap the project once, in this thread
    first_started = tmp_path / "first"
    errors: list[BaseException] = []

    def session(c: float, sleep: float, marker) -> None:
        try:
            run_session(project, runtime_params={"model": {"C": c, "sleep": sleep, "log_metric": True,
                                                           "started_marker": str(marker)}})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    first = threading.Thread(target=session, args=(1.0, 1.0, first_started))
    second = threading.Thread(target=session, args=(2.0, 2.5, tmp_path / "second"))
    first.start()
    deadline = time.monotonic() + 60
    while not first_started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second.start()  # starts while the first is running, and ends after it
    first.join(120)
    second.join(120)
    assert not errors, errors

    runs = [r for r in all_runs(client_for(project)) if r.info.run_name == "__default__"]
    assert len(runs) == 2
    by_c = {r.data.params["model.C"]: r for r in runs}
    assert user_metrics(by_c["1.0"].data.metrics) == {"coef": 6.0, "user_metric": 0.5}
    assert user_metrics(by_c["2.0"].data.metrics) == {"coef": 12.0, "user_metric": 0.5}
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert mlflow.active_run() is None and current_run_context() is None


def test_registry_uri_of_one_project_does_not_leak_into_the_next(project_factory):
    import os

    import mlflow

    from kedro_mlflow_runs import build_config

    with_registry = project_factory(mlflow_yml={"server": {"mlflow_registry_uri": "sqlite:///registry.db"}})
    plain = project_factory()
    before = mlflow.get_registry_uri()
    run_session(with_registry)
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    assert mlflow.get_registry_uri() == before
    assert build_config({}, project_path=plain).server.registry_uri is None


def test_artifacts_of_a_configured_sqlite_store_stay_beside_it(project_factory, tmp_path):
    from mlflow import MlflowClient

    project = project_factory(
        mlflow_yml={"server": {"mlflow_tracking_uri": "sqlite:///stores/custom.db"}},
        catalog={"summary": {"type": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset",
                             "dataset": {"type": "json.JSONDataset", "filepath": "data/summary.json"}}},
    )
    (project / "stores").mkdir()
    run_session(project)
    client = MlflowClient(f"sqlite:///{project / 'stores' / 'custom.db'}")
    (run,) = all_runs(client)
    assert [a.path for a in user_artifacts(client.list_artifacts(run.info.run_id))] == ["summary.json"]
    assert (project / "stores" / "mlartifacts").is_dir()
    assert not (project / "mlruns").exists()


def test_system_exit_in_a_pipeline_with_tracking_disabled_leaves_no_environment(project_factory):
    import os

    project = project_factory(mlflow_yml={"tracking": {"disable_tracking": {"pipelines": ["__default__"]}}})
    with pytest.raises(SystemExit):
        run_session(project, runtime_params={"model": {"exit": 2}})
    assert "KEDRO_MLFLOW_RUNS_STORE" not in os.environ
