"""What every command needs: the project it runs in, and its validated mlflow.yml.

Imported when a command runs, never when ``kedro`` starts: it loads Kedro's session machinery.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.utils import find_kedro_project

from ..config import MlflowConfig, credentials_env, load_config
from ..core.registry import REGISTRY
from ..framework.header_provider import install

__all__ = ["project_config", "project_root", "quiet_project_config"]


def project_root() -> Path:
    """The Kedro project containing the working directory (any subdirectory works, as for ``kedro run``)."""
    root = find_kedro_project(Path.cwd())
    if root is None:
        raise click.ClickException(
            f"{Path.cwd()} is not inside a Kedro project (no pyproject.toml with [tool.kedro] here or above). "
            f"Run this command from your project."
        )
    return Path(root)


def project_config(env: str | None, *, talks_to_store: bool = True) -> MlflowConfig:
    """The project's validated mlflow.yml, with its ``server.credentials`` set in this process's environment."""
    metadata = bootstrap_project(project_root())
    # save_on_close=False: a command that only reads the config never adds a session to the project's
    # session store (Kedro-Viz's SQLiteStore writes one row per saved session)
    with KedroSession.create(project_path=metadata.project_path, env=env, save_on_close=False) as session:
        context = session.load_context()  # type: ignore[attr-defined]  # create() is typed as AbstractSession
        config = load_config(context)
        # the credentials, for the life of this short-lived command
        REGISTRY.process.adopt_defaults({**config.server.uri_credentials, **credentials_env(config, context)})
        if talks_to_store and config.server.header_provider is not None:
            install(config.server.header_provider, context)  # for the life of this command
        return config


def quiet_project_config(env: str | None) -> MlflowConfig:
    """:func:`project_config` with the log lines and warnings of loading the project held back
    (Kedro's log handler writes to stdout, where ``--json`` output goes)."""
    logging.disable(logging.WARNING)
    try:
        return project_config(env)
    finally:
        logging.disable(logging.NOTSET)
