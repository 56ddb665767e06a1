"""Walking a Kedro catalog the way the plugin does: which entries are parameters, which are datasets.

The datasets (``io``), the recorder (``recording``) and the pipeline models (``pipeline``) all look
catalog entries up by name; they share this one walk, which leaves out parameters and the entries the
catalog cannot build (the run reports those itself, with Kedro's message, when a node needs them).
No MLflow import.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from ..params import is_parameter

__all__ = ["Catalog", "catalog_datasets", "is_parameter"]


class Catalog(Protocol):
    """What the walk needs of a Kedro catalog: ``get(name)``, None for an unknown name."""

    def get(self, key: str, /) -> Any:
        """The dataset of entry ``key`` (built on first use, or matched by a dataset factory)."""


def catalog_datasets(catalog: Catalog, names: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """``(name, dataset)`` of each entry among ``names`` that is a dataset of ``catalog``, in order.

    Parameters (``params:...``, ``parameters``) are left out; so are names the catalog does not know
    and entries it cannot build. The lookup is the one Kedro's runner makes anyway.
    """
    for name in names:
        if is_parameter(name):
            continue
        try:
            dataset = catalog.get(name)
        except Exception:  # an entry that fails to build fails the run later, with Kedro's message
            continue
        if dataset is not None:
            yield name, dataset
