"""The ``kedro mlflow init`` template and the key table of ``docs/mlflow_yml.md``, made from the schema.

``python -m kedro_mlflow_runs.config.template`` prints the template; ``--markdown`` prints the key
table (both are pasted into docs/mlflow_yml.md, and a test checks they still match the schema).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Final

from .._version import docs_page
from .schema import KEYS, Key

__all__ = ["render_key_table", "render_template"]

_HEADER: Final = ("# kedro-mlflow-runs configuration: every key, with its default. Every key is optional; "
                  f"delete what you\n# do not need. Reference: {docs_page('mlflow_yml')}\n")
_COMMENT_COLUMN: Final = 30


def _yaml(value: Any) -> str:
    """A value as it is written in the template."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, str) and value and (value[0] in "!&*{}[],#|>@`'\"%" or value in ("null", "true", "false")
                                             or value.replace(".", "").isdigit() or value == "."):
        return json.dumps(value)
    return str(value)


def render_template() -> str:
    """mlflow.yml with every key at its default and a one-line comment each (valid YAML)."""
    lines = [_HEADER]
    opened: list[str] = []
    for key in KEYS:
        parts = key.path.split(".")
        common = 0
        while common < min(len(opened), len(parts) - 1) and opened[common] == parts[common]:
            common += 1
        if common == 0 and opened:
            lines.append("")  # a blank line between top-level sections
        for depth in range(common, len(parts) - 1):
            lines.append(f"{'  ' * depth}{parts[depth]}:")
        opened = parts[:-1]
        entry = f"{'  ' * (len(parts) - 1)}{parts[-1]}: {_yaml(key.default)}"
        lines.append(f"{entry.ljust(_COMMENT_COLUMN)} # {key.comment}")
    return "\n".join(lines) + "\n"


def _type(key: Key) -> str:
    if key.choices:
        return ", ".join(f"`{c}`" for c in key.choices)
    return key.kind.name.removeprefix("a ").removeprefix("an ")


def _default(key: Key) -> str:
    if key.shown_default is not None:
        return key.shown_default
    return "none" if key.default is None else f"`{_yaml(key.default)}`"


def render_key_table() -> str:
    """The Markdown table of every key: key, type, default, meaning."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    rows += [f"| `{key.path}` | {_type(key)} | {_default(key)} | {key.doc} |" for key in KEYS]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # pragma: no cover - a helper for editing the docs
    sys.stdout.write(render_key_table() if "--markdown" in sys.argv else render_template())
