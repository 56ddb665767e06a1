"""No secret printed or stored: a password in the tracking URI never reaches an output stream, a
param, a tag, the run handle or MLFLOW_TRACKING_URI; error messages stored on runs are redacted."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from conftest import all_runs, user_metrics
from flaky_proxy import FlakyProxy
from kedro_project import kedro_cmd, kedro_env, kedro_run

from kedro_mlflow_runs import build_config
from kedro_mlflow_runs._redact import split_credentials

SECRET = "S3cretPw"

NODES = '''
import json
import os

import mlflow


def make_data(data):
    return [float(i) for i in range(int(data["n"]))]


def train(values, model):
    with open(model["env_dump"], "w") as out:
        json.dump({"env": dict(os.environ), "tracking_uri": mlflow.get_tracking_uri()}, out)
    mlflow.log_metric("from_node", 1.0)
    if model.get("fail"):
        raise RuntimeError("could not reach " + model["fail"])
    return {"coef": float(model["C"]) * sum(values)}


def report(result, parameters):
    return {"coef": result["coef"]}
'''


def _everything_stored(client, run) -> str:
    stored = dict(run.data.params)
    stored.update(run.data.tags)
    return json.dumps(stored)


@pytest.mark.slow
@pytest.mark.postgres
def test_a_password_in_the_tracking_uri_is_never_printed_or_stored(project_factory, mlflow_server, tmp_path):
    with FlakyProxy(mlflow_server.url, fail_every=0, drop_every=0, allow=_basic_auth("alice", SECRET)) as gateway:
        _password_in_the_uri(project_factory, mlflow_server, gateway, tmp_path)


def _basic_auth(user: str, password: str):
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return lambda headers: headers.get("Authorization") == expected


def _password_in_the_uri(project_factory, mlflow_server, gateway, tmp_path) -> None:
    from mlflow import MlflowClient

    uri = gateway.url.replace("http://", f"http://alice:{SECRET}@")
    dump = tmp_path / "env.json"
    project = project_factory(
        nodes=NODES,
        mlflow_yml={"server": {"mlflow_tracking_uri": uri},
                    "tracking": {"experiment": {"name": f"secrets-{tmp_path.name}"}}},
        parameters={"data": {"n": 3}, "model": {"C": 1.0, "env_dump": str(dump), "fail": ""}, "seed": 1},
    )
    ok = kedro_run(project, "--params", f"note=http://bob:{SECRET}@example.invalid/x")
    assert ok.returncode == 0, ok.stderr[-3000:]
    seen = json.loads(dump.read_text())
    failed = kedro_run(project, "--params", "model.fail=the server")
    assert failed.returncode != 0
    closed = subprocess.run(kedro_cmd("mlflow", "close-run", "--run-id", "0" * 32), cwd=project,
                            env=kedro_env(), capture_output=True, text=True, timeout=120)

    for result in (ok, failed, closed):
        assert SECRET not in result.stdout + result.stderr
    # the gateway refuses requests without alice's password: every request of the runs and of
    # close-run carried it (close-run got as far as the server's "not found")
    assert gateway.requests > 10 and gateway.refused == 0
    assert closed.returncode != 0 and "0" * 32 in closed.stderr and "does not exist" in closed.stderr
    # while the run was live: the handle and MLflow's URI carry no password; MLflow's own
    # credential variables do (that is how its client authenticates)
    env = seen["env"]
    assert SECRET not in seen["tracking_uri"]
    assert [name for name, value in env.items() if SECRET in value] == ["MLFLOW_TRACKING_PASSWORD"]
    assert env["MLFLOW_TRACKING_PASSWORD"] == SECRET and env["MLFLOW_TRACKING_USERNAME"] == "alice"
    client = MlflowClient(mlflow_server.url)
    exp = client.get_experiment_by_name(f"secrets-{tmp_path.name}")
    runs = client.search_runs([exp.experiment_id])
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]
    for run in runs:
        assert SECRET not in _everything_stored(client, run)
    (finished,) = [r for r in runs if r.info.status == "FINISHED"]
    assert finished.data.params["note"] == "http://bob:***@example.invalid/x"
    assert user_metrics(finished.data.metrics) == {"from_node": 1.0}


TOKEN = "T0kenXyz"


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("userinfo", [TOKEN, f"{TOKEN}:"], ids=["token-only", "token-and-empty-password"])
def test_a_token_in_the_tracking_uri_is_never_printed_or_stored_and_authenticates_as_before(
        project_factory, mlflow_server, tmp_path, userinfo):
    """``http://TOKEN@host``: MLflow's client (``requests``) sends no credentials for it;
    ``http://TOKEN:@host``: basic auth ``TOKEN:``. The plugin takes the token out of the URI and
    sends exactly what plain MLflow sends, from the session and from node code in a spawned worker."""
    from mlflow import MlflowClient

    with FlakyProxy(mlflow_server.url, fail_every=0, drop_every=0) as probe:  # what plain MLflow sends
        MlflowClient(probe.url.replace("http://", f"http://{userinfo}@")).search_experiments()
        sent = probe.seen_headers[-1].get("Authorization")
    assert sent == (None if ":" not in userinfo else "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode())
    with FlakyProxy(mlflow_server.url, fail_every=0, drop_every=0,
                    allow=lambda headers: headers.get("Authorization") == sent) as gateway:
        dump = tmp_path / "env.json"
        experiment = f"token-{tmp_path.name}"
        project = project_factory(
            nodes=NODES,
            mlflow_yml={"server": {"mlflow_tracking_uri": gateway.url.replace("http://", f"http://{userinfo}@")},
                        "tracking": {"experiment": {"name": experiment}}},
            parameters={"data": {"n": 3}, "model": {"C": 1.0, "env_dump": str(dump), "fail": ""}, "seed": 1},
        )
        # the node runs in a spawned worker: what it sends, it sends from the environment it inherited
        ok = kedro_run(project, "--runner", "ParallelRunner", env=kedro_env(KEDRO_MP_CONTEXT="spawn"))
        assert ok.returncode == 0, ok.stderr[-3000:]
        failed = kedro_run(project, "--params", "model.fail=the server")
        assert failed.returncode != 0
        listed = subprocess.run(kedro_cmd("mlflow", "runs"), cwd=project, env=kedro_env(), capture_output=True,
                                text=True, timeout=120)
        assert listed.returncode == 0, listed.stderr[-3000:]
        assert gateway.requests > 10 and gateway.refused == 0  # every request carried what MLflow sends
    for result in (ok, failed, listed):
        assert TOKEN not in result.stdout + result.stderr
    assert "View run" in ok.stdout and gateway.url.removeprefix("http://") in ok.stdout  # MLflow's own line
    if ":" not in userinfo:
        # said once why the token is left out (the log handler may wrap the line anywhere)
        assert "no ':' before '@'" in " ".join((ok.stdout + ok.stderr).split())
    seen = json.loads(dump.read_text())
    assert TOKEN not in seen["tracking_uri"]
    holding = [name for name, value in seen["env"].items() if TOKEN in value]
    assert holding == ([] if ":" not in userinfo else ["KEDRO_MLFLOW_RUNS_TRACKING_USERINFO"])
    client = MlflowClient(mlflow_server.url)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]
    for run in runs:
        assert TOKEN not in _everything_stored(client, run)
    (finished,) = [r for r in runs if r.info.status == "FINISHED"]
    assert user_metrics(finished.data.metrics) == {"from_node": 1.0}  # the worker went through the gateway too


def test_an_error_message_holding_a_password_is_stored_redacted(project, client_for):
    from kedro_project import run_session

    with pytest.raises(ValueError, match="on purpose"):
        run_session(project, runtime_params={"model": {"fail": f"postgresql://u:{SECRET}@db/x"}})
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FAILED"
    assert SECRET not in _everything_stored(None, run)
    assert "postgresql://u:***@db/x" in run.data.tags["kedro.error.message"]


@pytest.mark.parametrize(
    ("uri", "clean", "env"),
    [
        (f"http://alice:{SECRET}@host:5000", "http://host:5000",
         {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": SECRET}),
        (f"postgresql+psycopg://me:{SECRET}@db:5432/mlflow", "postgresql+psycopg://me@db:5432/mlflow",
         {"PGPASSWORD": SECRET}),
        (f"postgresql+psycopg2://me:{SECRET}@db/mlflow", "postgresql+psycopg2://me@db/mlflow", {"PGPASSWORD": SECRET}),
        (f"postgresql://me:{SECRET}@db/mlflow", "postgresql://me@db/mlflow", {"PGPASSWORD": SECRET}),
        # what the security page says stays in the URI: drivers that do not read PGPASSWORD, other databases
        (f"postgresql+pg8000://me:{SECRET}@db/mlflow", f"postgresql+pg8000://me:{SECRET}@db/mlflow", {}),
        (f"postgresql+asyncpg://me:{SECRET}@db/mlflow", f"postgresql+asyncpg://me:{SECRET}@db/mlflow", {}),
        (f"mysql://me:{SECRET}@db/mlflow", f"mysql://me:{SECRET}@db/mlflow", {}),
        (f"mssql+pyodbc://me:{SECRET}@db/mlflow", f"mssql+pyodbc://me:{SECRET}@db/mlflow", {}),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db", {}),
        (f"https://{SECRET}@host", "https://host", {}),  # requests sends nothing for a token-only userinfo
        (f"https://{SECRET}:@host", "https://host",
         {"MLFLOW_TRACKING_AUTH": "kedro-mlflow-runs-userinfo", "KEDRO_MLFLOW_RUNS_TRACKING_USERINFO": f"{SECRET}:"}),
        (f"http://:{SECRET}@host", "http://host",
         {"MLFLOW_TRACKING_AUTH": "kedro-mlflow-runs-userinfo", "KEDRO_MLFLOW_RUNS_TRACKING_USERINFO": f":{SECRET}"}),
    ],
)
def test_credentials_move_from_the_uri_to_the_variables_the_client_reads(tmp_path, uri, clean, env):
    assert split_credentials(uri) == (clean, env)
    config = build_config({"server": {"mlflow_tracking_uri": uri}}, project_path=tmp_path)
    assert config.server.tracking_uri == clean and dict(config.server.uri_credentials) == env
    assert SECRET not in repr(config)  # (a URI that keeps its password is still redacted where it shows)


def test_a_registry_uri_is_split_too_and_other_credentials_there_are_an_error(tmp_path):
    from kedro_mlflow_runs import ConfigError

    server = {"mlflow_tracking_uri": f"http://alice:{SECRET}@host:5000",
              "mlflow_registry_uri": f"https://alice:{SECRET}@registry:443"}
    config = build_config({"server": server}, project_path=tmp_path)
    assert config.server.registry_uri == "https://registry:443"
    assert dict(config.server.uri_credentials) == {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": SECRET}
    other = {**server, "mlflow_registry_uri": "https://bob:other@registry:443"}
    with pytest.raises(ConfigError, match="other credentials than the tracking URI") as info:
        build_config({"server": other}, project_path=tmp_path)
    assert info.value.key == "server.mlflow_registry_uri" and "other@" not in str(info.value)
    # basic auth from MLflow's variables and from our auth provider cannot both apply
    token = {**server, "mlflow_registry_uri": f"https://{SECRET}:@registry:443"}
    with pytest.raises(ConfigError, match="MLFLOW_TRACKING_AUTH") as info:
        build_config({"server": token}, project_path=tmp_path)
    assert SECRET not in str(info.value)


def test_a_request_auth_provider_named_in_the_environment_keeps_precedence_over_a_token_uri(tmp_path):
    """As in plain MLflow, where the provider's auth replaces what requests takes from the URI."""
    server = {"mlflow_tracking_uri": f"https://{SECRET}:@host"}
    config = build_config({"server": server}, project_path=tmp_path, environ={"MLFLOW_TRACKING_AUTH": "custom"})
    assert config.server.tracking_uri == "https://host" and dict(config.server.uri_credentials) == {}


@pytest.mark.slow
@pytest.mark.postgres
def test_outside_a_run_dataset_calls_get_the_uri_credentials_and_give_them_back(project_factory, mlflow_server,
                                                                                  mocker):
    """A notebook using the catalog (no run): the password taken out of the URI is set around each
    MLflow call of the dataset, and not left in the environment."""
    import os

    from mlflow import MlflowClient

    from kedro_mlflow_runs.core.registry import registry
    from kedro_mlflow_runs.io import MlflowMetricDataset

    client = MlflowClient(mlflow_server.url)
    run_id = client.create_run(client.create_experiment(f"outside-{os.getpid()}-{id(client)}")).info.run_id
    config = build_config({"server": {"mlflow_tracking_uri": mlflow_server.url.replace("http://", f"http://u:{SECRET}@")}},
                          project_path=project_factory())
    seen = []
    real = MlflowClient.log_batch

    def spy(self, *args, **kwargs):
        seen.append(os.environ.get("MLFLOW_TRACKING_PASSWORD"))
        return real(self, *args, **kwargs)

    mocker.patch.object(MlflowClient, "log_batch", spy)
    registry().configs.remember(None, config, {})
    try:
        MlflowMetricDataset(key="outside", run_id=run_id).save(1.0)
    finally:
        registry().configs.forget()
    assert seen == [SECRET]
    assert "MLFLOW_TRACKING_PASSWORD" not in os.environ
    assert user_metrics(client.get_run(run_id).data.metrics) == {"outside": 1.0}
    client.set_terminated(run_id)


# -- long values: redaction is linear, and applied to what is kept -------------------------------

LONG_NODES = '''
def make_data(data):
    return [float(i) for i in range(int(data["n"]))]


def train(values, model):
    if model["fail_size"]:
        raise RuntimeError("could not reach http://u:S3cretPw@db/x " + "x" * int(model["fail_size"]))
    return {"coef": float(model["C"]) * sum(values)}


def report(result, parameters):
    return {"coef": result["coef"]}
'''


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["truncate", "tag"])
def test_a_megabyte_string_parameter_is_logged_cut_and_redacted_and_the_run_finishes(project_factory, client_for,
                                                                                    strategy):
    """The old redaction kept such a run at 100% CPU for 22 minutes, before cutting the value."""
    big = f"http://alice:{SECRET}@host/x " + "a" * 1_000_000
    project = project_factory(
        nodes=LONG_NODES, mlflow_yml={"tracking": {"params": {"long_params_strategy": strategy}}},
        parameters={"data": {"n": 3}, "model": {"C": 1.0, "fail_size": 0}, "big": big})
    result = kedro_run(project, timeout=120)  # TimeoutExpired: the run hangs
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FINISHED"
    logged = run.data.params.get("big") if strategy == "truncate" else run.data.tags.get("big")
    assert (6000 if strategy == "truncate" else 8000) - 5 <= len(logged) <= (6000 if strategy == "truncate" else 8000)
    assert logged.startswith("http://alice:***@host/x aaa")
    assert SECRET not in _everything_stored(None, run)


PLAIN_LOGGING = """\
version: 1
disable_existing_loggers: false
handlers:
  console: {class: logging.StreamHandler, stream: ext://sys.stdout}
root: {handlers: [console], level: INFO}
"""


@pytest.mark.slow
@pytest.mark.parametrize("size", [60_000, 200_000])
def test_a_node_failing_with_a_long_message_ends_the_run_failed_promptly(project_factory, client_for, size):
    """The old redaction made such a run take 12 s (60 kB) and minutes (200 kB) instead of 3 s.

    Kedro's default rich log handler is replaced by a plain one: wrapping the message into its
    columns takes Kedro about a minute on its own, with or without this plugin.
    """
    project = project_factory(nodes=LONG_NODES, local_files={"conf/logging.yml": PLAIN_LOGGING},
                              parameters={"data": {"n": 3}, "model": {"C": 1.0, "fail_size": size}})
    result = kedro_run(project, env=kedro_env(KEDRO_LOGGING_CONFIG=str(project / "conf" / "logging.yml")),
                       timeout=60)  # TimeoutExpired: the run hangs over the message
    assert result.returncode != 0 and "could not reach" in result.stdout + result.stderr
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FAILED"
    message = run.data.tags["kedro.error.message"]
    assert message.startswith("could not reach http://u:***@db/x xxx") and 7990 <= len(message) <= 8000
    assert SECRET not in _everything_stored(None, run)


# -- lineage: where an input came from, without the credentials in its address -------------------

REMOTE_NODES = '''
def count(remote):
    return {"rows": len(remote)}
'''

REMOTE_REGISTRY = '''
from kedro.pipeline import node, pipeline

from .nodes import count


def register_pipelines():
    return {"__default__": pipeline([node(count, "remote", "summary", name="count")])}
'''


class _JsonServer:
    """Serves ``[1, 2, 3]`` at every path of a free loopback port, recording what it was asked."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.paths.append(self.path)
                body = b"[1, 2, 3]"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "9")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _JsonServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


QUERY_SECRETS = {"access_token": "Acc3ssTok", "sig": "S1gnat", "X-Amz-Signature": "AmzS1g", "api_key": "Ap1Key",
                 "X-Amz-Credential": "AmzCred", "X-Amz-Security-Token": "AmzSess", "code": "C0de"}


@pytest.mark.slow
def test_an_input_read_with_credentials_in_its_url_is_recorded_without_them(project_factory, client_for, tmp_path):
    """The lineage source of an http input keeps its host, path and plain query values, never a
    token in the userinfo or a credential in the query string."""
    query = "&".join(f"{k}={v}" for k, v in QUERY_SECRETS.items())
    with _JsonServer() as server:
        port = server.httpd.server_address[1]
        url = f"http://UserT0ken@127.0.0.1:{port}/data.json?{query}&page=2"
        project = project_factory(nodes=REMOTE_NODES, registry=REMOTE_REGISTRY,
                                  catalog={"remote": {"type": "json.JSONDataset", "filepath": url}})
        result = kedro_run(project)
    assert result.returncode == 0, result.stderr[-3000:]
    assert any("access_token=Acc3ssTok" in path for path in server.paths)  # the node really read that URL
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FINISHED"
    (remote,) = [i.dataset for i in run.inputs.dataset_inputs if i.dataset.name == "remote"]
    assert remote.source_type == "http"
    masked = "&".join(f"{k}=***" for k in QUERY_SECRETS)
    assert json.loads(remote.source) == {"url": f"http://***@127.0.0.1:{port}/data.json?{masked}&page=2"}
    recorded = client_for(project).download_artifacts(run.info.run_id, "kedro", str(tmp_path))
    texts = [p.read_text() for p in Path(recorded).rglob("*") if p.is_file()]  # lineage, timeline, pipeline
    for secret in ("UserT0ken", *QUERY_SECRETS.values()):
        assert secret not in result.stdout + result.stderr
        assert secret not in _everything_stored(None, run)
        assert all(secret not in text for text in texts)
