"""What the benchmark scripts share: progress lines, the clean environment, Markdown tables.

Standard library only; importing this module does nothing.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["clean_env", "med", "say", "spread", "table"]


def say(text: str) -> None:
    """Progress on stderr, so that stdout holds only the tables."""
    print(text, file=sys.stderr, flush=True)


def clean_env(**extra: str) -> dict[str, str]:
    """The parent environment without MLflow or Kedro settings that would change a run."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "KEDRO_", "KMR_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(KEDRO_DISABLE_TELEMETRY="1", DO_NOT_TRACK="1", MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
    env.update(extra)
    return env


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(r[i]) for r in cells[1:]) and len(cells) > 1 for i in range(len(headers))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(cells[0], widths)) + " |",
             "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2)) for w, num in zip(widths, numeric)) + "|"]
    for row in cells[1:]:
        lines.append("| " + " | ".join(c.rjust(w) if num else c.ljust(w)
                                       for c, w, num in zip(row, widths, numeric)) + " |")
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d.,]+( ?(s|ms|x))?|n/a|-", text))


def spread(values: Sequence[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"
