"""mlflow.yml: schema, precedence, URI resolution, and an error naming the key and file for every bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import all_runs
from kedro_project import run_session

from kedro_mlflow_runs import ConfigError, build_config
from kedro_mlflow_runs._redact import redact_uri
from kedro_mlflow_runs.config import resolve_tracking_uri

PROJECT = Path("/srv/proj")


def cfg(raw=None, environ=None, **kw):
    return build_config(raw, project_path=PROJECT, package_name="pkg", environ=environ or {}, **kw)


def test_defaults_without_any_config():
    c = cfg()
    assert c.server.tracking_uri == "sqlite:////srv/proj/mlflow.db"
    assert c.server.default_store
    assert c.tracking.experiment.name == "pkg"
    assert c.tracking.run.id is None
    assert c.tracking.params.flatten and c.tracking.params.sep == "."
    assert c.tracking.params.long_params_strategy == "fail"
    assert not c.tracking.run.attached.end_run and not c.tracking.run.attached.record_failure


def test_environment_variables_apply_when_mlflow_yml_is_silent():
    env = {"MLFLOW_TRACKING_URI": "http://tracking:5000", "MLFLOW_EXPERIMENT_NAME": "from-env",
           "MLFLOW_RUN_ID": "abc123"}
    c = cfg(environ=env)
    assert (c.server.tracking_uri, c.tracking.experiment.name, c.tracking.run.id) == ("http://tracking:5000", "from-env", "abc123")
    assert c.tracking.run.id_source == "the MLFLOW_RUN_ID environment variable"
    assert not c.server.default_store


def test_mlflow_yml_wins_over_environment_variables():
    env = {"MLFLOW_TRACKING_URI": "http://tracking:5000", "MLFLOW_EXPERIMENT_NAME": "from-env",
           "MLFLOW_RUN_ID": "abc123"}
    raw = {"server": {"mlflow_tracking_uri": "sqlite:///custom.db"},
           "tracking": {"experiment": {"name": "from-yml"}, "run": {"id": "yml456"}}}
    c = cfg(raw, environ=env)
    assert c.server.tracking_uri == "sqlite:////srv/proj/custom.db"
    assert c.tracking.experiment.name == "from-yml"
    assert c.tracking.run.id == "yml456"
    assert c.tracking.run.id_source.startswith("tracking.run.id in ")


def test_null_values_mean_default():
    c = cfg({"server": {"mlflow_tracking_uri": None}, "tracking": {"run": None, "params": {"dict_params": None}}})
    assert c.server.default_store and c.tracking.params.flatten


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///mlflow.db", "sqlite:////srv/proj/mlflow.db"),
        ("sqlite:///data/mlflow.db?timeout=20", "sqlite:////srv/proj/data/mlflow.db?timeout=20"),
        ("sqlite:////abs/mlflow.db", "sqlite:////abs/mlflow.db"),
        ("mlruns", "file:///srv/proj/mlruns"),
        ("file:mlruns", "file:///srv/proj/mlruns"),
        ("file:///abs/mlruns", "file:///abs/mlruns"),
        ("http://host:5000", "http://host:5000"),
        ("postgresql://u:p@h/db", "postgresql://u:p@h/db"),
        ("databricks", "databricks"),
    ],
)
def test_local_uris_are_resolved_against_the_project_root(uri, expected):
    assert resolve_tracking_uri(uri, PROJECT) == expected


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgresql://user:hunter2@db:5432/mlflow", "postgresql://user:***@db:5432/mlflow"),
        ("https://alice:pa55@mlflow.example.com/", "https://alice:***@mlflow.example.com/"),
        ("http://mlflow:5000", "http://mlflow:5000"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_passwords_in_uris_are_redacted(uri, expected):
    assert redact_uri(uri) == expected
    assert "hunter2" not in cfg({"server": {"mlflow_tracking_uri": uri}}).server.redacted_tracking_uri


BAD = [
    ({"srever": {}}, "Unknown key 'srever'"),
    ({"server": {"tracking_uri": "x"}}, "Unknown key 'server.tracking_uri' .* Did you mean 'server.mlflow_tracking_uri'"),
    ({"trackng": {}}, "Unknown key 'trackng' .* Did you mean 'tracking'"),
    ({"tracking": {"expriment": {"name": "x"}}}, "Unknown key 'tracking.expriment' .* Did you mean 'tracking.experiment'"),
    # a key in the wrong section: the key of that name elsewhere
    ({"tracking": {"long_params_strategy": "tag"}},
     "Unknown key 'tracking.long_params_strategy' .* Did you mean 'tracking.params.long_params_strategy'"),
    ({"server": {"port": 5001}}, "Unknown key 'server.port' .* Did you mean 'ui.port'"),
    # a nesting mistake: the sections that hold a key of that name, not "fix the spelling"
    ({"tracking": {"name": "x"}}, "Unknown key 'tracking.name' .* 'name' belongs under 'tracking.experiment' or "
                                  "'tracking.run': move it there \\(indented under that section\\) or remove it\\.$"),
    ({"tracking": {"run": {"nsted": True}}}, "Unknown key 'tracking.run.nsted'"),
    ({"server": "http://x"}, "'server' in .* must be a mapping"),
    ({"server": {"mlflow_tracking_uri": 5}}, "'server.mlflow_tracking_uri' .* must be a string, got int 5"),
    ({"tracking": {"run": {"nested": "yes"}}}, "'tracking.run.nested' .* must be a boolean, got str 'yes'"),
    ({"tracking": {"params": {"dict_params": {"flatten": 1}}}}, "'tracking.params.dict_params.flatten' .* must be a boolean"),
    ({"tracking": {"params": {"long_params_strategy": "drop"}}}, "'tracking.params.long_params_strategy' .* 'drop'; use one of: fail, tag, truncate"),
    ({"tracking": {"params": {"dict_params": {"sep": ""}}}}, "'tracking.params.dict_params.sep' .* non-empty"),
    ({"tracking": {"disable_tracking": {"pipelines": "training"}}}, "'tracking.disable_tracking.pipelines' .* must be a list"),
    ({"tracking": {"disable_tracking": {"pipelines": [1]}}}, "'tracking.disable_tracking.pipelines' .* list of pipeline names"),
    ({"tracking": {"run": {"tags": {"a": {"b": 1}}}}}, "'tracking.run.tags.a' .* plain value"),
    ({"tracking": {"run": {"tags": ["a"]}}}, "'tracking.run.tags' .* must be a mapping"),
    ({"tracking": {"run": {"id": "  "}}}, "'tracking.run.id' .* is empty"),
    ({"tracking": {"run": {"attached": {"end_run": "no"}}}}, "'tracking.run.attached.end_run' .* must be a boolean"),
    ({"ui": {"port": "http"}}, "'ui.port' .* must be a port number, got 'http'"),  # "5000" is fine (kedro-mlflow's)
    ({"ui": {"port": True}}, "'ui.port' .* must be an integer, got bool"),
    ({"ui": {"port": 70000}}, "'ui.port' .* between 1 and 65535"),
    ({"tracking": {"system_metrics": {"sampling_interval": 0}}}, "'tracking.system_metrics.sampling_interval' .* above 0"),
    ({"tracking": {"system_metrics": {"sampling_interval": float("nan")}}},  # YAML's .nan
     "'tracking.system_metrics.sampling_interval' .* must be a finite number, got nan"),
    ({"tracking": {"system_metrics": {"samples_before_logging": 0}}}, "'tracking.system_metrics.samples_before_logging' .* 1 or more"),
    ({"server": {"http": {"max_retries": -1}}}, "'server.http.max_retries' .* 0 or more"),
    ({"tracking": {"lineage": {"digest": "md5"}}}, "'tracking.lineage.digest' .* 'md5'; use one of: auto, stat, content, none"),
    (["server"], "'mlflow.yml' in .* must be a mapping"),
]


@pytest.mark.parametrize(("raw", "message"), BAD, ids=[m.split("'")[1] if "'" in m else m for _, m in BAD])
def test_every_bad_value_names_the_key_and_the_file(raw, message):
    with pytest.raises(ConfigError, match=message) as err:
        cfg(raw, source="conf/base/mlflow.yml")
    assert "conf/base/mlflow.yml" in str(err.value)


def test_error_through_kedro_names_the_file_that_holds_the_key(project_factory, client_for):
    project = project_factory(
        mlflow_yml={"tracking": {"experiment": {"name": "ok"}}},
        local_files={"conf/local/mlflow.yml": "tracking:\n  run:\n    nested: maybe\n"},
    )
    with pytest.raises(ConfigError) as err:
        run_session(project)
    message = str(err.value)
    assert "'tracking.run.nested'" in message
    assert "conf/local/mlflow.yml" in message
    assert "conf/base" not in message
    assert all_runs(client_for(project)) == []  # nothing started


def test_local_env_overrides_base(project_factory, client_for):
    project = project_factory(
        mlflow_yml={"tracking": {"experiment": {"name": "base-exp"}}},
        local_files={"conf/local/mlflow.yml": "tracking:\n  experiment:\n    name: local-exp\n"},
    )
    run_session(project)
    (run,) = all_runs(client_for(project))
    assert client_for(project).get_experiment(run.info.experiment_id).name == "local-exp"


def test_tracking_uri_from_environment_is_used(project, tmp_path, monkeypatch, template_db):
    import shutil

    from mlflow import MlflowClient

    db = tmp_path / "elsewhere.db"
    shutil.copy(template_db, db)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "env-exp")
    run_session(project)
    (run,) = all_runs(MlflowClient(f"sqlite:///{db}"))
    assert run.info.status == "FINISHED"
    assert MlflowClient(f"sqlite:///{db}").get_experiment(run.info.experiment_id).name == "env-exp"


def test_missing_credentials_entry_is_a_clear_error(project_factory):
    project = project_factory(mlflow_yml={"server": {"credentials": "nope"}})
    with pytest.raises(ConfigError, match=r"'server.credentials'.*'nope'.*credentials.yml"):
        run_session(project)


def test_unreachable_server_fails_before_any_node_with_the_uri_redacted(project_factory, tmp_path, monkeypatch):
    from kedro_mlflow_runs import TrackingUnavailableError

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    marker = tmp_path / "started"
    project = project_factory(mlflow_yml={"server": {"mlflow_tracking_uri": "http://bob:hunter2@127.0.0.1:9"}})
    with pytest.raises(TrackingUnavailableError) as err:
        run_session(project, runtime_params={"model": {"started_marker": str(marker)}})
    message = str(err.value)
    assert "http://127.0.0.1:9" in message  # the userinfo went to MLFLOW_TRACKING_USERNAME/_PASSWORD
    assert "hunter2" not in message
    import traceback

    assert "hunter2" not in "".join(traceback.format_exception(err.value))  # nor in chained causes
    assert not marker.exists()


def test_the_sections_follow_the_file_as_the_configuration_page_says():
    """docs/mlflow_yml.md, "In Python": each section attribute holds its key's (resolved) value."""
    raw = {"server": {"mlflow_tracking_uri": "http://u:secret@host:5000",
                      "request_header_provider": {"type": "pkg.auth.Provider", "init_kwargs": {"token": "t"}}},
           "tracking": {"experiment": {"name": "exp", "create_experiment_kwargs": {"artifact_location": "s3://b/a",
                                                                                   "tags": {"team": "ml"}}},
                        "params": {"dict_params": {"flatten": False, "recursive": False, "sep": "/"},
                                   "long_params_strategy": "tag"}},
           "ui": {"port": "5123"}}
    c = cfg(raw, environ={"MLFLOW_RUN_ID": "r1"})
    assert c.server.tracking_uri == "http://host:5000" and "secret" not in repr(c)
    assert c.server.header_provider.type == "pkg.auth.Provider" and c.server.header_provider.init_kwargs == {"token": "t"}
    assert (c.tracking.experiment.name, c.tracking.run.id, c.ui.port) == ("exp", "r1", 5123)
    assert (c.tracking.experiment.artifact_location, dict(c.tracking.experiment.tags)) == ("s3://b/a", {"team": "ml"})
    params = c.tracking.params
    assert (params.flatten, params.recursive, params.sep, params.long_params_strategy) == (False, False, "/", "tag")
    with pytest.raises(AttributeError):
        c.tracking.run.id = "other"  # frozen


@pytest.mark.parametrize(("raw", "environ", "expected"), [
    ({}, {}, {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}),
    # a variable already set, with the key unset: left as it is (not overridden)
    ({}, {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "8"}, {"MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}),
    ({"server": {"http": {"max_retries": 2, "backoff_factor": 0, "timeout": 7}}},
     {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "8"},  # the key wins
     {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
      "MLFLOW_HTTP_REQUEST_TIMEOUT": "7"}),
])
def test_http_retries_default_to_5_with_backoff_1_as_the_configuration_page_says(raw, environ, expected):
    http = dict(cfg(raw, environ=environ).server.http_env)
    assert {k: v for k, v in http.items() if k in expected or k.startswith("MLFLOW_HTTP_REQUEST_")} == expected
