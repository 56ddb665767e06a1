"""Every use of a private name of a Kedro or kedro-datasets dataset, in one place.

Kedro's datasets keep where their data is in protected attributes and offer no public accessor.
The artifact dataset (``io/artifacts.py``) must know what its wrapped dataset wrote, the recorder
(``recording/lineage.py``) where an input or output lives, and the pipeline models
(``pipeline/planning.py``) when Kedro releases a dataset. What we touch, and why:

* ``_filepath`` and ``_protocol`` (every kedro-datasets file dataset, ``AbstractVersionedDataset``,
  ``SQLQueryDataset`` reading a query file): where the data is, and on which filesystem. The artifact
  dataset repoints a copy's ``_filepath`` at a downloaded file to load it.
* ``_version``, ``resolve_save_version()``, ``_get_versioned_path()``, ``_get_load_path()`` and
  ``_clear_version_cache()`` (``AbstractVersionedDataset``): the folder of the version a versioned
  dataset saves or loads; a repointed copy drops its version; a dataset whose missing data was just
  downloaded into its version folder forgets the versions it listed.
* ``_fs`` (kedro-datasets file datasets): the fsspec filesystem to ask about a remote path (digests).
* ``_describe()`` (``AbstractDataset``): the description of a dataset with no ``_filepath`` (its
  ``filepath`` or ``path``), and of the wrapped dataset in the artifact dataset's own description.
* ``_path``, ``_partition_to_path()`` and ``_invalidate_caches()`` (``PartitionedDataset``,
  ``IncrementalDataset``): the partitions' folder, where one partition is written, a copy
  repointed at downloaded partitions, and a dataset whose folder was just filled from the run.
* ``_connection_str``, ``_load_args`` (``table_name``, ``sql``) and ``_save_args`` (``name``) of the
  SQL datasets (``SQLTableDataset``, ``SQLQueryDataset``): the database and table or query a run read.
* ``_dataset`` (Kedro's ``CachedDataset``; also our own ``MlflowArtifactDataset``) and
  ``_wrapped_dataset`` (a convention of some third-party wrappers, not checked): the wrapped dataset.
* ``_EPHEMERAL`` (``AbstractDataset``, True for ``MemoryDataset`` and ``CachedDataset``): data that
  does not outlive the run.
* ``_release()`` (``AbstractDataset``, called by ``release()``): the pipeline models take an in-memory
  artifact's data just before Kedro releases it.

``tests/test_architecture.py::test_the_kedro_dataset_private_names_we_use_still_exist`` fails loudly
when a future Kedro or kedro-datasets moves any of them (``_get_load_path``, ``_get_save_path`` and
``_filepath`` are also what ``io/local_models.py``, an ``AbstractVersionedDataset`` subclass, uses of
itself). Nothing else in the package may name a private attribute of another Kedro dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

__all__ = ["before_release", "describe", "drop_version", "filepath", "filesystem", "has_filepath", "is_ephemeral",
           "is_partitioned", "load_args", "partition_path", "partitions_path", "point_at_file",
           "point_partitions_at", "protocol", "refresh", "save_args", "sql_connection", "storage_dataset", "verify",
           "versioned_path", "wrapped_dataset"]

#: The attributes a wrapper dataset keeps the wrapped one in, looked through in this order.
_WRAPPER_ATTRIBUTES = ("_dataset", "_wrapped_dataset")


# -- files and versions ---------------------------------------------------------------------

def has_filepath(dataset: Any) -> bool:
    """Whether ``dataset`` is a file dataset (it has a ``_filepath``, possibly None)."""
    return hasattr(dataset, "_filepath")


def filepath(dataset: Any) -> Any | None:
    """The path ``dataset`` reads and writes (without its protocol), or None."""
    return getattr(dataset, "_filepath", None)


def protocol(dataset: Any) -> str | None:
    """The fsspec protocol of ``dataset``'s path (``file``, ``s3``, ...), or None when it has none."""
    found = getattr(dataset, "_protocol", None)
    return None if found is None else str(found)


def filesystem(dataset: Any) -> Any | None:
    """The fsspec filesystem ``dataset`` reads and writes through, or None."""
    return getattr(dataset, "_fs", None)


def describe(dataset: Any) -> dict[str, Any]:
    """The description Kedro prints for ``dataset`` (``_describe()``)."""
    return dict(dataset._describe())


def versioned_path(dataset: Any, *, saving: bool) -> Any | None:
    """The path of the version ``dataset`` saves (``saving``) or loads, None when it is not versioned.

    Raises:
        Exception: Kedro's error when the version cannot be resolved (no version saved yet, a clash).
    """
    if getattr(dataset, "_version", None) is None:
        return None
    if saving:
        return dataset._get_versioned_path(dataset.resolve_save_version())
    return dataset._get_load_path()


def point_at_file(dataset: Any, path: PurePosixPath) -> None:
    """Make ``dataset`` (a copy) read and write ``path``."""
    dataset._filepath = path


def drop_version(dataset: Any) -> None:
    """Make a versioned ``dataset`` (a copy) read its ``_filepath`` itself, unversioned."""
    dataset._version = None
    dataset._clear_version_cache()


def refresh(dataset: Any) -> None:
    """Make ``dataset`` look again at what is on disk: forget the versions (``_clear_version_cache()``)
    or partitions (``_invalidate_caches()``) it listed before files were put there behind its back."""
    if hasattr(dataset, "_clear_version_cache"):
        dataset._clear_version_cache()
    if is_partitioned(dataset):
        dataset._invalidate_caches()


# -- partitions -----------------------------------------------------------------------------

def is_partitioned(dataset: Any) -> bool:
    """A kedro-datasets PartitionedDataset (or IncrementalDataset), recognised without importing it."""
    return hasattr(dataset, "_partition_to_path") and hasattr(dataset, "_path") and hasattr(dataset, "_protocol")


def partitions_path(dataset: Any) -> Any | None:
    """The folder of a partitioned ``dataset`` (with its protocol, as configured), or None."""
    return getattr(dataset, "_path", None)


def partition_path(dataset: Any, partition: str) -> str:
    """Where a partitioned ``dataset`` writes partition ``partition``."""
    return str(dataset._partition_to_path(partition))


def point_partitions_at(dataset: Any, path: str) -> None:
    """Make a partitioned ``dataset`` (a copy) list and read the partitions in folder ``path``."""
    dataset._path = path
    dataset._invalidate_caches()


# -- databases ------------------------------------------------------------------------------

def sql_connection(dataset: Any) -> str | None:
    """The SQLAlchemy connection string of a SQL dataset, else None."""
    connection = getattr(dataset, "_connection_str", None)
    return connection if isinstance(connection, str) else None


def load_args(dataset: Any) -> Mapping[str, Any]:
    """The load arguments of ``dataset`` (``table_name``, ``sql`` for the SQL datasets); empty if none."""
    return getattr(dataset, "_load_args", None) or {}


def save_args(dataset: Any) -> Mapping[str, Any]:
    """The save arguments of ``dataset`` (``name`` for ``SQLTableDataset``); empty if none."""
    return getattr(dataset, "_save_args", None) or {}


# -- wrappers and memory --------------------------------------------------------------------

def wrapped_dataset(dataset: Any) -> Any | None:
    """The dataset a wrapper (``CachedDataset``, ``MlflowArtifactDataset``) holds in ``_dataset``, else None."""
    return getattr(dataset, "_dataset", None)


def storage_dataset(dataset: Any) -> Any:
    """The dataset that holds ``dataset``'s data: through wrappers while the outer one has no path."""
    inner = dataset
    for attribute in _WRAPPER_ATTRIBUTES:
        if filepath(inner) is None and getattr(inner, attribute, None) is not None:
            inner = getattr(inner, attribute)
    return inner


def is_ephemeral(dataset: Any) -> bool:
    """Whether ``dataset``'s data lives only as long as the run (``MemoryDataset``, ``CachedDataset``)."""
    return bool(getattr(dataset, "_EPHEMERAL", False))


def before_release(dataset: Any, action: Callable[[], None]) -> None:
    """Run ``action`` each time Kedro releases ``dataset`` (``dataset.release()``), just before it does.

    ``_release`` is ``AbstractDataset``'s extension point behind ``release()``; the patch is on this
    instance only (this run's catalog), and the release happens even when ``action`` fails.
    """
    release = dataset._release

    def action_then_release() -> None:
        try:
            action()
        finally:
            release()

    dataset._release = action_then_release


# -- checks ---------------------------------------------------------------------------------

def _missing(obj: Any, names: tuple[str, ...], owner: str) -> list[str]:
    return [f"{owner}.{name}" for name in names if not hasattr(obj, name)]


def _check_versioned() -> list[str]:
    from kedro.io.core import AbstractVersionedDataset

    class _Probe(AbstractVersionedDataset[Any, Any]):
        def load(self) -> Any:  # pragma: no cover - never called
            return None

        def save(self, data: Any) -> None:  # pragma: no cover - never called
            return None

        def _describe(self) -> dict[str, Any]:
            return {}

    probe = _Probe(PurePosixPath("probe.csv"), None)
    return _missing(probe, ("_filepath", "_version", "resolve_save_version", "_get_versioned_path", "_get_load_path",
                            "_get_save_path", "_clear_version_cache", "_describe", "_release"),
                    "AbstractVersionedDataset")


def _check_memory() -> list[str]:
    from kedro.io import CachedDataset, MemoryDataset
    from kedro.io.core import AbstractDataset

    missing = _missing(AbstractDataset, ("_EPHEMERAL", "_release"), "AbstractDataset")
    if not (is_ephemeral(MemoryDataset()) and not is_ephemeral(AbstractDataset)):
        missing.append("MemoryDataset._EPHEMERAL")
    if not isinstance(wrapped_dataset(CachedDataset(dataset=MemoryDataset())), MemoryDataset):
        missing.append("CachedDataset._dataset")
    return missing


def _check_kedro_datasets() -> list[str]:
    import importlib.util

    if importlib.util.find_spec("kedro_datasets") is None:  # not ours to require: nothing to check
        return []
    from kedro_datasets.pandas import CSVDataset, SQLQueryDataset, SQLTableDataset
    from kedro_datasets.partitions import PartitionedDataset

    missing = _missing(CSVDataset(filepath="probe.csv"), ("_filepath", "_protocol", "_fs", "_load_args",
                                                         "_save_args"), "CSVDataset")
    missing += _missing(PartitionedDataset(path="probe", dataset="pandas.CSVDataset"),
                        ("_path", "_protocol", "_partition_to_path", "_invalidate_caches"), "PartitionedDataset")
    credentials = {"con": "sqlite://"}
    table = SQLTableDataset(table_name="probe", credentials=credentials)
    if sql_connection(table) != "sqlite://" or load_args(table).get("table_name") != "probe" or (
            save_args(table).get("name") != "probe"):
        missing.append("SQLTableDataset._connection_str / _load_args['table_name'] / _save_args['name']")
    query = SQLQueryDataset(sql="select 1", credentials=credentials)
    if sql_connection(query) != "sqlite://" or load_args(query).get("sql") != "select 1":
        missing.append("SQLQueryDataset._connection_str / _load_args['sql']")
    missing += _missing(SQLQueryDataset(filepath="probe.sql", credentials=credentials), ("_filepath", "_protocol"),
                        "SQLQueryDataset(filepath=...)")
    return missing


_CHECKS = (_check_versioned, _check_memory, _check_kedro_datasets)


def verify() -> list[str]:
    """The private names above that this Kedro or kedro-datasets no longer has (empty when all are there)."""
    missing: list[str] = []
    for check in _CHECKS:
        try:
            missing += check()
        except Exception as exc:  # an incompatible version: say which check, and why
            missing.append(f"{check.__name__.removeprefix('_check_')} ({type(exc).__name__}: {exc})")
    return missing
