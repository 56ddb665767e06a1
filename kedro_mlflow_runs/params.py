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


def is_parameter(name: str) -> bool:
    """Whether ``name`` is a Kedro parameter input (``params:...`` or ``parameters``)."""
    return name == "parameters" or name.startswith("params:")


def parameter_inputs(inputs: Iterable[str]) -> list[str]:
    """The dataset names among a node's inputs that are Kedro parameters."""
    return [name for name in inputs if is_parameter(name)]


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
    start = (prefix,) if prefix else ()
    for path, leaf in _leaves(value, start, recursive):
        yield sep.join(path), leaf


def _leaves(value: Mapping[str, Any], path: tuple[str, ...], recursive: bool) -> Iterator[tuple[tuple[str, ...], Any]]:
    """``(path of keys, leaf)`` of each leaf of a nested mapping."""
    for k, v in value.items():
        key = (*path, str(k))
        if isinstance(v, Mapping) and v and recursive:
            yield from _leaves(v, key, recursive)
        else:
            yield key, v


def _spelling(path: tuple[str, ...]) -> str:
    """How a parameter at ``path`` is written in parameters.yml: ``model: {C: ...}``."""
    return "".join(f"{k}: {{" for k in path[:-1]) + f"{path[-1]}: ..." + "}" * (len(path) - 1)


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

    Raises:
        ParameterError: two different parameters become the same MLflow key (``model: {C: 1}`` and a
            top-level ``model.C``, or keys that differ only in characters MLflow refuses).
    """
    out: dict[str, Any] = {}
    origin: dict[str, tuple[str, ...]] = {}

    def put(path: tuple[str, ...], leaf: Any) -> None:
        key = sep.join(path)
        clean = sanitise_key(key)
        before = origin.get(clean)
        if before is not None and before != path:
            if sep.join(before) != key:
                first, second, why = sep.join(before), key, "MLflow refuses some characters; they are replaced with '_'"
            else:
                first, second, why = _spelling(before), _spelling(path), f"nested keys are joined with '{sep}'"
            raise ParameterError(
                f"Parameters '{first}' and '{second}' both become the MLflow parameter '{clean}' ({why}), "
                f"so one value would be lost. Rename one of them.",
                key=key,
            )
        origin[clean] = path
        out[clean] = leaf

    for name, value in named_values.items():
        prefix = param_prefix(name)
        start = (prefix,) if prefix else ()
        if isinstance(value, Mapping) and (flatten_dicts or not prefix):
            if not value and prefix:  # an empty dict is a value too
                put(start, "{}")
                continue
            if flatten_dicts:
                for path, leaf in _leaves(value, start, recursive):
                    put(path, leaf)
            else:  # `parameters` without flattening: one param per top-level key
                for k, v in value.items():
                    put((str(k),), v)
        else:
            put(start, value)
    return out


def split_long_values(
    params: Mapping[str, Any], strategy: str, *, config_key: str = "tracking.params.long_params_strategy"
) -> tuple[dict[str, str], dict[str, str]]:
    """Stringify values, apply the long-value strategy, then redact what is kept.

    The strategy looks at the length of the value as written (not redacted): ``fail`` refuses a
    value over MLflow's 6000-character limit, ``truncate`` keeps its first 6000 characters and
    ``tag`` its first 8000, as a tag. Only the kept part is redacted (``scheme://user:***@``,
    see ``_redact``), so a megabyte-long value costs no more than a short one; a URI cut inside
    its userinfo or host is hidden from ``://`` on, so a cut password never shows.

    Returns:
        ``(params, tags)``: what to log as parameters, and (strategy ``tag``) what goes to tags.

    Raises:
        ParameterError: strategy ``fail`` and a value over MLflow's 6000-character limit.
    """
    as_params: dict[str, str] = {}
    as_tags: dict[str, str] = {}
    for key, raw in params.items():
        value = str(raw)
        if len(value) <= MAX_PARAM_VALUE_LENGTH or strategy == "truncate":
            as_params[key] = redact_uri(value, limit=MAX_PARAM_VALUE_LENGTH)
        elif strategy == "tag":
            as_tags[key] = redact_uri(value, limit=MAX_TAG_VALUE_LENGTH)
        else:
            raise ParameterError(
                f"Parameter '{key}' is {len(value)} characters long, over MLflow's limit of "
                f"{MAX_PARAM_VALUE_LENGTH}. Shorten it, or set {config_key} to 'tag' (log it "
                f"as a tag) or 'truncate' (cut it to {MAX_PARAM_VALUE_LENGTH} characters) in mlflow.yml.",
                key=key,
            )
    return as_params, as_tags


def check_param_conflicts(run_id: str, new: Mapping[str, str], existing: Mapping[str, str]) -> dict[str, str]:
    """Drop params already logged with the same value; raise on a different value."""
    for key, value in new.items():
        if key in existing and existing[key] != value:
            raise ParameterError(
                f"Parameter '{key}' is already logged in MLflow run '{run_id}' as "
                f"{existing[key][:200]!r}; this Kedro run has {value[:200]!r}. MLflow parameters "
                f"cannot change: give the runs sharing this MLflow run the same parameters, or "
                f"start a new run.",
                run_id=run_id,
                key=key,
            )
    return {k: v for k, v in new.items() if k not in existing}
