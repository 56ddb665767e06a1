"""Data lineage: which persisted catalog datasets a run read and wrote, from where, in which state.

Pure helpers, no MLflow import: the recorder (``_recorder.py``) calls them when the pipeline
starts (which datasets, where they are) and when the run ends (digests), and the dataset hooks
call :func:`frame_schema` on loaded and saved data. pandas and polars are never imported here:
a frame is recognised by the module of its type, so it is only inspected when its library is
loaded already.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any, Final

from .._redact import redact_uri
from ..compat import kedro_datasets as datasets
from ..core.catalog import catalog_datasets

__all__ = [
    "CONTENT_DIGEST_MAX_BYTES",
    "INPUT_CONTEXT",
    "Location",
    "SqlLocation",
    "digest",
    "frame_schema",
    "location",
    "persisted",
]

#: ``digest: auto`` hashes the content of files up to this size, and their size and mtime above it.
CONTENT_DIGEST_MAX_BYTES: Final = 4 * 1024 * 1024
#: The ``mlflow.data.context`` input tag of the datasets a run reads.
INPUT_CONTEXT: Final = "kedro.input"
_DIGEST_LENGTH: Final = 16  # hex characters; MLflow allows 36

_MEMORY_TYPES: Final = ("MemoryDataset", "SharedMemoryDataset")


class Location:
    """Where a catalog dataset's data is: the path to digest, and what MLflow shows as its source."""

    __slots__ = ("dataset", "path", "protocol", "source", "source_type")

    def __init__(self, dataset: Any, path: str, protocol: str) -> None:
        self.dataset = dataset
        self.path = path
        self.protocol = protocol
        if protocol in ("file", "", None):
            self.source_type, self.source = "local", json.dumps({"uri": path})
        elif protocol in ("http", "https"):
            self.source_type, self.source = "http", json.dumps({"url": redact_uri(f"{protocol}://{path}")})
        else:
            self.source_type, self.source = protocol, json.dumps({"uri": redact_uri(f"{protocol}://{path}")})

    def describe(self, name: str) -> dict[str, Any]:
        return {"name": name, "source_type": self.source_type, "source": self.source}


class SqlLocation(Location):
    """A table or query of a SQL database (a dataset with a SQLAlchemy connection string, such as
    kedro-datasets' ``pandas.SQLTableDataset`` and ``pandas.SQLQueryDataset``).

    Its source is ``{"uri": <connection without password or query string>, "table": ...}``, or
    ``"query_sha256"`` (a query given inline) or ``"query_file"`` (a query read from a file) instead
    of ``"table"``. Its digest is ``unknown``: the plugin never queries a database to digest it.
    """

    __slots__ = ()

    def __init__(self, dataset: Any, connection: str, *, table: str | None = None, query: str | None = None,
                 query_file: str | None = None) -> None:
        self.dataset = dataset
        self.path = ""
        self.protocol = "sql"
        self.source_type = "sql"
        source: dict[str, str] = {"uri": _connection_without_secrets(connection)}
        if table:
            source["table"] = table
        elif query:
            source["query_sha256"] = hashlib.sha256(query.encode()).hexdigest()
        elif query_file:
            source["query_file"] = redact_uri(query_file)
        self.source = json.dumps(source)


def _connection_without_secrets(connection: str) -> str:
    """A SQLAlchemy URL without its password and its query string (driver options may hold secrets)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(connection)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return redact_uri(connection.partition("?")[0])
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _sql_location(dataset: Any) -> SqlLocation | None:
    """The :class:`SqlLocation` of a dataset with a SQLAlchemy connection string, else None."""
    connection = datasets.sql_connection(dataset)
    if connection is None:
        return None
    load_args = datasets.load_args(dataset)
    table = load_args.get("table_name") or datasets.save_args(dataset).get("name")
    query = load_args.get("sql")
    path = datasets.filepath(dataset)
    protocol = datasets.protocol(dataset) or "file"
    query_file = None if path is None else (str(path) if protocol == "file" else f"{protocol}://{path}")
    return SqlLocation(dataset, connection, table=str(table) if table else None,
                       query=str(query) if query else None, query_file=query_file)


def persisted(catalog: Any, names: Iterable[str]) -> dict[str, Any]:
    """``{name: dataset}`` of the catalog entries among ``names`` that persist their data.

    Parameters and memory datasets (declared or implicit) are left out; an entry the catalog
    cannot build is left out too (the run reports it when a node needs it).
    """
    return {name: dataset for name, dataset in catalog_datasets(catalog, names)
            if type(dataset).__name__ not in _MEMORY_TYPES}


def location(dataset: Any, *, saving: bool = False) -> Location | None:
    """Where ``dataset`` keeps its data (a specific version for a versioned dataset), or None."""
    inner = datasets.storage_dataset(dataset)  # through wrappers (our artifact dataset, CachedDataset, ...)
    sql = _sql_location(inner)
    if sql is not None:  # the data is in a database: its query file, if any, is not the data
        return sql
    path: Any = datasets.filepath(inner)
    protocol = datasets.protocol(inner)
    if path is None:
        try:
            described = datasets.describe(inner)
        except Exception:
            described = {}
        path = described.get("filepath") or described.get("path")
        if path is None:
            return None
        text = str(path)
        protocol, sep, rest = text.partition("://")
        path, protocol = (rest, protocol) if sep else (text, "file")
    try:
        path = datasets.versioned_path(inner, saving=saving) or path
    except Exception:  # no version yet (or a clash): the unversioned path still says where
        pass
    return Location(inner, str(PurePosixPath(str(path))) if protocol in ("file", None) else str(path),
                    protocol or "file")


def digest(loc: Location, mode: str) -> str:
    """A short digest of the data at ``loc`` that changes when the data changes.

    ``content``: a hash of the bytes; ``stat``: of size and modification time (folders: of every
    file's relative path, size and mtime); ``auto``: content up to
    :data:`CONTENT_DIGEST_MAX_BYTES`, stat above; ``none``: the constant ``"none"``.

    Besides a digest: ``"missing"`` when the data does not exist (no such local path; the
    dataset's filesystem says not found); ``"unknown"`` for a SQL table or query (never queried)
    and for a remote path without an fsspec filesystem to ask.

    Raises:
        Exception: the digest could not be computed (an unreadable file, a server that did not
            answer); the recorder logs a warning and records ``"unknown"``.
    """
    if mode == "none":
        return "none"
    if isinstance(loc, SqlLocation):
        return "unknown"
    hasher = hashlib.sha256()
    if loc.protocol in ("file", "", None):
        if not os.path.exists(loc.path):
            return "missing"
        if os.path.isdir(loc.path):
            _digest_folder(loc.path, mode, hasher)
        else:
            stat = os.stat(loc.path)
            if mode == "content" or (mode == "auto" and stat.st_size <= CONTENT_DIGEST_MAX_BYTES):
                _hash_file(loc.path, hasher)
            else:
                hasher.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
        return hasher.hexdigest()[:_DIGEST_LENGTH]
    fs = datasets.filesystem(loc.dataset)
    if fs is None:
        return "unknown"
    # fsspec's http filesystem wants the whole URL; the others take the path without its protocol
    path = f"{loc.protocol}://{loc.path}" if loc.protocol in ("http", "https") else loc.path
    try:
        info = fs.info(path)
    except FileNotFoundError as exc:
        if not _absent(exc):
            raise  # the caller records "unknown" and says why
        return "missing"
    size = info.get("size") or 0
    if info.get("type") != "directory" and (mode == "content" or (mode == "auto" and size <= CONTENT_DIGEST_MAX_BYTES)):
        hasher.update(fs.cat_file(path))
    else:
        hasher.update(json.dumps({k: str(v) for k, v in info.items() if k != "name"}, sort_keys=True).encode())
    return hasher.hexdigest()[:_DIGEST_LENGTH]


def _absent(exc: FileNotFoundError) -> bool:
    """Whether a filesystem's ``FileNotFoundError`` means that the data does not exist.

    fsspec's http filesystem raises it for a server that did not answer, or answered with an
    error, too: then the data may well exist (its cause is a connection error, or a status other
    than 404 / 410).
    """
    cause = exc.__cause__
    if cause is None:
        return True
    kind = type(cause).__name__.lower()
    if isinstance(cause, (ConnectionError, TimeoutError)) or "connect" in kind or "timeout" in kind:
        return False
    status = getattr(cause, "status", None)
    return status is None or status in (404, 410)


def _digest_folder(root: str, mode: str, hasher: Any) -> None:
    # every file enters: a stat each (about 2 us), the bytes too only when the folder is small
    files: list[str] = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        files += [os.path.join(folder, n) for n in sorted(names)]
    sizes = [os.stat(f) for f in files]
    by_content = mode == "content" or (mode == "auto" and sum(s.st_size for s in sizes) <= CONTENT_DIGEST_MAX_BYTES)
    hasher.update(str(len(files)).encode())
    for path, stat in zip(files, sizes, strict=True):
        hasher.update(os.path.relpath(path, root).encode())
        if by_content:
            _hash_file(path, hasher)
        else:
            hasher.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())


def _hash_file(path: str, hasher: Any) -> None:
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)


# -- schemas of frames ---------------------------------------------------------------------

#: numpy/pandas/polars dtype names -> MLflow column types (what the MLflow UI shows)
_MLFLOW_TYPES: Final = MappingProxyType({
    "int64": "long", "int32": "integer", "int16": "integer", "int8": "integer", "uint8": "integer",
    "uint16": "integer", "uint32": "long", "float64": "double", "float32": "float", "bool": "boolean",
    "boolean": "boolean", "object": "string", "string": "string", "str": "string", "category": "string",
    "Int64": "long", "Int32": "integer", "Float64": "double", "Float32": "float", "Boolean": "boolean",
    "String": "string", "Utf8": "string", "Categorical": "string", "Binary": "binary", "Date": "datetime",
    "Datetime": "datetime",
})
#: at most this many columns are described (the count is in the profile)
MAX_SCHEMA_COLUMNS: Final = 1000


def frame_schema(data: Any) -> tuple[str, str] | None:
    """``(schema, profile)`` JSON of a pandas or polars DataFrame, else None (never imports either).

    The schema is MLflow's column-spec form (``{"mlflow_colspec": [{"name", "type", "dtype"}]}``),
    which the MLflow UI shows as a table; the profile holds the row and column counts.
    """
    library = type(data).__module__.partition(".")[0]
    if library not in ("pandas", "polars") or type(data).__name__ != "DataFrame":
        return None
    try:
        if library == "pandas":
            columns: Mapping[Any, Any] = data.dtypes.items()
            rows, width = int(data.shape[0]), int(data.shape[1])
        else:
            columns = data.schema.items()
            rows, width = int(data.height), int(data.width)
        specs = []
        for name, dtype in columns:
            dtype_name = str(dtype)
            base = dtype_name.split("[", 1)[0].split("(", 1)[0]
            kind = _MLFLOW_TYPES.get(base) or ("datetime" if base.startswith(("datetime", "Datetime")) else "string")
            specs.append({"name": str(name), "type": kind, "dtype": dtype_name})
            if len(specs) >= MAX_SCHEMA_COLUMNS:
                break
    except Exception:  # an odd frame: no schema rather than a failed run
        return None
    profile = {"num_rows": rows, "num_columns": width, "num_elements": rows * width}
    return json.dumps({"mlflow_colspec": specs}), json.dumps(profile)
