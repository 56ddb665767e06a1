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

__all__ = ["Catalog", "catalog_datasets", "is_parameter", "parameter_values"]


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


def parameter_values(catalog: Any, names: Iterable[str]) -> dict[str, Any]:
    """``{name: value}`` of the parameters ``names``, as ``catalog.load`` gives them (validated where
    the catalog validates: Kedro's typed parameters) but without its "Loading data from ..." log line:
    a rich log line costs a millisecond or two, and a run of 5,000 nodes reading a parameter each would
    pay seconds for them before its first node."""
    validating = getattr(catalog, "_is_validation_enabled", None)
    validate = getattr(catalog, "_validate", None)
    if not hasattr(catalog, "get") or (callable(validating) and not callable(validate)):
        return {name: catalog.load(name) for name in names}  # a catalog we do not know: its own load
    values: dict[str, Any] = {}
    for name in names:
        dataset = catalog.get(name)
        if dataset is None:
            values[name] = catalog.load(name)  # Kedro's own error
            continue
        data = dataset.load()
        if callable(validating) and validating():
            data = validate(name, data, "load")  # type: ignore[misc]
        values[name] = data
    return values
