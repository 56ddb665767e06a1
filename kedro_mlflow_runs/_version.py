"""The version of kedro-mlflow-runs, and where its documentation lives (a leaf: importing it imports
nothing else). Messages and the ``kedro mlflow init`` template cite the documentation's pages by
address: someone who installed the wheel has no ``docs/`` folder to open."""

from __future__ import annotations

from typing import Final

__all__ = ["DOCS_URL", "__version__", "docs_page"]

__version__ = "0.1.0"

#: The documentation site, built from ``docs/`` (pyproject.toml's ``Documentation`` address).
DOCS_URL: Final = "https://kedro-mlflow-runs.readthedocs.io/en/latest/"


def docs_page(page: str, anchor: str = "") -> str:
    """The address of ``docs/<page>.md`` on the documentation site (MkDocs' directory URLs)."""
    return f"{DOCS_URL}{page}/" + (f"#{anchor}" if anchor else "")
