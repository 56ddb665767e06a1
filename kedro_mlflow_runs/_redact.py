"""Keeping passwords out of everything we print, log, raise or send."""

from __future__ import annotations

import re

__all__ = ["redact_uri", "safe_cause"]

_USERINFO_PASSWORD = re.compile(r"([A-Za-z][\w+.-]*://[^:/@\s]*:)[^@\s/]*@")


def redact_uri(text: str | None) -> str:
    """Replace the password of every URI in ``text`` (``scheme://user:pass@host``) with ``***``.

    Works on a bare URI and on a message that contains URIs.
    """
    if not text:
        return str(text)
    return _USERINFO_PASSWORD.sub(r"\1***@", text)


def safe_cause(exc: BaseException) -> BaseException | None:
    """``exc`` when it may be chained to an error we raise; None when its text (or that of an
    exception it chains) holds a password, so that ``raise ... from safe_cause(exc)`` never prints one."""
    seen: BaseException | None = exc
    depth = 0
    while seen is not None and depth < 20:
        text = f"{seen!s} {seen!r}"
        if redact_uri(text) != text:
            return None
        seen = seen.__cause__ or seen.__context__
        depth += 1
    return exc
