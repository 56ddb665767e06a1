"""Turning Kedro parameters into MLflow parameters: flattening, key sanitising, long values.

Pure functions, no MLflow import: they run before anything is sent.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ._redact import redact_uri
from .errors import ParameterError

#: MLflow's limits (mlflow.utils.validation), repeated here so this module needs no mlflow import.
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_KEY_LENGTH = 250

LONG_PARAMS_STRATEGIES = ("fail", "tag", "truncate")

_INVALID_KEY_CHARS = re.compile(r"[^\w\-./ :]")


def parameter_inputs(inputs: Iterable[str]) -> list[str]:
    """The dataset names among a node's inputs that are Kedro parameters."""
    return [name for name in inputs if name == "parameters" or name.startswith("params:")]


def param_prefix(dataset_name: str) -> str:
    """The MLflow key prefix for a parameter input: ``params:model`` -> ``model``; ``parameters`` -> ``""``."""
    return "" if dataset_name == "parameters" else dataset_name[len("params:") :]


def sanitise_key(key: str) -> str:
    """Make ``key`` a valid MLflow parameter or tag name.

    Characters MLflow refuses become ``_``; empty, ``.`` and ``..`` path segments become
    ``_`` (MLflow refuses names that normalise to another path); the result is cut to
    MLflow's 250-character key limit.
    """
    cleaned = _INVALID_KEY_CHARS.sub("_", str(key))[:MAX_KEY_LENGTH]
    segments = ["_" if seg in ("", ".", "..") else seg for seg in cleaned.split("/")]
    cleaned = "/".join(segments)
    if cleaned.startswith(".."):
        cleaned = "_" + cleaned[1:]
    if posixpath.normpath(cleaned) != cleaned:  # anything else path-like: no separators at all
        cleaned = cleaned.replace("/", "_")
    return cleaned[:MAX_KEY_LENGTH]


def flatten(
    value: Mapping[str, Any], *, prefix: str = "", sep: str = ".", recursive: bool = True
) -> Iterator[tuple[str, Any]]:
    """Yield ``(key, leaf)`` pairs of a nested mapping, keys joined with ``sep``.

    With ``recursive=False`` only the mapping's own keys are expanded: nested mappings stay
    values (logged as their string form).
    """
    for k, v in value.items():
        key = f"{prefix}{sep}{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v and recursive:
            yield from flatten(v, prefix=key, sep=sep, recursive=recursive)
        else:
            yield key, v


def to_mlflow_params(
    named_values: Mapping[str, Any],
    *,
    flatten_dicts: bool = True,
    recursive: bool = True,
    sep: str = ".",
) -> dict[str, Any]:
    """Turn ``{kedro_input_name: value}`` into ``{mlflow_key: value}``.

    ``params:model`` with ``{"C": 1}`` becomes ``model.C`` when flattening; the whole
    ``parameters`` input contributes its top-level keys without a prefix.
    """
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}

    def put(key: str, leaf: Any) -> None:
        clean = sanitise_key(key)
        if clean in origin and origin[clean] != key:
            raise ParameterError(
                f"Parameters '{origin[clean]}' and '{key}' both become the MLflow parameter '{clean}' "
                f"(MLflow refuses some characters; they are replaced with '_'). Rename one of them.",
                key=key,
            )
        origin[clean] = key
        out[clean] = leaf

    for name, value in named_values.items():
        prefix = param_prefix(name)
        if isinstance(value, Mapping) and (flatten_dicts or not prefix):
            if not value and prefix:  # an empty dict is a value too
                put(prefix, "{}")
                continue
            pairs: Iterable[tuple[str, Any]]
            if flatten_dicts:
                pairs = flatten(value, prefix=prefix, sep=sep, recursive=recursive)
            else:  # `parameters` without flattening: one param per top-level key
                pairs = ((str(k), v) for k, v in value.items())
            for key, leaf in pairs:
                put(key, leaf)
        else:
            put(prefix, value)
    return out


def split_long_values(
    params: Mapping[str, Any], strategy: str, *, config_key: str = "tracking.params.long_params_strategy"
) -> tuple[dict[str, str], dict[str, str]]:
    """Stringify values and apply the long-value strategy.

    Returns:
        ``(params, tags)``: what to log as parameters, and (strategy ``tag``) what goes to tags.

    Raises:
        ParameterError: strategy ``fail`` and a value over MLflow's 6000-character limit.
    """
    as_params: dict[str, str] = {}
    as_tags: dict[str, str] = {}
    for key, raw in params.items():
        value = redact_uri(str(raw))  # a URI with a password in a parameter is logged as user:***@
        if len(value) <= MAX_PARAM_VALUE_LENGTH:
            as_params[key] = value
        elif strategy == "truncate":
            as_params[key] = value[:MAX_PARAM_VALUE_LENGTH]
        elif strategy == "tag":
            as_tags[key] = value[:MAX_TAG_VALUE_LENGTH]
        else:
            raise ParameterError(
                f"Parameter '{key}' is {len(value)} characters long, over MLflow's limit of "
                f"{MAX_PARAM_VALUE_LENGTH}. Shorten it, or set {config_key} to 'tag' (log it "
                f"as a tag) or 'truncate' (cut it to {MAX_PARAM_VALUE_LENGTH} characters) in mlflow.yml."
            )
    return as_params, as_tags
