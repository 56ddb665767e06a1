"""Keeping passwords and tokens out of everything we print, log, raise, send or record.

What :func:`redact_uri` replaces with ``***`` (docs/security.md has the same table):

* the password of every URI's userinfo: ``scheme://user:password@host`` -> ``scheme://user:***@host``
  (a password holding ``@`` included);
* the whole userinfo of an ``http(s)`` URI that has no password: ``https://TOKEN@host`` ->
  ``https://***@host`` (a token, as GitHub and some gateways take it);
* the value of every query parameter whose name, compared without case, is one of
  :data:`SECRET_QUERY_NAMES` or ends with one of :data:`SECRET_QUERY_SUFFIXES`
  (``?X-Amz-Signature=...``, ``&access_token=...``, ``&sig=...``).

Every function here takes time linear in its input: the text is scanned from ``://``, ``?`` and
``&`` marks forward, with no pattern that can backtrack over what it already read. With ``limit``,
:func:`redact_uri` reads only the first ``limit`` characters, and a URI cut in its userinfo or host
at the end of what is kept has that part replaced too (the cut may fall inside a password).
"""

from __future__ import annotations

import re
from types import MappingProxyType

__all__ = [
    "MLFLOW_AUTH_ENV_VAR",
    "SECRET_QUERY_NAMES",
    "SECRET_QUERY_SUFFIXES",
    "USERINFO_AUTH_ENV_VAR",
    "USERINFO_AUTH_NAME",
    "has_token_only_userinfo",
    "redact_uri",
    "safe_cause",
    "split_credentials",
]

#: Query parameter names whose value is a secret (compared in lower case).
SECRET_QUERY_NAMES = frozenset({
    "auth", "authorization", "awsaccesskeyid", "apikey", "code", "credential", "credentials", "key",
    "passwd", "password", "pwd", "secret", "sig", "signature", "token",
})
#: Query parameter names ending with one of these hold a secret too (``access_token``,
#: ``client_secret``, ``X-Amz-Signature``, ``X-Amz-Credential``, ``X-Amz-Security-Token``,
#: ``X-Goog-Signature``, ``api_key``, ``x-api-key``, ``db_password``).
SECRET_QUERY_SUFFIXES = ("token", "secret", "password", "passwd", "signature", "credential", "_key", "-key")

_MASK = "***"
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-_")
#: where an authority ends, for finding a password (which may hold ``?``, ``#`` or ``@``)
_AUTHORITY_END = re.compile(r"[/\s]")
#: a query parameter name and its ``=``, after ``?`` or ``&``
_QUERY_NAME = re.compile(r"[?&]([^=&?#\s]*)=")
#: where a secret query value ends
_QUERY_VALUE_END = re.compile(r"[&\s]")
#: characters a token-only userinfo cannot hold (so ``http://host?mail=a@b`` keeps its host)
_NOT_USERINFO = re.compile(r"[?#\[\]]")


def redact_uri(text: str | None, *, limit: int | None = None) -> str:
    """``text`` with the secrets of every URI in it replaced by ``***`` (see the module docstring).

    Works on a bare URI and on a message that contains URIs. With ``limit``, the result is at most
    ``limit`` characters: the first ``limit`` characters of ``text``, redacted, and hidden from the
    last ``://`` on when the cut falls inside that URI's userinfo or host.
    """
    if not text:
        return str(text)
    text = str(text)
    if limit is None:
        return _redact_query(_redact_userinfo(text))
    cut = len(text) > limit
    redacted = _redact_query(_redact_userinfo(text[:limit]))
    if len(redacted) > limit:  # a short password became ***
        redacted, cut = redacted[:limit], True
    if cut:
        redacted = _hide_cut_authority(redacted)[:limit]
    return redacted


def _redact_userinfo(text: str) -> str:
    pieces: list[str] = []
    done = 0
    sep = text.find("://")
    while sep != -1:
        start = sep + 3
        end_match = _AUTHORITY_END.search(text, start)
        end = end_match.start() if end_match else len(text)
        at = text.rfind("@", start, end)
        if at != -1 and sep > 0 and text[sep - 1] in _SCHEME_CHARS:
            user_end = text.find(":", start, at)
            if user_end != -1:  # user:password -> user:***
                pieces += [text[done : user_end + 1], _MASK]
                done = at
            elif at > start and _is_http(text, sep) and not _NOT_USERINFO.search(text, start, at):
                pieces += [text[done:start], _MASK]  # a token-only http(s) userinfo
                done = at
        sep = text.find("://", start)
    pieces.append(text[done:])
    return "".join(pieces)


def _is_http(text: str, sep: int) -> bool:
    """Whether the scheme ending at ``sep`` is http or https (``git+https`` included)."""
    begin = sep
    while begin > 0 and text[begin - 1] in _SCHEME_CHARS:
        begin -= 1
    scheme = text[begin:sep].lower()
    return re.split(r"[+.\-_]", scheme)[-1] in ("http", "https")


def _redact_query(text: str) -> str:
    pieces: list[str] = []
    done = pos = 0
    while True:
        found = _QUERY_NAME.search(text, pos)
        if found is None:
            break
        pos = found.end()
        if _is_secret_name(found.group(1)):
            value_end = _QUERY_VALUE_END.search(text, pos)
            end = value_end.start() if value_end else len(text)
            pieces += [text[done:pos], _MASK]
            done = pos = end
    pieces.append(text[done:])
    return "".join(pieces)


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    if "%" in lowered:
        from urllib.parse import unquote

        lowered = unquote(lowered)
    return lowered in SECRET_QUERY_NAMES or lowered.endswith(SECRET_QUERY_SUFFIXES)


def _hide_cut_authority(text: str) -> str:
    """``text`` cut at its end: when the cut falls inside a URI's userinfo or host, hide all of it
    (a password cut before its ``@`` looks like a host)."""
    sep = text.rfind("://")
    if sep == -1 or _AUTHORITY_END.search(text, sep + 3):
        return text
    return text[: sep + 3] + _MASK


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
_USER_ENV = MappingProxyType({"http": "MLFLOW_TRACKING_USERNAME", "https": "MLFLOW_TRACKING_USERNAME"})
_PASSWORD_ENV = MappingProxyType({"http": "MLFLOW_TRACKING_PASSWORD", "https": "MLFLOW_TRACKING_PASSWORD",
                                  "postgresql": "PGPASSWORD"})
#: postgresql drivers built on libpq, which reads PGPASSWORD (pg8000 and asyncpg do not)
_LIBPQ_DRIVERS = ("", "psycopg", "psycopg2", "psycopg2cffi")
#: MLflow's variable naming the request-auth provider to use, and the name of ours
#: (``kedro_mlflow_runs.tracking.auth``), which sends the basic auth of an http(s) userinfo with one
#: empty part (``http://TOKEN:@host``) that MLFLOW_TRACKING_USERNAME/PASSWORD cannot express.
MLFLOW_AUTH_ENV_VAR = "MLFLOW_TRACKING_AUTH"
USERINFO_AUTH_NAME = "kedro-mlflow-runs-userinfo"
#: the userinfo (``user:password``, as written in the URI) our request-auth provider sends
USERINFO_AUTH_ENV_VAR = "KEDRO_MLFLOW_RUNS_TRACKING_USERINFO"


def split_credentials(uri: str) -> tuple[str, dict[str, str]]:
    """Take the userinfo out of ``uri`` so that nothing prints or publishes it, keeping the
    authentication MLflow's client would send for it: ``(uri without it, {variable: value})``.

    MLflow sends ``requests`` the URI as it is, and ``requests`` turns a userinfo with a ``:`` into
    basic auth (``user:password``; one part may be empty) and ignores one without (``TOKEN@``).
    So ``http(s)://user:pw@host`` becomes ``http(s)://host`` with ``MLFLOW_TRACKING_USERNAME`` /
    ``MLFLOW_TRACKING_PASSWORD``; ``http(s)://TOKEN:@host`` (or ``:pw@``) becomes
    ``http(s)://host`` with ``MLFLOW_TRACKING_AUTH`` naming our request-auth provider and
    ``KEDRO_MLFLOW_RUNS_TRACKING_USERINFO`` holding the userinfo; ``http(s)://TOKEN@host`` (nothing
    sent) becomes ``http(s)://host`` alone. ``postgresql[+driver]://user:pw@host/db`` keeps the user
    and moves the password to ``PGPASSWORD`` (libpq's own variable). Other schemes are unchanged.
    """
    from urllib.parse import unquote, urlsplit, urlunsplit

    parts = urlsplit(uri)
    scheme, _, driver = parts.scheme.lower().partition("+")
    if scheme not in _PASSWORD_ENV or "@" not in parts.netloc:
        return uri, {}
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, has_password, password = userinfo.partition(":")
    env: dict[str, str] = {}
    if scheme in _USER_ENV:
        if user and password:
            env = {_USER_ENV[scheme]: unquote(user), _PASSWORD_ENV[scheme]: unquote(password)}
        elif has_password and (user or password):  # requests sends basic auth with the empty part
            env = {MLFLOW_AUTH_ENV_VAR: USERINFO_AUTH_NAME, USERINFO_AUTH_ENV_VAR: userinfo}
        return urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment)), env
    if not has_password or driver not in _LIBPQ_DRIVERS:
        # no password, or a driver that does not read PGPASSWORD: leave the URI as it is (it is
        # still redacted wherever we print it)
        return uri, {}
    env[_PASSWORD_ENV[scheme]] = unquote(password)
    netloc = f"{user}@{hostport}" if user else hostport
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), env


def has_token_only_userinfo(uri: str) -> bool:
    """Whether ``uri`` is an http(s) URI whose userinfo has no ``:`` (MLflow's client sends nothing for it)."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme.lower().partition("+")[0] not in _USER_ENV or "@" not in parts.netloc:
        return False
    return ":" not in parts.netloc.rpartition("@")[0]
