"""A status line on the terminal while a transfer lasts (an artifact or a model logged, an artifact
downloaded): shown only once it has taken ``DELAY_S`` seconds, and never when standard error is not a
terminal (a CI log, a pipe, a file), where it would only add noise."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TextIO

__all__ = ["DELAY_S", "describe_size", "transfer_status"]

#: A transfer shorter than this shows nothing.
DELAY_S: Final = 1.0
_REFRESH_S: Final = 0.25


def describe_size(local: str) -> str:
    """`` (12.3 MB)`` for a file or a folder's files; empty when it cannot be read."""
    try:
        path = Path(local)
        size = float(path.stat().st_size if path.is_file() else
                     sum(p.stat().st_size for p in path.rglob("*") if p.is_file()))
    except OSError:
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f" ({size:.0f} {unit})" if unit == "B" else f" ({size:.1f} {unit})"
        size /= 1000
    return ""  # pragma: no cover


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


@contextmanager
def transfer_status(what: str | Callable[[], str], stream: TextIO | None = None) -> Iterator[None]:
    """Show ``what`` (or what it returns, asked only on a terminal) with a spinner and the seconds so
    far on ``stream`` (standard error) while the body runs, from ``DELAY_S`` seconds on; nothing at
    all when ``stream`` is not a terminal."""
    out = stream if stream is not None else sys.stderr
    if not _is_terminal(out):
        yield
        return
    if callable(what):
        what = what()
    done = threading.Event()
    shown = threading.Thread(target=_show, args=(what, out, done), daemon=True, name="kedro-mlflow-runs-progress")
    shown.start()
    try:
        yield
    finally:
        done.set()
        shown.join(timeout=2)


def _show(what: str, out: TextIO, done: threading.Event) -> None:
    start = time.monotonic()
    if done.wait(DELAY_S):
        return
    from rich.console import Console  # (Kedro's own dependency) only for a transfer that lasts

    console = Console(file=out)
    try:
        with console.status(f"{what}...", spinner="dots") as status:
            while not done.wait(_REFRESH_S):
                status.update(f"{what}... {time.monotonic() - start:.0f} s")
        console.print(f"{what}: {time.monotonic() - start:.1f} s", highlight=False)
    except Exception:  # a display problem never fails a transfer
        return
