"""Tracking and registry URIs: the default store, local forms made absolute, credentials taken out."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from .._redact import MLFLOW_AUTH_ENV_VAR, has_token_only_userinfo, redact_uri, split_credentials

__all__ = ["clashing_credentials", "default_tracking_uri", "resolve_tracking_uri", "split_uri"]

logger = logging.getLogger(__name__)

_SCHEMELESS_URIS: Final = ("databricks", "databricks-uc", "uc")


def default_tracking_uri(project_path: Path) -> str:
    """``sqlite:///<project root>/mlflow.db``: absolute, whatever the working directory."""
    return f"sqlite:///{(Path(project_path) / 'mlflow.db').resolve().as_posix()}"


def resolve_tracking_uri(uri: str, project_path: Path) -> str:
    """Make a local store URI absolute against the project root; leave remote URIs alone.

    ``sqlite:///mlflow.db`` -> ``sqlite:////<project>/mlflow.db``; ``mlruns`` ->
    ``file:///<project>/mlruns``; ``http://...``, ``postgresql://...`` unchanged.
    """
    project_path = Path(project_path)
    if uri in _SCHEMELESS_URIS:
        return uri
    if uri.startswith("sqlite:///"):
        db = uri[len("sqlite:///") :]
        db_path, sep, query = db.partition("?")
        if db_path and db_path != ":memory:" and not db_path.startswith("/"):
            db_path = (project_path / db_path).resolve().as_posix()
            return f"sqlite:///{db_path}{sep}{query}"
        return uri
    scheme = urlsplit(uri).scheme
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):
        return (project_path / uri).resolve().as_uri()
    if scheme == "file" and not uri.startswith("file:/"):
        return (project_path / uri[len("file:") :]).resolve().as_uri()
    return uri


def split_uri(uri: str, key: str, env: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """:func:`split_credentials`, saying when a userinfo was dropped because MLflow sends nothing for
    it, and leaving a request-auth provider the environment names (``MLFLOW_TRACKING_AUTH``) in
    charge: MLflow hands it to ``requests``, which then ignores the URI's userinfo."""
    if has_token_only_userinfo(uri):
        logger.warning(
            "%s (%s) has a user or token but no ':' before '@': MLflow's HTTP client sends no credentials "
            "for it, so it is left out of the URI and nothing else changes. To authenticate, write "
            "http(s)://<user>:<password>@<host> (or <token>:@ for basic auth with an empty password), or set "
            "MLFLOW_TRACKING_TOKEN (a bearer token) through server.credentials.", key, redact_uri(uri))
    clean, credentials = split_credentials(uri)
    if env.get(MLFLOW_AUTH_ENV_VAR) and MLFLOW_AUTH_ENV_VAR in credentials:
        credentials = {}
    return clean, credentials


def clashing_credentials(tracking: Mapping[str, str], registry: Mapping[str, str]) -> set[str]:
    """The variables the tracking and registry URIs' credentials would set differently."""
    names = {k for k, v in registry.items() if tracking.get(k, v) != v}
    basic = "MLFLOW_TRACKING_USERNAME"
    auth = MLFLOW_AUTH_ENV_VAR
    if (basic in tracking and auth in registry) or (auth in tracking and basic in registry):
        names |= {basic, MLFLOW_AUTH_ENV_VAR}  # the auth provider's basic auth replaces MLflow's own
    return names
