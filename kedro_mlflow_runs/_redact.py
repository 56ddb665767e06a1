"""Keeping passwords out of everything we print, log, raise or send."""

from __future__ import annotations

import re

__all__ = ["redact_uri", "safe_cause", "split_credentials"]

_USERINFO_PASSWORD = re.compile(r"([A-Za-z][\w+.-]*://[^:/@\s]*:)[^\s/]*@")
_QUERY_SECRET = re.compile(r"([?&](?:password|passwd|pwd|token|secret)=)[^&\s]*", re.IGNORECASE)


def redact_uri(text: str | None) -> str:
    """Replace the password of every URI in ``text`` (``scheme://user:pass@host``) with ``***``.

    Works on a bare URI and on a message that contains URIs.
    """
    if not text:
        return str(text)
    return _QUERY_SECRET.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1***@", text))


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


#: Where MLflow (and libpq) read the secrets we take out of a URI's userinfo.
_USER_ENV = {"http": "MLFLOW_TRACKING_USERNAME", "https": "MLFLOW_TRACKING_USERNAME"}
_PASSWORD_ENV = {"http": "MLFLOW_TRACKING_PASSWORD", "https": "MLFLOW_TRACKING_PASSWORD", "postgresql": "PGPASSWORD"}
#: postgresql drivers built on libpq, which reads PGPASSWORD (pg8000 and asyncpg do not)
_LIBPQ_DRIVERS = ("", "psycopg", "psycopg2", "psycopg2cffi")


def split_credentials(uri: str) -> tuple[str, dict[str, str]]:
    """Move the password (and, for http(s), the user) of ``uri`` into the environment variables the
    client reads: ``(uri without them, {variable: value})``.

    ``http(s)://user:pw@host`` becomes ``http(s)://host`` with ``MLFLOW_TRACKING_USERNAME`` /
    ``MLFLOW_TRACKING_PASSWORD``; ``postgresql[+driver]://user:pw@host/db`` keeps the user and moves
    the password to ``PGPASSWORD`` (libpq's own variable). Other schemes are returned unchanged.
    """
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(uri)
    scheme, _, driver = parts.scheme.lower().partition("+")
    if scheme not in _PASSWORD_ENV or "@" not in parts.netloc:
        return uri, {}
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, has_password, password = userinfo.partition(":")
    if not has_password or (scheme in _USER_ENV and not user) or (scheme == "postgresql" and driver not in _LIBPQ_DRIVERS):
        # MLflow sends basic auth only with both parts; other drivers do not read PGPASSWORD:
        # leave the URI as it is (it is still redacted wherever we print it)
        return uri, {}
    env: dict[str, str] = {}
    if has_password:
        env[_PASSWORD_ENV[scheme]] = unquote(password)
    if scheme in _USER_ENV:
        if user:
            env[_USER_ENV[scheme]] = unquote(user)
        netloc = hostport
    else:
        netloc = f"{user}@{hostport}" if user else hostport
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), env
