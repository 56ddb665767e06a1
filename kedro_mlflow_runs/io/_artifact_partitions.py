"""Logging the partitions a ``PartitionedDataset`` wrapped in ``MlflowArtifactDataset`` has just saved.

The folder goes in one call when it holds only the partitions this save wrote (a local store then copies it
at once, instead of validating and copying file by file); otherwise the partitions are logged one by one,
so that an earlier run's partitions still in the folder are not logged into this run.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from .._redact import safe_cause
from ..compat import kedro_datasets as datasets
from ..errors import MlflowDatasetError
from ..tracking.progress import transfer_status
from ._run import RunTarget, tracker, tracking_error

__all__ = ["log_partitions"]

logger = logging.getLogger(__name__)


def log_partitions(dataset: Any, partitions: Sequence[str], artifact_path: str | None, target: RunTarget,
                   label: str) -> None:
    """Log the ``partitions`` that ``dataset`` (a ``PartitionedDataset``) has just saved under ``artifact_path``
    of ``target``'s run; ``label`` names the dataset in errors."""
    folder = Path(str(datasets.partitions_path(dataset)))
    written = {partition: Path(datasets.partition_path(dataset, partition)) for partition in partitions}
    if _only_these(folder, written.values()):  # the common case: one call for the folder
        _log_folder(folder, len(written), artifact_path, target, label)
    else:
        described = f"Logging {len(written)} partition(s) of '{folder}' to MLflow run {target.run_id[:8]}"
        with transfer_status(described):  # one status line for the whole save, not one per partition
            _log_one_by_one(folder, written, artifact_path, target, label)
    logger.info("Logged %d partition(s) under '%s' into MLflow run %s", len(written), artifact_path or "",
                target.run_id)


def _log_one_by_one(folder: Path, written: dict[str, Path], artifact_path: str | None, target: RunTarget,
                    label: str) -> None:
    logged: list[str] = []
    for partition, local in written.items():
        parent = PurePosixPath(str(partition).strip("/")).parent.as_posix()
        under = "/".join(p for p in (artifact_path, "" if parent == "." else parent) if p) or None
        try:
            if local.is_dir():
                destination = "/".join(p for p in (under, local.name) if p)
                tracker(target).log_artifact(target.run_id, str(local), destination, status=False)
            else:
                tracker(target).log_artifact(target.run_id, str(local), under, status=False)
        except Exception as exc:
            error = tracking_error(label, f"log partition '{partition}' ('{local}') into", target, exc)
            done = ", ".join(logged) or "none"
            raise MlflowDatasetError(
                f"{error} Every partition is kept in '{folder}'; partitions logged before the "
                f"failure: {done}. Log the rest again or re-run the node.",
                run_id=target.run_id, dataset=label,
            ) from safe_cause(exc)
        logged.append(str(partition))


def _log_folder(folder: Path, count: int, artifact_path: str | None, target: RunTarget, label: str) -> None:
    try:
        tracker(target).log_artifact(target.run_id, str(folder), artifact_path)
    except Exception as exc:
        error = tracking_error(label, f"log the partitions folder '{folder}' into", target, exc)
        raise MlflowDatasetError(
            f"{error} Every partition is kept in '{folder}'; the folder was being logged in one call, so "
            f"some of its {count} partitions may be in the run already. Log it again or re-run the node.",
            run_id=target.run_id, dataset=label,
        ) from safe_cause(exc)


def _only_these(folder: Path, written: Iterable[Path]) -> bool:
    """Whether every file under ``folder`` is one this save wrote (a written partition, or a file inside a
    partition that is a folder), so that logging the folder logs exactly those partitions."""
    files: set[str] = set()
    try:
        for local in written:
            path = os.path.abspath(local)
            mode = os.stat(path).st_mode
            if stat.S_ISDIR(mode):
                files.update(os.path.join(root, name) for root, _, names in os.walk(path) for name in names)
            else:
                files.add(path)
        return all(os.path.join(root, name) in files
                   for root, _, names in os.walk(os.path.abspath(folder)) for name in names)
    except OSError:  # a partition not written where expected: log them one by one, which names it
        return False
