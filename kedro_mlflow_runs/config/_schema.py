"""Checking a raw mlflow.yml mapping against the schema, and naming the file a key came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = ["MISSING", "Locator", "OptionalOf", "describe", "validate"]

MISSING = object()


@dataclass(frozen=True)
class OptionalOf:
    """Schema default of a key that has no value unless set, and must be of ``type`` when set."""

    type: type


_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
               dict: "a mapping"}


def describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


class Locator:
    """Names the file a config key came from, for error messages."""

    def __init__(self, files: Mapping[str, Mapping[str, Any]] | None, fallback: str):
        self._files = files or {}
        self._fallback = fallback

    def __call__(self, key: str) -> str:
        found = [f for f, content in self._files.items() if _has_key(content, key)]
        if found:
            return " and ".join(found)
        # the key may be misplaced under a parent: name the file holding the parent
        parent = key.rpartition(".")[0]
        while parent:
            found = [f for f, content in self._files.items() if _has_key(content, parent)]
            if found:
                return " and ".join(found)
            parent = parent.rpartition(".")[0]
        return self._fallback


def _has_key(content: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(content, Mapping) or part not in content:
            return False
        content = content[part]
    return True


def validate(raw: Any, schema: Mapping[str, Any], path: str, where: Locator) -> dict[str, Any]:
    """Check ``raw`` against ``schema``; return it merged over the defaults.

    Raises:
        ConfigError: an unknown key or a wrong type, naming the key (also as ``.key``) and the file.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"'{path or 'mlflow.yml'}' in {where(path)} must be a mapping, got {describe(raw)}.",
            key=path or None,
        )
    unknown = sorted(set(map(str, raw)) - set(schema))
    if unknown:
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ConfigError(
            f"Unknown key '{key}' in {where(key)}. Known keys here: "
            f"{', '.join(sorted(schema))}. Fix the spelling or remove it.",
            key=key,
        )
    out: dict[str, Any] = {}
    for name, default in schema.items():
        key = f"{path}.{name}" if path else name
        value = raw.get(name, MISSING)
        if isinstance(default, dict) and default and name != "tags":
            out[name] = validate(None if value is MISSING else value, default, key, where)
            continue
        if value is MISSING or value is None:
            out[name] = None if isinstance(default, OptionalOf) else default
            continue
        expected = default.type if isinstance(default, OptionalOf) else str if default is None else type(default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # a number key accepts integers
        ok = isinstance(value, expected) and not (expected in (int, float) and isinstance(value, bool))
        if not ok:
            raise ConfigError(
                f"'{key}' in {where(key)} must be {_TYPE_NAMES[expected]}, got {describe(value)}.", key=key
            )
        out[name] = value
    return out
