"""Storage faults: a full or read-only artifact folder, a full disk under mlflow.db, a database store
that is down. Each ends with our error saying what could not be written where, why, and what to do
(never "the store did not answer" for a local disk), in a few lines, not hundreds of lines of tracebacks.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import subprocess
import time

import pytest
from conftest import all_runs, records
from kedro.io.core import DatasetError
from kedro_project import kedro_cmd, kedro_env, kedro_run, run_session

from kedro_mlflow_runs import TrackingError, TrackingUnavailableError

ARTIFACT = "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset"


def _artifact_catalog(folder) -> dict:
    return {"result": {"type": ARTIFACT, "dataset": {"type": "json.JSONDataset",
                                                     "filepath": str(folder / "result.json")}}}


# -- a full or read-only artifact folder ----------------------------------------------------------

@pytest.mark.parametrize(("code", "why"), [(errno.ENOSPC, "the disk is full"),
                                           (errno.EROFS, "the file system is read-only")])
def test_a_full_or_read_only_artifact_folder_fails_the_run_naming_the_dataset_node_and_folder(
        project_factory, client_for, mocker, tmp_path, code, why):
    """MLflow cannot write the artifact (the disk is full, or the folder is on a read-only file system):
    the run ends FAILED with tags naming the catalog entry and the node, and a message saying which
    folder could not be written and why; the local file is kept."""
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    def cannot_write(self, local_file, artifact_path=None):  # where MLflow copies the file in
        target = os.path.join(self.artifact_dir, artifact_path or "", os.path.basename(local_file))
        raise OSError(code, os.strerror(code), target)

    mocker.patch.object(LocalArtifactRepository, "log_artifact", autospec=True, side_effect=cannot_write)
    project = project_factory(catalog=_artifact_catalog(tmp_path))
    with pytest.raises(DatasetError) as raised:
        run_session(project)
    (run,) = all_runs(client_for(project))
    folder = (project / "mlartifacts" / run.info.run_id / "artifacts").as_posix()
    assert run.info.status == "FAILED"
    tags = run.data.tags
    assert "catalog entry 'result'" in tags["kedro.error.dataset"]
    assert tags["kedro.error.node"] == "train"
    message = tags["kedro.error.message"]
    assert f"the artifact folder of MLflow run '{run.info.run_id}' ('{folder}') could not be written because {why}" \
        in message
    assert "did not answer" not in message and "server is up" not in message
    assert "The local file is kept at" in message and (tmp_path / "result.json").exists()
    assert str(raised.value) == message  # the error the user gets is the one recorded


def test_a_failed_save_of_any_dataset_records_its_catalog_entry_and_node(project_factory, client_for, tmp_path):
    """A plain kedro-datasets dataset whose save fails (its folder is a file): Kedro's node error hook
    never sees it (it is outside the node's function), yet the run names the node and the entry."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the dataset wants a folder")
    project = project_factory(catalog={"result": {"type": "json.JSONDataset",
                                                  "filepath": str(blocker / "result.json")}})
    with pytest.raises(DatasetError):
        run_session(project)
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FAILED"
    assert run.data.tags["kedro.error.node"] == "train"
    assert run.data.tags["kedro.error.dataset"] == "result"


def test_a_read_only_artifact_folder_for_real(project_factory, client_for, tmp_path):
    """The same without fault injection: ``kedro run`` with the artifact folder on a read-only mount
    (``chmod`` does not stop root, a read-only mount does), or ``chmod 0555`` when not root."""
    import shutil

    project = project_factory(catalog=_artifact_catalog(tmp_path))
    artifacts = project / "mlartifacts"
    artifacts.mkdir()
    command = kedro_cmd("run")
    if os.geteuid() == 0:
        unshare = shutil.which("unshare")
        assert unshare, "the test runs as root: it needs unshare (util-linux) for a read-only mount"
        mount = f"mount --bind {artifacts} {artifacts} && mount -o remount,bind,ro {artifacts}"
        command = [unshare, "--mount", "--propagation", "private", "sh", "-c", f'{mount} && exec "$@"', "sh",
                   *command]
    else:
        artifacts.chmod(0o555)
    try:
        ran = subprocess.run(command, cwd=project, env=kedro_env(), capture_output=True, text=True, timeout=180)
    finally:
        artifacts.chmod(0o755)
    assert ran.returncode != 0
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FAILED"
    assert run.data.tags["kedro.error.node"] == "train"
    message = run.data.tags["kedro.error.message"]
    assert "read-only" in message or "permission denied" in message, message
    assert artifacts.as_posix() in message


# -- a full disk under mlflow.db ------------------------------------------------------------------



def _left_running_message(message: str, run_id: str, db: str, status: str) -> None:
    assert f"MLflow run {run_id} is left RUNNING: it could not be ended as {status}." in message
    assert f"the tracking database '{db}' could not be written because the disk holding the database is full" \
        in message
    assert f"kedro mlflow close-run --run-id {run_id} --status {status}" in message
    assert "kedro mlflow close-run --stale --yes" in message
    assert "did not answer" not in message


@pytest.mark.parametrize("node_fails", [False, True], ids=["pipeline-succeeds", "node-fails"])
def test_a_full_disk_under_mlflow_db_leaves_the_run_running_and_says_how_to_end_it(
        project_factory, client_for, mocker, tmp_path, capfd, node_fails):
    """From the moment node ``train`` starts the disk under mlflow.db is full: every write to the store
    (log_batch, set_terminated) fails. The run stays RUNNING; one clear message names it, says why
    and gives the command that ends it (which then works); no traceback is printed."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    marker = tmp_path / "train-started"
    for name in ("log_batch", "update_run_info"):
        real = getattr(SqlAlchemyStore, name)

        def full(self, *args, _real=real, **kwargs):
            if marker.exists():
                raise sqlite3.OperationalError("database or disk is full")
            return _real(self, *args, **kwargs)

        mocker.patch.object(SqlAlchemyStore, name, full)
    project = project_factory()
    db = str(project / "mlflow.db")
    params = {"model": {"started_marker": str(marker), "fail": "on purpose" if node_fails else False}}
    if node_fails:  # the node's own error goes on; ours is logged, as one message without a traceback
        with records("kedro_mlflow_runs.framework.events") as emitted:
            with pytest.raises(ValueError, match="train failed on purpose"):
                run_session(project, runtime_params=params)
        printed = capfd.readouterr()
        output = printed.out + printed.err
        (run,) = all_runs(client_for(project))
        (logged,) = [r for r in emitted if r.levelno >= logging.ERROR]
        kedro_run_id = run.data.tags["kedro.run_id"]
        assert logged.getMessage().startswith(f"Could not record the failure of Kedro run {kedro_run_id}")
        assert not logged.exc_info
        _left_running_message(logged.getMessage(), run.info.run_id, db, "FAILED")
        status = "FAILED"
    else:
        with pytest.raises(TrackingError) as raised:
            run_session(project, runtime_params=params)
        (run,) = all_runs(client_for(project))
        _left_running_message(str(raised.value), run.info.run_id, db, "FINISHED")
        assert raised.value.run_id == run.info.run_id
        assert raised.value.__cause__ is None and raised.value.__suppress_context__  # no chained traceback
        printed = capfd.readouterr()
        output = printed.out + printed.err
        status = "FINISHED"
    assert "Traceback" not in output and "╭" not in output  # no traceback logged on the way
    assert run.info.status == "RUNNING"

    marker.unlink()  # the disk has space again: the command the message gives ends the run
    closed = subprocess.run(kedro_cmd("mlflow", "close-run", "--run-id", run.info.run_id, "--status", status),
                            cwd=project, env=kedro_env(), capture_output=True, text=True, timeout=120)
    assert closed.returncode == 0, closed.stderr[-2000:]
    assert client_for(project).get_run(run.info.run_id).info.status == status


DISK_FILLS_UP = '''
import sqlite3

from kedro.framework.hooks import hook_impl


class DiskFillsUp:
    """Fault injection: once node train has run, the disk under mlflow.db is full (SQLAlchemy's
    flush of every write fails as sqlite's does)."""

    @hook_impl
    def after_node_run(self, node):
        if node.name != "train":
            return
        import sqlalchemy.exc
        import sqlalchemy.orm

        real_flush = sqlalchemy.orm.Session.flush

        def flush(self, objects=None):
            if self.new or self.dirty or self.deleted:
                raise sqlalchemy.exc.OperationalError("UPDATE runs SET status=?", (),
                                                      sqlite3.OperationalError("database or disk is full"))
            return real_flush(self, objects)

        sqlalchemy.orm.Session.flush = flush


HOOKS = (DiskFillsUp(),)
'''


def test_kedro_run_with_a_full_disk_under_mlflow_db_prints_one_error_and_close_run_stale_ends_the_run(
        project_factory, client_for):
    """The real command line: MLflow's own SQLAlchemy traceback and ours are not printed, the last
    line is our error with the commands to end the run, and ``close-run --stale --yes`` ends it once
    the ``kedro run`` process is gone."""
    project = project_factory(settings=DISK_FILLS_UP)
    result = kedro_run(project)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    (run,) = all_runs(client_for(project))
    assert run.info.status == "RUNNING"
    assert "Traceback" not in output and "SQLAlchemy database error" not in output and "[SQL:" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, output[-3000:]
    assert errors[0].startswith(f"Error: TrackingError: MLflow run {run.info.run_id} is left RUNNING")
    _left_running_message(errors[0], run.info.run_id, str(project / "mlflow.db"), "FINISHED")

    stale = subprocess.run(kedro_cmd("mlflow", "close-run", "--stale", "--yes"), cwd=project, env=kedro_env(),
                           capture_output=True, text=True, timeout=120)
    assert stale.returncode == 0, stale.stderr[-2000:]
    assert "its process is gone" in stale.stdout
    assert client_for(project).get_run(run.info.run_id).info.status == "KILLED"


# -- a database store that is down -------------------------------------------------------------------

def test_kedro_run_against_a_database_that_is_down_fails_fast_with_one_clear_error(project_factory, client_for):
    """No 100 s of MLflow engine retries (15 tracebacks): one TCP probe of the URI's host and port, then
    our error naming the URI (no password) and the key it comes from, with no sqlite hint."""
    from mlflow_server import free_port

    port = free_port()
    uri = f"postgresql://postgres:pw@127.0.0.1:{port}/x"
    project = project_factory(mlflow_yml={"server": {"mlflow_tracking_uri": uri}})
    # the deprecation warnings this environment's OmegaConf gives Kedro itself are not what this measures
    started = time.monotonic()
    result = kedro_run(project, env=kedro_env(PYTHONWARNINGS="ignore"))
    took = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert took < 30, f"took {took:.0f} s"  # was 107 s of MLflow's retries
    assert len(output.splitlines()) < 40, output
    flat = " ".join(output.split())
    assert (f"Error: TrackingUnavailableError: Could not open the MLflow tracking store "
            f"postgresql://postgres@127.0.0.1:{port}/x: its database server at 127.0.0.1:{port} does not accept "
            f"connections") in flat
    assert "server.mlflow_tracking_uri" in flat and "pw" not in flat.replace("postgres", "")
    assert "sqlite" not in flat.lower()
    assert "Traceback" not in output and "sqlalchemy" not in flat.lower()
    assert all_runs(client_for(project)) == []  # nothing was written to the project's own store


def test_with_our_logger_at_debug_the_command_line_prints_the_traceback_too(project_factory, tmp_path):
    """``Error: <class>: <message>`` by default; the traceback as well with kedro_mlflow_runs at DEBUG."""
    from mlflow_server import free_port

    uri = f"postgresql://u@127.0.0.1:{free_port()}/x"
    project = project_factory(mlflow_yml={"server": {"mlflow_tracking_uri": uri}})
    logging_yml = tmp_path / "logging.yml"
    logging_yml.write_text(
        "version: 1\ndisable_existing_loggers: false\n"
        "handlers:\n  console: {class: logging.StreamHandler, level: DEBUG, stream: ext://sys.stderr}\n"
        "loggers:\n  kedro_mlflow_runs: {level: DEBUG}\n"
        "root: {level: WARNING, handlers: [console]}\n")
    quiet = kedro_run(project, env=kedro_env(PYTHONWARNINGS="ignore"))
    verbose = kedro_run(project, env=kedro_env(PYTHONWARNINGS="ignore", KEDRO_LOGGING_CONFIG=str(logging_yml)))
    for result in (quiet, verbose):
        assert result.returncode != 0
        assert "Error: TrackingUnavailableError: Could not open the MLflow tracking store" in result.stderr
    assert "Traceback" not in quiet.stdout + quiet.stderr
    assert "Traceback (most recent call last)" in verbose.stderr and "in probe_database" in verbose.stderr


def test_a_database_uri_without_a_host_is_not_probed(mocker):
    """A unix-socket URI (no host) and other stores are left to MLflow: no TCP connect is tried."""
    import socket

    from kedro_mlflow_runs.tracking._store import probe_database

    connect = mocker.patch.object(socket, "create_connection", side_effect=AssertionError("probed"))
    for uri in ("postgresql:///mlflow?host=/var/run/postgresql", "sqlite:///mlflow.db", "http://127.0.0.1:1",
                "file:///tmp/mlruns"):
        probe_database(uri)
    assert connect.call_count == 0
    mocker.stopall()
    with pytest.raises(TrackingUnavailableError, match=r"mysql\+pymysql://root@127\.0\.0\.1:1/db: its database "
                                                       r"server at 127\.0\.0\.1:1 does not accept"):
        probe_database("mysql+pymysql://root@127.0.0.1:1/db", timeout=1)


def test_the_sqlite_hint_is_given_for_sqlite_stores_only(tmp_path):
    """A store MLflow cannot open: the hint about moving a sqlite file aside only for a sqlite URI."""
    from kedro_mlflow_runs.tracking import Tracker

    bad = tmp_path / "not-a-db"
    bad.write_text("this is not a sqlite database")
    with pytest.raises(TrackingError) as sqlite_error:
        Tracker(f"sqlite:///{bad}").find_experiment("x")
    assert "moved aside" in str(sqlite_error.value) and sqlite_error.value.key == "server.mlflow_tracking_uri"
    with pytest.raises(TrackingError) as other:
        Tracker("nosuch://x").find_experiment("x")
    message = str(other.value)
    assert "moved aside" not in message and "sqlite:///<project>" not in message
    assert other.value.key == "server.mlflow_tracking_uri"
