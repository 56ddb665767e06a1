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
