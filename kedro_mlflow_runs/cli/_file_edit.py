"""One file's planned rewrite for ``kedro mlflow migrate``: text edits at positions, and what they say."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["FileEdit"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class FileEdit:
    """One file's rewrite: text edits ``(start, end, new text)``, a line per change, the problems."""

    text: str
    label: str
    edits: list[tuple[int, int, str]] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def eol(self) -> str:
        return "\r\n" if "\r\n" in self.text else "\n"

    def line_of(self, index: int) -> int:
        """The line number (from 1) of the character at ``index``."""
        return len(_LINE_BREAK.findall(self.text, 0, index)) + 1

    def after_line(self, line: int) -> int:
        """The index just after line ``line`` (from 0) and its line break."""
        found = 0
        for _ in range(line + 1):
            at = _LINE_BREAK.search(self.text, found)
            if at is None:
                return len(self.text)
            found = at.end()
        return found

    def change(self, index: int, what: str) -> None:
        self.changes.append(f"{self.label}:{self.line_of(index)}: {what}")

    def applied(self) -> str:
        """The text with every edit applied; overlapping edits raise ValueError."""
        out, end = self.text, len(self.text) + 1
        for start, stop, new in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            if stop > end:
                raise ValueError("overlapping edits")
            out, end = out[:start] + new + out[stop:], start
        return out
