"""Checking a raw mlflow.yml mapping against :data:`~.schema.KEYS`, and naming the file a key came from.

Every problem is a :class:`ConfigError` naming the key (also as ``.key``) and the file holding it,
saying what is wrong and what to do; an unknown key gets the closest known one as a suggestion.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from ..errors import ConfigError
from .schema import KEYS, Key

__all__ = ["Locator", "describe", "validate"]

#: Each section (``tracking.run``) and the names it may hold (``id``, ``name``, ``attached``, ...).
_SECTIONS: Final[Mapping[str, frozenset[str]]] = MappingProxyType({
    section: frozenset(
        key.path[len(section) + 1 if section else 0:].partition(".")[0]
        for key in KEYS if section == "" or key.path.startswith(f"{section}.")
    )
    for section in {"", *(key.path.rsplit(".", n)[0] for key in KEYS for n in range(1, key.path.count(".") + 1))}
})


def describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


class Locator:
    """Names the file a config key came from (and its line, when known), for error messages."""

    __slots__ = ("_fallback", "_files", "_lines")

    def __init__(self, files: Mapping[str, Mapping[str, Any]] | None, fallback: str,
                 lines: Mapping[str, Mapping[str, int]] | None = None):
        self._files = files or {}
        self._fallback = fallback
        self._lines = lines or {}

    def __call__(self, key: str) -> str:
        while True:  # the key, else (misplaced under a parent) the file holding its nearest parent
            found = [f for f, content in self._files.items() if _has_key(content, key)]
            if len(found) == 1 and key in self._lines.get(found[0], {}):
                return f"{found[0]}, line {self._lines[found[0]][key]}"
            if found:
                return " and ".join(found)
            key = key.rpartition(".")[0]
            if not key:
                return self._fallback


def _has_key(content: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(content, Mapping) or part not in content:
            return False
        content = content[part]
    return True


def validate(raw: Any, where: Locator) -> dict[str, Any]:
    """``{dotted key: value}`` of every key of the schema: ``raw``'s value, else the default.

    Raises:
        ConfigError: an unknown key, a wrong type or a bad value, naming the key and the file.
    """
    _check_sections(raw, "", where)
    values: dict[str, Any] = {}
    for key in KEYS:
        value = _lookup(raw, key.path)
        values[key.path] = key.default if value is None else _checked(key, value, where)
    return values


def _check_sections(raw: Any, path: str, where: Locator) -> None:
    """Every section is a mapping whose keys the schema knows."""
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        raise ConfigError(f"'{path or 'mlflow.yml'}' in {where(path)} must be a mapping, got {describe(raw)}.",
                          key=path or None)
    known = _SECTIONS[path]
    for name in sorted(map(str, raw)):
        key = f"{path}.{name}" if path else name
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            places = [] if close else _elsewhere(name)
            guess = f"{path}.{close[0]}" if close and path else close[0] if close else \
                f"{places[0]}.{name}" if len(places) == 1 else None
            ending = "Fix the spelling or remove it."
            if places:  # a key put in the wrong section, such as tracking.name
                ending = (f"'{name}' belongs under {' or '.join(repr(p) for p in places)}: move it there (indented "
                          f"under that section) or remove it.")
            raise ConfigError(f"Unknown key '{key}' in {where(key)}.{f' Did you mean {guess!r}?' if guess else ''} "
                              f"Known keys here: {', '.join(sorted(known))}. {ending}", key=key)
        if key in _SECTIONS:
            _check_sections(raw[name], key, where)


def _elsewhere(name: str) -> list[str]:
    """The sections that hold a key (or a section) called ``name``."""
    return sorted(dotted.rpartition(".")[0] for dotted in (*_SECTIONS, *(key.path for key in KEYS))
                  if "." in dotted and dotted.rpartition(".")[2] == name)


def _lookup(raw: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(raw, Mapping):
            return None
        raw = raw.get(part)
    return raw


def _checked(key: Key, value: Any, where: Locator) -> Any:
    """``value`` as the key takes it (a number key takes an integer; ``ui.port`` a numeric string).

    Raises:
        ConfigError: naming the key and the file.
    """
    here = f"'{key.path}' in {where(key.path)}"
    if key.path == "ui.port" and isinstance(value, str):  # kedro-mlflow's template writes "5000"
        if not value.strip().isdigit():
            raise ConfigError(f"{here} must be a port number, got {value!r}.", key=key.path)
        value = int(value)
    kind = key.kind
    if isinstance(value, float) and not math.isfinite(value) and float in kind.types:
        raise ConfigError(f"{here} must be a finite number, got {value!r}.", key=key.path)
    if not _is_a(value, kind.types):
        raise ConfigError(f"{here} must be {kind.name}, got {describe(value)}.", key=key.path)
    if kind.item is not None and not all(_is_a(item, (kind.item,)) and str(item).strip() for item in value):
        raise ConfigError(f"{here} must be {kind.name}, got {value!r}.", key=key.path)
    if key.choices and value not in key.choices:
        raise ConfigError(f"{here} is {value!r}; use one of: {', '.join(key.choices)}.", key=key.path)
    if key.non_empty and not str(value).strip():
        raise ConfigError(f"{here} is empty: it must be a non-empty string; remove it or give a value.",
                          key=key.path)
    _check_range(key, value, here)
    if key.path == "tracking.run.tags":
        for name, tag in value.items():
            if isinstance(tag, (Mapping, list)):
                raise ConfigError(f"'{key.path}.{name}' in {where(key.path)} must be a plain value (string, number, "
                                  f"boolean), got {describe(tag)}.", key=f"{key.path}.{name}")
    return float(value) if int in kind.types and float in kind.types else value


def _is_a(value: Any, types: tuple[type, ...]) -> bool:
    """Whether ``value`` is one of ``types`` (a boolean is not a number, nor a number infinite or NaN)."""
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, types)


def _check_range(key: Key, value: Any, here: str) -> None:
    low, high = key.minimum, key.maximum
    if low is not None and high is not None and not low <= value <= high:
        raise ConfigError(f"{here} must be between {low:g} and {high:g}, got {value!r}.", key=key.path)
    if low is not None and key.exclusive and value <= low:
        raise ConfigError(f"{here} must be above {low:g}, got {value!r}.", key=key.path)
    if low is not None and value < low:
        raise ConfigError(f"{here} must be {low:g} or more, got {value!r}.", key=key.path)
