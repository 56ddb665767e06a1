"""The files of ``MlflowArtifactDataset`` (``artifacts.py``): the wrapped dataset built from its
configuration, where it writes locally, and artifacts of the run fetched next to it.

A missing local file is downloaded into a temporary folder beside its local path and renamed into
place, so that the wrapped dataset then reads it as if it had written it, a reader never sees half a
file, and loads that download at the same time (a ThreadRunner's nodes sharing an input) all succeed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import AbstractDataset, AbstractVersionedDataset, DatasetError, parse_dataset_definition

from .._redact import safe_cause
from ..compat import kedro_datasets as datasets
from ..errors import KedroMlflowRunsError, MlflowDatasetError

__all__ = ["Downloaded", "build_wrapped", "download_into", "in_run", "load_kept", "local_path", "local_target"]


def build_wrapped(dataset: dict[str, Any] | AbstractDataset[Any, Any] | str, owner: str) -> AbstractDataset[Any, Any]:
    """The wrapped dataset: ``dataset`` itself, or built from its catalog configuration."""
    if isinstance(dataset, AbstractDataset):
        return dataset
    config = {"type": dataset} if isinstance(dataset, str) else dict(dataset)
    try:
        class_obj, kwargs = parse_dataset_definition(config)
        return class_obj(**kwargs)
    except KedroMlflowRunsError:
        raise
    except Exception as exc:
        raise MlflowDatasetError(
            f"{owner}: cannot build the wrapped dataset {config.get('type')!r}: {exc}", dataset=owner,
        ) from safe_cause(exc)


def local_path(path: Any, protocol: str | None, label: str) -> Path:
    """``path`` as a local path; an error naming dataset ``label`` when it is not on the local file system."""
    text = str(path)
    if ("://" in text and not text.startswith("file://")) or protocol not in (None, "file", "local"):
        raise MlflowDatasetError(
            f"{label}: the wrapped dataset writes to '{text}', which is not on the local file "
            f"system; only local files can be logged as artifacts.", dataset=label)
    return Path(text.removeprefix("file://"))


def local_target(dataset: Any, artifact_path: str | None, label: str) -> tuple[str, Path]:
    """The artifact that wrapped ``dataset``'s data is saved as (under ``artifact_path``), and where that
    data goes locally.

    A partitioned dataset: the ``artifact_path`` folder, and its partitions folder. A versioned one: the
    version it would load (a pinned load version), else the version this Kedro run saves, as if it had
    saved the data itself.
    """
    if datasets.is_partitioned(dataset):
        return artifact_path or "", local_path(datasets.partitions_path(dataset), datasets.protocol(dataset), label)
    name = "/".join(p for p in (artifact_path, PurePosixPath(str(datasets.filepath(dataset))).name) if p)
    path: Any = None
    if isinstance(dataset, AbstractVersionedDataset):
        try:
            path = datasets.versioned_path(dataset, saving=False)
        except DatasetError:  # no version here yet: the one a save of this Kedro run would write
            path = datasets.versioned_path(dataset, saving=True)
    if path is None:
        path = datasets.filepath(dataset)
    return name, local_path(path, datasets.protocol(dataset), label)


def in_run(client: Any, run_id: str, name: str) -> bool:
    """Whether run ``run_id`` holds artifact ``name`` (a file or a folder): one listing of its parent."""
    parent = PurePosixPath(name).parent.as_posix()
    listed = client.list_artifacts(run_id, None if parent == "." else parent)
    return name in {item.strip("/") for item in listed}


class Downloaded:
    """A temporary folder, deleted when the last object referring to it goes."""

    __slots__ = ("__weakref__", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        weakref.finalize(self, shutil.rmtree, path, True)


def load_kept(loader: Any, keeper: Downloaded) -> Any:
    """``loader()``; ``keeper`` (the downloaded folder it reads) lives as long as this partial does."""
    return loader()


def download_into(client: Any, run_id: str, name: str, local: Path) -> None:
    """Download artifact ``name`` of ``run_id`` and put it at ``local`` (a file or a folder), renamed into
    place from a temporary folder beside it (see the module docstring)."""
    local.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{local.name}.kmr-download-", dir=local.parent) as tmp:
        downloaded = Path(client.download_artifact(run_id, name, tmp))
        try:
            if downloaded.is_dir() and local.is_dir():
                os.rmdir(local)  # an empty folder (no partitions yet) is replaced
            os.replace(downloaded, local)
        except OSError:  # a folder holding files that are not partitions, or another load's download: merge
            if not (downloaded.is_dir() and local.is_dir()):
                raise
            _merge(downloaded, local)


def _merge(source: Path, folder: Path) -> None:
    """Move every file of ``source`` into ``folder`` (same file system), each renamed in one step."""
    for path in sorted(source.rglob("*")):
        if path.is_file():
            destination = folder / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, destination)
