"""``server.request_header_provider``: a project's class adds headers to every request, in workers too.

The server sits behind a proxy that refuses (401) any request without a valid token, as a gateway
would; the provider hands out a fresh token for every request, as one that refreshes would.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import user_metrics
from flaky_proxy import FlakyProxy
from kedro_project import kedro_cmd, kedro_env, kedro_run, run_session

from kedro_mlflow_runs import ConfigError

PROVIDER = '''
from mlflow.tracking.request_header.abstract_request_header_provider import RequestHeaderProvider


class TokenProvider(RequestHeaderProvider):
    """Hands out a new token for each request (as a provider that refreshes an expiring one)."""

    def __init__(self, secret, kedro_context=None):
        self.secret = secret
        self.who = "worker" if kedro_context is None else type(kedro_context).__name__
        self.issued = 0

    def in_context(self):
        return True

    def request_headers(self):
        self.issued += 1
        return {"X-Token": f"{self.secret}.{self.issued}", "X-Who": self.who}


class NotAProvider:
    pass
'''

NODES = '''
def make_data(data):
    return [float(i) for i in range(int(data["n"]))]


def score(values):
    import sys

    if "mlflow" in sys.modules:  # which providers MLflow asks while the node runs
        from kedro_mlflow_runs.compat.mlflow import header_providers

        return sum(values) / len(values) + 10 * sum(type(p).__name__ == "TokenProvider" for p in header_providers())
    return sum(values) / len(values)
'''

REGISTRY = '''
from kedro.pipeline import node, pipeline

from .nodes import make_data, score


def register_pipelines():
    return {"__default__": pipeline([node(make_data, "params:data", "values", name="make_data"),
                                     node(score, "values", "score", name="score")])}
'''


def _valid(headers) -> bool:
    token = headers.get("X-Token") or ""
    secret, _, serial = token.partition(".")
    return secret == "sesame" and serial.isdigit()


def _project(project_factory, tracking_uri: str | None, provider: dict, experiment: str = "headers"):
    """A project whose package has ``auth.TokenProvider``; ``{package}`` in the provider's type is filled in."""
    project = project_factory(nodes=NODES, registry=REGISTRY, catalog={
        "score": {"type": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset", "key": "score"}})
    package = next(p for p in (project / "src").iterdir() if p.name.startswith("kmr_proj_"))
    (package / "auth.py").write_text(PROVIDER)
    server = {"http": {"max_retries": 0},
              "request_header_provider": {**provider, "type": provider["type"].format(package=package.name)}}
    if tracking_uri:
        server["mlflow_tracking_uri"] = tracking_uri
    (project / "conf" / "base" / "mlflow.yml").write_text(
        yaml.safe_dump({"server": server, "tracking": {"experiment": {"name": experiment}}}))
    return project


@pytest.mark.slow
@pytest.mark.postgres
def test_spawned_workers_and_the_session_send_the_providers_headers(project_factory, mlflow_server):
    from mlflow import MlflowClient

    experiment = f"headers-{uuid.uuid4().hex[:8]}"
    with FlakyProxy(mlflow_server.url, fail_every=0, drop_every=0, allow=_valid) as proxy:
        with pytest.raises(Exception):  # the gateway really refuses requests without the header
            MlflowClient(proxy.url).search_experiments()
        refused_before = proxy.refused
        project = _project(project_factory, proxy.url, {
            "type": "{package}.auth.TokenProvider", "pass_context": True, "init_kwargs": {"secret": "sesame"}},
            experiment)
        result = kedro_run(project, "--runner", "ParallelRunner", env=kedro_env(KEDRO_MP_CONTEXT="spawn"))
        assert result.returncode == 0, result.stderr[-3000:]
        assert proxy.refused == refused_before  # every request of the run carried a valid token
        closed = subprocess.run(kedro_cmd("mlflow", "close-run", "--run-id", "0" * 32), cwd=project,
                                env=kedro_env(), capture_output=True, text=True, timeout=120)
        assert "does not exist" in closed.stderr  # close-run got past the gateway too
        assert proxy.refused == refused_before
        senders = {h.get("X-Who") for h in proxy.seen_headers if _valid(h)}
        # the session's process built it with the Kedro context; spawned workers without one
        assert senders == {"KedroContext", "worker"}

    client = MlflowClient(mlflow_server.url)
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert run.info.status == "FINISHED"
    # logged by a spawned worker through the proxy; it had one provider (its own) while the node ran
    assert user_metrics(run.data.metrics) == {"score": 11.5}
    assert "sesame" not in str(run.data.params) + str(run.data.tags)  # init_kwargs are never logged


@pytest.mark.parametrize("type_path, message", [
    ("{package}.auth.Missing", "cannot be imported"),
    ("{package}.auth.NotAProvider", "not a subclass"),
    ("{package}.auth.TokenProvider", "init_kwargs"),
    ("no_dot", "import path of a class"),
])
def test_a_bad_provider_is_a_config_error_before_any_run(project_factory, client_for, type_path, message):
    from conftest import all_runs

    kwargs = {"token": "sesame"} if type_path.endswith("TokenProvider") else {"secret": "sesame"}
    project = _project(project_factory, None, {"type": type_path, "init_kwargs": kwargs})
    with pytest.raises(ConfigError, match=message) as info:
        run_session(project)
    assert info.value.key == "server.request_header_provider.type"
    assert not (project / "data").exists() and all_runs(client_for(project)) == []


def test_the_provider_is_given_to_mlflow_for_the_run_only(project_factory, client_for):
    from conftest import all_runs

    from kedro_mlflow_runs.compat.mlflow import header_providers

    project = _project(project_factory, None, {"type": "{package}.auth.TokenProvider",
                                                "init_kwargs": {"secret": "sesame"}})
    before = list(header_providers())
    run_session(project)
    assert header_providers() == before
    (run,) = all_runs(client_for(project))
    assert user_metrics(run.data.metrics) == {"score": 11.5}  # one TokenProvider while the node ran


class InheritedProvider:
    """Stands for the instance a forked worker inherited (worker_install only compares the class path)."""


def test_a_forked_worker_keeps_the_inherited_provider_and_adds_none(monkeypatch):
    import json

    from kedro_mlflow_runs.compat.mlflow import header_providers
    from kedro_mlflow_runs.core.header_providers import install_published
    from kedro_mlflow_runs.core.registry import registry
    from kedro_mlflow_runs.core.worker_env import HEADER_PROVIDER

    inherited = InheritedProvider()
    remove = registry().process.add_header_provider(inherited)
    try:
        before = list(header_providers())
        monkeypatch.setenv(HEADER_PROVIDER, json.dumps(
            {"type": f"{__name__}.InheritedProvider", "pass_context": False}))
        install_published(registry().process)  # as a worker does the first time it finds its run
        assert header_providers() == before  # no second instance: headers would be sent twice
    finally:
        remove()
    assert inherited not in header_providers()


def test_a_pipeline_with_tracking_disabled_does_not_build_the_provider(project_factory):
    """Disabled means no MLflow: the provider class is not even imported (a missing one is no error)."""
    import sys

    project = _project(project_factory, None, {"type": "{package}.auth.Missing"})
    yml = project / "conf" / "base" / "mlflow.yml"
    config = yaml.safe_load(yml.read_text())
    config["tracking"]["disable_tracking"] = {"pipelines": ["__default__"]}
    yml.write_text(yaml.safe_dump(config))
    catalog = project / "conf" / "base" / "catalog.yml"
    catalog.write_text(yaml.safe_dump({"score": {"type": "json.JSONDataset", "filepath": "data/score.json"}}))
    run_session(project)
    assert (project / "data" / "score.json").exists()
    assert f"{project.name}.auth" not in sys.modules


ENV_NODES = '''
import json
import os
import sys
from pathlib import Path


def make_data(data):
    return [float(i) for i in range(int(data["n"]))]


def score(values):
    """Dump this process's environment (and the modes of the published init_kwargs file) for the test."""
    published = json.loads(os.environ.get("KEDRO_MLFLOW_RUNS_HEADER_PROVIDER") or "null")
    path = (published or {}).get("init_kwargs_file")
    modes = [oct(os.stat(p).st_mode & 0o777) for p in (path, os.path.dirname(path))] if path else None
    dump = Path(os.environ["ENV_DUMP_DIR"]) / f"{os.getpid()}.json"
    dump.write_text(json.dumps({"env": dict(os.environ), "modes": modes}))
    built = 0
    if "mlflow" in sys.modules:  # the providers MLflow asks while the node runs, built with the secret
        from kedro_mlflow_runs.compat.mlflow import header_providers

        built = sum(type(p).__name__ == "TokenProvider" and p.secret == "sesame" for p in header_providers())
    return sum(values) / len(values) + 10 * built
'''


def _dumps(folder):
    import json

    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["SequentialRunner", "ParallelRunner"])
def test_init_kwargs_never_reach_the_environment_of_nodes_and_spawned_workers_still_build_the_provider(
        project_factory, client_for, tmp_path, runner):
    import json

    from conftest import all_runs

    project = _project(project_factory, None, {"type": "{package}.auth.TokenProvider",
                                                "init_kwargs": {"secret": "sesame"}})
    (next(p for p in (project / "src").iterdir() if p.name.startswith("kmr_proj_")) / "nodes.py").write_text(ENV_NODES)
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    result = kedro_run(project, "--runner", runner,
                       env=kedro_env(KEDRO_MP_CONTEXT="spawn", ENV_DUMP_DIR=str(dumps)))
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FINISHED"
    assert user_metrics(run.data.metrics) == {"score": 11.5}  # the node's process had the provider, with the secret
    (seen,) = _dumps(dumps)
    assert all("sesame" not in value for value in seen["env"].values())
    published = json.loads(seen["env"]["KEDRO_MLFLOW_RUNS_HEADER_PROVIDER"])
    assert set(published) == {"type", "pass_context", "init_kwargs_file"}
    assert seen["modes"] == ["0o600", "0o700"]  # the file and its private folder, while the run lasted
    assert not os.path.exists(os.path.dirname(published["init_kwargs_file"]))  # removed when the run ended
    assert "sesame" not in result.stdout + result.stderr


def test_with_tracking_disabled_the_header_provider_is_not_published(project_factory, tmp_path, monkeypatch):
    project = _project(project_factory, None, {"type": "{package}.auth.TokenProvider",
                                                "init_kwargs": {"secret": "sesame"}})
    (next(p for p in (project / "src").iterdir() if p.name.startswith("kmr_proj_")) / "nodes.py").write_text(ENV_NODES)
    yml = project / "conf" / "base" / "mlflow.yml"
    yml.write_text(yaml.safe_dump({**yaml.safe_load(yml.read_text()),
                                   "tracking": {"disable_tracking": {"pipelines": ["__default__"]}}}))
    (project / "conf" / "base" / "catalog.yml").write_text(
        yaml.safe_dump({"score": {"type": "json.JSONDataset", "filepath": "data/score.json"}}))
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    monkeypatch.setenv("ENV_DUMP_DIR", str(dumps))
    run_session(project)
    (seen,) = _dumps(dumps)
    assert "KEDRO_MLFLOW_RUNS_HEADER_PROVIDER" not in seen["env"]
    assert all("sesame" not in value for value in seen["env"].values())
    assert (project / "data" / "score.json").read_text() == "1.5"  # the node ran, without any provider


def test_the_init_kwargs_folder_of_a_killed_run_is_removed_by_the_next_one(tmp_path):
    """A run killed with kill -9 cannot remove its folder: it is a spool folder, which the next run
    reclaims once no process holds it."""
    import json
    import sys

    from kedro_mlflow_runs.recording.spool import reclaim_abandoned

    code = ("import json, os, sys\n"
            "from kedro_mlflow_runs.framework.header_provider import publish\n"
            "from kedro_mlflow_runs.config import HeaderProviderSpec\n"
            "env, _ = publish(HeaderProviderSpec('pkg.Provider', False, {'secret': 'sesame'}))\n"
            "print(env['KEDRO_MLFLOW_RUNS_HEADER_PROVIDER'], flush=True)\n"
            "os.kill(os.getpid(), 9)\n")
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert killed.returncode == -9, killed.stderr[-2000:]
    path = json.loads(killed.stdout)["init_kwargs_file"]
    assert json.loads(Path(path).read_text()) == {"secret": "sesame"}
    assert os.path.dirname(path) in reclaim_abandoned()  # what Spool.create does when a run starts
    assert not os.path.exists(os.path.dirname(path))
