"""Shared fixtures: real Kedro projects in tmp dirs, a real sqlite MLflow store per project."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["KEDRO_DISABLE_TELEMETRY"] = "1"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# the on-disk requirements cache of this test process and the kedro runs it starts: a tmp dir
_CACHE_DIR = tempfile.mkdtemp(prefix="kmr-test-cache-")
os.environ["KEDRO_MLFLOW_RUNS_CACHE_DIR"] = _CACHE_DIR
atexit.register(shutil.rmtree, _CACHE_DIR, True)

sys.path.insert(0, str(Path(__file__).parent))

from kedro_project import make_project, store_uri  # noqa: E402

from kedro_mlflow_runs.core.worker_env import PUBLISHED  # noqa: E402 - every variable published to workers

_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_REGISTRY_URI",
               "MLFLOW_EXPERIMENT_ID", *sorted(PUBLISHED))

#: what a run sets in the environment: checked after every test to be as it was before
_LEAK_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", *sorted(PUBLISHED),
             "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT",
             "MLFLOW_EXPERIMENT_ID", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "PGPASSWORD",
             "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_AUTH", "KEDRO_MLFLOW_RUNS_TRACKING_USERINFO")


def _mlflow_globals() -> tuple[object, object]:
    if "mlflow" not in sys.modules:
        return (None, None)
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    return tracking_utils._tracking_uri, getattr(registry_utils, "_registry_uri", None)


@pytest.fixture(autouse=True)
def _no_leaks(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test starts clean and must leave nothing behind: no open run or context, no MLflow
    environment or global URI changed, no signal handler left, nothing written to the working
    directory (it is an empty tmp dir, so a store defaulting to the cwd would show up there)."""
    import signal

    for name in _MLFLOW_ENV:
        monkeypatch.delenv(name, raising=False)
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    env_before = {name: os.environ.get(name) for name in _LEAK_ENV}
    globals_before = _mlflow_globals()
    handlers_before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                                                              signal.SIGQUIT)}
    yield
    from kedro_mlflow_runs import active_contexts

    leftover = active_contexts()
    if "mlflow" in sys.modules:
        import mlflow

        assert mlflow.active_run() is None, "a test left an MLflow fluent run active"
    assert not leftover, f"a test left RunContexts active: {leftover}"
    touched = {name for mapping, name, _ in getattr(monkeypatch, "_setitem", []) if mapping is os.environ}
    env_after = {name: os.environ.get(name) for name in _LEAK_ENV if name not in touched}
    assert env_after == {k: v for k, v in env_before.items() if k not in touched}, "MLflow environment leaked"
    if not touched & {"MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"}:
        assert _mlflow_globals() in (globals_before, (None, None)), "MLflow's global tracking/registry URI leaked"
    assert {sig: signal.getsignal(sig) for sig in handlers_before} == handlers_before, "signal handler left"
    stray = sorted(p.name for p in cwd.iterdir())
    assert not stray, f"a test wrote to the working directory: {stray}"


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised, empty MLflow sqlite store that projects copy (creating one costs ~2 s); the same
    one the ``mlflow_store`` fixture of our pytest plugin copies."""
    from kedro_mlflow_runs.testing import _template

    return _template(tmp_path_factory)


@pytest.fixture
def project_factory(tmp_path: Path, template_db: Path) -> Callable[..., Path]:
    """``project_factory(mlflow_yml=..., ...)`` writes a Kedro project with its own sqlite store."""

    def make(**kwargs: Any) -> Path:
        kwargs.setdefault("template_db", template_db)
        return make_project(tmp_path, **kwargs)

    return make


@pytest.fixture
def project(project_factory: Callable[..., Path]) -> Path:
    return project_factory()


@pytest.fixture
def client_for() -> Callable[[Path], Any]:
    """``client_for(project)``: an MlflowClient on that project's default store."""
    from mlflow import MlflowClient

    return lambda project: MlflowClient(tracking_uri=store_uri(project))


def all_runs(client: Any) -> list[Any]:
    """Every run in every experiment (active and deleted experiments alike)."""
    from mlflow.entities import ViewType

    exps = client.search_experiments(view_type=ViewType.ALL)
    if not exps:
        return []
    return client.search_runs([e.experiment_id for e in exps], run_view_type=ViewType.ALL)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real `mlflow server` (PostgreSQL backend, proxied artifacts) for the whole session."""
    from mlflow_server import MlflowServer, TempDatabase

    with TempDatabase() as db:
        server = MlflowServer(db.uri, tmp_path_factory.mktemp("mlflow-server"))
        server.start()
        try:
            yield server
        finally:
            server.stop()


def user_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """A run's metrics without the node durations the plugin records (``kedro.node_duration_s.*``)."""
    return {k: v for k, v in metrics.items() if not k.startswith("kedro.node_duration_s.")}


def user_artifacts(items: list[Any]) -> list[Any]:
    """A run's top-level artifacts without the ``kedro/`` folder the plugin records (timeline, lineage)."""
    return [item for item in items if item.path != "kedro"]


@contextlib.contextmanager
def records(name: str) -> Iterator[list[logging.LogRecord]]:
    """The records logger ``name`` emits meanwhile (Kedro's session reconfigures logging: caplog misses them)."""

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    keep = Keep()
    logging.getLogger(name).addHandler(keep)
    try:
        yield keep.records
    finally:
        logging.getLogger(name).removeHandler(keep)


#: The longest modules, longest first: each runs on one xdist process (``--dist loadscope``), so handing
#: them out first keeps the last minutes of the suite from being one long module on one process.
_LONGEST_FIRST = ("test_deployment.py", "test_attempts.py", "test_machines_faults.py", "test_tutorial.py",
                  "test_cli_ui.py", "test_wheel.py", "test_dask.py", "test_machines_harness.py",
                  "test_server_faults.py", "test_security.py", "test_child_runs.py", "test_reliability.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a module keeps its order
