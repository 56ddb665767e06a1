"""Kedro-Viz experiment tracking's catalog entries and session store, and what each becomes here.

Kedro-Viz 11 removed its experiment tracking and kedro-datasets 7 removed ``tracking.MetricsDataset``
and ``tracking.JSONDataset``. What Viz showed of a run, and where it goes in MLflow:

* ``tracking.MetricsDataset`` (a versioned JSON of ``{name: number}``) becomes
  :class:`~kedro_mlflow_runs.io.metrics.MlflowMetricsDataset` with ``prefix: <entry>``: each metric is
  logged as ``<entry>.<name>``, the name :mod:`.import_history` gives the metrics of the runs it imports;
* ``tracking.JSONDataset`` becomes an ``MlflowArtifactDataset`` wrapping ``json.JSONDataset`` on the
  same versioned file: the file is logged at the root of the run's artifacts;
* a *versioned* plot dataset (``plotly.JSONDataset``, ``plotly.PlotlyDataset``,
  ``matplotlib.MatplotlibWriter``) is wrapped the same way (a plot that is not versioned never showed
  in Viz's experiment tracking, and is left alone);
* ``settings.py`` loses Viz's ``SQLiteStore`` import with ``SESSION_STORE_CLASS`` / ``SESSION_STORE_ARGS``.

The spellings are those of kedro-datasets (``tracking.MetricsDataset``, ``kedro_datasets.tracking.
MetricsDataset``, full module paths) and of Kedro 0.18's ``kedro.extras.datasets`` (``...DataSet``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from ._catalog_edit import CatalogEntry, CatalogRule, RuleSet
from ._python_edit import SettingsRule

__all__ = ["KEDRO_VIZ", "KEDRO_VIZ_SETTINGS", "PLOT_TYPES", "viz_type"]

METRICS: Final = "tracking.MetricsDataset"
JSON: Final = "tracking.JSONDataset"
#: The plot datasets Kedro-Viz showed in its experiment tracking (when versioned).
PLOT_TYPES: Final = ("plotly.JSONDataset", "plotly.PlotlyDataset", "matplotlib.MatplotlibWriter")
_FAMILIES: Final = ("tracking", "plotly", "matplotlib")
_ARTIFACT: Final = "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset"
#: Plot types kedro-datasets renamed since Kedro-Viz's experiment tracking (the old name is gone).
_RENAMED: Final = MappingProxyType({"matplotlib.MatplotlibWriter": "matplotlib.MatplotlibDataset"})
#: Arguments of the tracking datasets that only said where and how the local file was written.
_FILE_ARGS: Final = ("filepath", "versioned", "save_args", "load_args", "fs_args", "credentials", "version")


def viz_type(type_name: str) -> str | None:
    """``tracking.MetricsDataset`` for every spelling of it (and of the other types of this module)."""
    parts = type_name.split(".")
    if len(parts) < 2:
        return None
    family = next((p for p in parts[:-1] if p in _FAMILIES), None)
    if family is None or parts[0] not in ("kedro_datasets", "kedro", family):
        return None
    found = f"{family}.{parts[-1].replace('DataSet', 'Dataset')}"
    return found if found in (METRICS, JSON, *PLOT_TYPES) else None


def _versioned(config: Mapping[str, Any]) -> bool:
    return bool(config.get("versioned"))


def _metrics(entry: CatalogEntry) -> None:
    for arg in _FILE_ARGS:
        if arg in entry.config:
            entry.remove((arg,), "the metrics are logged to the MLflow run, not to a local file")
    if not entry.is_pattern and "prefix" not in entry.config:
        entry.set(("prefix",), entry.name, "Kedro-Viz showed them under the entry name")


def _wrapped(new_inner_type: str | None, always_versioned: bool = False) -> Any:
    """Wrap the entry's file dataset in ``MlflowArtifactDataset`` (its type: ``new_inner_type``, else the
    entry's own type as written). ``always_versioned``: the old type was versioned without saying so
    (``tracking.JSONDataset``): the wrapped dataset gets ``versioned: true``, or the files already written
    (``<filepath>/<version>/<file>``) would sit where the dataset now writes one file."""

    def edit(entry: CatalogEntry) -> None:
        inner = new_inner_type or viz_type(str(entry.config.get("type"))) or str(entry.config.get("type"))
        inner = _RENAMED.get(inner, inner)
        moved = tuple(arg for arg in entry.config if arg not in ("type", "metadata"))  # `metadata` is Kedro's
        values: dict[str, Any] = {"type": inner}
        if always_versioned and "versioned" not in entry.config:
            values["versioned"] = True
        entry.wrap("dataset", values, moved, "the file dataset it wraps, logged to the run")

    return edit


KEDRO_VIZ: Final = RuleSet(
    name="Kedro-Viz experiment tracking",
    key_of=viz_type,
    rules=MappingProxyType({
        METRICS: CatalogRule("kedro_mlflow_runs.io.metrics.MlflowMetricsDataset", _metrics),
        JSON: CatalogRule(_ARTIFACT, _wrapped("json.JSONDataset", always_versioned=True)),
        **{plot: CatalogRule(_ARTIFACT, _wrapped(None), when=_versioned) for plot in PLOT_TYPES},
    }),
    hint="Run `kedro mlflow import-history` before `migrate --write` to keep the runs Kedro-Viz showed.",
)

KEDRO_VIZ_SETTINGS: Final = SettingsRule(
    modules=("kedro_viz.integrations.kedro.sqlite_store",),
    assignments=MappingProxyType({"SESSION_STORE_CLASS": ("SESSION_STORE_ARGS",)}),
    why="Kedro-Viz's session store: `kedro mlflow import-history` turns what it holds into MLflow runs",
)
