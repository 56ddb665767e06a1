"""Kedro parameters -> MLflow parameters: flattening, key sanitising, long values."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kedro_mlflow_runs import ParameterError
from kedro_mlflow_runs.params import (
    flatten,
    parameter_inputs,
    sanitise_key,
    split_long_values,
    to_mlflow_params,
)


def test_parameter_inputs_are_params_and_parameters_only():
    assert parameter_inputs(["a", "params:x", "parameters", "params_not", "b"]) == ["params:x", "parameters"]


def test_flatten_nested_and_first_level_only():
    value = {"a": {"b": {"c": 1}}, "d": 2, "e": {}}
    assert dict(flatten(value)) == {"a.b.c": 1, "d": 2, "e": {}}
    assert dict(flatten(value, recursive=False)) == {"a": {"b": {"c": 1}}, "d": 2, "e": {}}


def test_to_mlflow_params_prefixes_params_inputs_and_not_the_parameters_input():
    out = to_mlflow_params({"params:model": {"C": 1, "k": {"x": 2}}, "parameters": {"seed": 1}, "params:lr": 0.1})
    assert out == {"model.C": 1, "model.k.x": 2, "seed": 1, "lr": 0.1}
    assert to_mlflow_params({"params:model": {"C": 1}}, flatten_dicts=False) == {"model": {"C": 1}}
    shallow = to_mlflow_params({"params:model": {"C": 1, "k": {"x": 2}}}, recursive=False)
    assert shallow == {"model.C": 1, "model.k": {"x": 2}}


def test_long_values_fail_tag_or_truncate():
    long = {"k": "y" * 6001, "short": 3}
    with pytest.raises(ParameterError, match="'k' is 6001 characters.*long_params_strategy"):
        split_long_values(long, "fail")
    assert split_long_values(long, "tag") == ({"short": "3"}, {"k": "y" * 6001})
    params, tags = split_long_values(long, "truncate")
    assert params == {"k": "y" * 6000, "short": "3"} and tags == {}
    assert split_long_values({"k": "z" * 6000}, "fail") == ({"k": "z" * 6000}, {})


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_sanitised_keys_are_always_accepted_by_mlflow(key):
    from mlflow.utils.validation import _validate_param_name

    cleaned = sanitise_key(key)
    _validate_param_name(cleaned)  # raises MlflowException if MLflow would refuse it
    assert len(cleaned) <= 250


def test_valid_keys_are_kept_as_they_are():
    for key in ("model.C", "a/b", "with space", "x-y_z", "t:1"):
        assert sanitise_key(key) == key
    assert sanitise_key("bad$key!") == "bad_key_"
    assert sanitise_key("a//b/") == "a/_/b/_"
    assert sanitise_key("..") == "_"


def test_a_nested_parameter_and_a_dotted_one_that_meet_are_an_error_naming_both():
    """`model: {C: 0.5}` and a top-level `model.C: 99` would both be `model.C`: one would be lost."""
    with pytest.raises(ParameterError, match=r"'model: \{C: \.\.\.\}' and 'model\.C: \.\.\.' both become the "
                                             r"MLflow parameter 'model\.C'") as info:
        to_mlflow_params({"parameters": {"model": {"C": 0.5}, "model.C": 99}})
    assert info.value.key == "model.C"
    # the same parameter read twice (params:model and parameters) is one parameter, not a clash
    both = to_mlflow_params({"params:model": {"C": 0.5}, "parameters": {"model": {"C": 0.5}}})
    assert both == {"model.C": 0.5}


def test_a_run_whose_parameters_meet_in_one_key_fails_before_any_node(project_factory, client_for, tmp_path):
    from conftest import all_runs
    from kedro_project import run_session

    params = {"data": {"n": 2}, "model": {"C": 0.5, "started_marker": str(tmp_path / "started")}, "model.C": 99,
              "seed": 1}
    project = project_factory(parameters=params)
    with pytest.raises(ParameterError, match="both become the MLflow parameter 'model.C'"):
        run_session(project)
    assert not (tmp_path / "started").exists()
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FAILED" and "model.C" not in run.data.params


# -- redaction of long values: linear, and after the strategy cut --------------------------------

MEGABYTE = 1_000_000


@pytest.mark.parametrize("text", [
    "a" * MEGABYTE,                      # one long word: the pattern of the old redaction backtracked over it
    "http://" + "a" * MEGABYTE,          # a URI with a megabyte-long host
    "http://user:" + "p" * MEGABYTE + "@h",  # a megabyte-long password
    "a://" * (MEGABYTE // 4),            # many scheme separators
    "?" + "a" * MEGABYTE,                # a query name with no end
    "&a=" * (MEGABYTE // 3),             # many query parameters
    "?token=" * (MEGABYTE // 7),         # many secret query parameters
    "http://u:p@h/x?token=1&a=2 " * (MEGABYTE // 27),
], ids=["word", "host", "password", "schemes", "query-name", "params", "secret-params", "uris"])
def test_redacting_a_megabyte_takes_well_under_a_second(text):
    """The old redaction ran for 22 minutes on a 1 MB parameter (quadratic backtracking)."""
    import time

    from kedro_mlflow_runs._redact import redact_uri

    started = time.perf_counter()
    redacted = redact_uri(text)
    assert time.perf_counter() - started < 1.0
    assert "p" * 100 not in redacted and "token=1" not in redacted


def test_long_values_are_cut_before_they_are_redacted_and_a_cut_secret_never_shows():
    pad = "x" * 5980
    cut_password = pad + " http://alice:" + "S" * 40 + "@host/data"  # 6000 falls inside the password
    cut_token = pad + " https://" + "T" * 40 + "@host/data"           # inside a token-only userinfo
    cut_query = pad + "?X-Amz-Signature=" + "G" * 40                  # inside a signature
    whole = "y" * 3000 + " postgresql://bob:" + "W" * 12 + "@db/x " + "y" * 3000
    params, tags = split_long_values({"p": cut_password, "t": cut_token, "q": cut_query, "w": whole}, "truncate")
    assert tags == {} and all(len(v) <= 6000 for v in params.values())
    assert params["p"].endswith(" http://***") and "S" not in params["p"]
    assert params["t"].endswith(" https://***") and "T" not in params["t"]
    assert params["q"].endswith("?X-Amz-Signature=***") and "G" not in params["q"]
    assert "W" not in params["w"] and "postgresql://bob:***@db/x" in params["w"]
    params, tags = split_long_values({"p": pad * 2 + cut_password}, "tag")
    assert params == {} and len(tags["p"]) == 8000 and tags["p"] == ("x" * 8000)
    # the strategy judges the value as written: a long value is refused before any redaction
    with pytest.raises(ParameterError, match="'p' is 6044 characters") as info:
        split_long_values({"p": cut_password}, "fail")
    assert info.value.key == "p"


@pytest.mark.parametrize(("text", "expected"), [
    ("https://TOKEN@host/data.csv", "https://***@host/data.csv"),
    ("git+https://ghp_abc@github.com/o/r", "git+https://***@github.com/o/r"),
    ("https://h/f?access_token=a1&sig=b2&X-Amz-Signature=c3&X-Amz-Credential=d4&X-Amz-Security-Token=e5"
     "&AWSAccessKeyId=f6&Signature=g7&api_key=h8&key=i9&code=j0&client_secret=k1&PASSWORD=l2&x=keep",
     "https://h/f?access_token=***&sig=***&X-Amz-Signature=***&X-Amz-Credential=***&X-Amz-Security-Token=***"
     "&AWSAccessKeyId=***&Signature=***&api_key=***&key=***&code=***&client_secret=***&PASSWORD=***&x=keep"),
    ("failed: http://u:p@ss@h/x and s3://b/k?a=1?token=t2 end", "failed: http://u:***@h/x and s3://b/k?a=1?token=*** end"),
    ("postgresql://me@db/x", "postgresql://me@db/x"),  # a user name alone, not an http token
    ("abfs://container@account.dfs.core.windows.net/p", "abfs://container@account.dfs.core.windows.net/p"),
    ("http://host?mail=a@b.com", "http://host?mail=a@b.com"),
    ("a://b://c:pw@h", "a://b://c:***@h"),
])
def test_what_redaction_hides(text, expected):
    from kedro_mlflow_runs._redact import redact_uri

    assert redact_uri(text) == expected


#: the names docs/security.md lists, and examples of its suffixes
DOCUMENTED_QUERY_NAMES = ["password", "passwd", "pwd", "token", "secret", "key", "apikey", "sig", "signature", "code",
                          "auth", "authorization", "credential", "credentials", "AWSAccessKeyId", "access_token",
                          "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "X-Goog-Signature",
                          "client_secret", "api_key", "x-api-key", "db_password", "db_passwd", "refresh_token"]


@pytest.mark.parametrize("name", DOCUMENTED_QUERY_NAMES)
def test_every_documented_secret_query_name_is_redacted_in_any_case(name):
    from kedro_mlflow_runs._redact import redact_uri

    for spelled in (name, name.upper(), name.lower()):
        assert redact_uri(f"https://h/p?{spelled}=V4lue&page=2") == f"https://h/p?{spelled}=***&page=2"
        assert redact_uri(f"s3://b/k?page=2&{spelled}=V4lue") == f"s3://b/k?page=2&{spelled}=***"


@pytest.mark.parametrize("name", ["page", "monkey", "keyboard", "tokens", "X-Amz-Date", "X-Amz-Expires", "sv"])
def test_other_query_values_are_kept(name):
    from kedro_mlflow_runs._redact import redact_uri

    assert redact_uri(f"https://h/p?{name}=V4lue") == f"https://h/p?{name}=V4lue"


def _racing_log_batch(mocker, other_values):
    """Tracker.log_batch as it goes when another step of the pipeline, attached to the same run, logs
    the same parameters at the same moment: the other step's batch lands first (with ``other_values``
    changed), then the store refuses ours as a duplicate (PostgreSQL's unique key)."""
    from mlflow import MlflowClient
    from mlflow.entities import Param

    from kedro_mlflow_runs.errors import TrackingError
    from kedro_mlflow_runs.tracking import Tracker

    original = Tracker.log_batch
    raced: list[dict[str, str]] = []

    def racing(self, run_id, **kwargs):
        if kwargs.get("what") == "log parameters to" and kwargs.get("params") and not raced:
            theirs = {**kwargs["params"], **other_values}
            raced.append(theirs)
            MlflowClient(self.client.tracking_uri).log_batch(run_id, params=[Param(k, v) for k, v in theirs.items()])
            raise TrackingError(f"Could not log parameters to MLflow run '{run_id}': BAD_REQUEST: duplicate key "
                                f"value violates unique constraint \"param_pk\"")
        return original(self, run_id, **kwargs)

    mocker.patch.object(Tracker, "log_batch", racing)
    return raced


def test_two_steps_logging_the_same_parameters_at_the_same_moment_both_succeed(project, client_for, mocker,
                                                                            monkeypatch):
    from kedro_project import run_session

    client = client_for(project)
    run_id = client.create_run(client.create_experiment("race", (project / "race").as_uri())).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    raced = _racing_log_batch(mocker, {})
    run_session(project)
    assert raced  # the race happened
    run = client.get_run(run_id)
    assert run.data.params == raced[0] and run.info.status == "RUNNING"  # attached: left to its owner
    assert not [k for k in run.data.tags if k.startswith("kedro.error.")]


def test_a_step_racing_another_with_a_different_value_fails_naming_the_parameter(project, client_for, mocker,
                                                                              monkeypatch):
    from kedro_project import run_session

    client = client_for(project)
    run_id = client.create_run(client.create_experiment("race", (project / "race").as_uri())).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    raced = _racing_log_batch(mocker, {"model.C": "999"})
    with pytest.raises(ParameterError, match=r"Parameter 'model\.C' is already logged .* as '999'"):
        run_session(project)
    assert raced and client.get_run(run_id).data.params["model.C"] == "999"


def test_parameters_are_read_as_the_catalog_loads_them_without_its_log_line():
    """The run reads its parameters from their datasets: the same values as `catalog.load`, without the
    catalog's "Loading data from ..." line for each (a line per parameter of a 5,000-node pipeline)."""
    import logging

    from kedro.io import DataCatalog, MemoryDataset

    from kedro_mlflow_runs.core.catalog import parameter_values

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.lines: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.lines.append(record.getMessage())

    catalog = DataCatalog(datasets={"params:model": MemoryDataset({"C": 0.5, "nested": {"depth": 3}}),
                                    "params:seed": MemoryDataset(42)})
    keep = Keep()
    logger = logging.getLogger("kedro.io.data_catalog")
    level = logger.level
    logger.addHandler(keep)
    logger.setLevel(logging.DEBUG)
    try:
        values = parameter_values(catalog, ["params:model", "params:seed"])
        assert not keep.lines, keep.lines
        expected = {name: catalog.load(name) for name in ("params:model", "params:seed")}
        assert any("Loading data from" in line for line in keep.lines)  # what catalog.load logs
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
    assert values == expected == {"params:model": {"C": 0.5, "nested": {"depth": 3}}, "params:seed": 42}
