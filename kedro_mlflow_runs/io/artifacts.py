"""MlflowArtifactDataset: save any local Kedro dataset, then log what it wrote into the run.

```yaml
sklearn_model:
  type: kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset
  dataset:
    type: kedro_mlflow_runs.io.models.MlflowModelSaverDataset
    flavor: mlflow.sklearn
    filepath: data/06_models/sklearn_model
```

A ``PartitionedDataset`` (or ``IncrementalDataset``) can be wrapped too: the partitions a save
writes are logged one by one under ``artifact_path/<partition id><suffix>``; partitions already
in the folder that this save did not write are not logged again.

Data crosses machines through the run: a step whose local file (or partitions folder) is missing
loads the artifact another step saved into the same run, downloaded into the local path.

The wrapper is one plain class holding the wrapped dataset instance (no dynamic subclass), so
it pickles whenever the wrapped dataset does.
"""

from __future__ import annotations

import copy
import functools
import logging
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import (
    AbstractDataset,
    AbstractVersionedDataset,
    DatasetError,
)

from .._redact import safe_cause
from ..compat import kedro_datasets as datasets
from ..errors import MlflowDatasetError, NoActiveRunError
from ._artifact_files import Downloaded, build_wrapped, download_into, in_run, load_kept, local_path, local_target
from ._artifact_partitions import log_partitions
from ._run import RunTarget, note_loaded_from, select_run, tracker, tracking_error, wrapped_errors
from .naming import NamedDataset

__all__ = ["MlflowArtifactDataSet", "MlflowArtifactDataset"]

logger = logging.getLogger(__name__)


class MlflowArtifactDataset(NamedDataset, AbstractDataset[Any, Any]):
    """Wrap a file-based Kedro dataset: save locally, then log the file or folder as an artifact.

    The run follows the run-selection table (``docs/datasets.md``); the run is selected before
    anything is written, so a missing or conflicting run writes nothing. If logging fails the
    local file is kept and the error says where it is.

    Load reads the local file. When it is missing (a step on another machine saved it), the artifact
    is downloaded from the active run into the local path, as if this step had saved it, and loaded
    from there; a clear error names the run and the artifact when the run does not hold it either.
    With ``run_id`` set it downloads the artifact of that run into a temporary folder and loads it
    from there (the local file is left untouched).

    Args:
        dataset: the wrapped dataset: a config dict (``type:`` plus its arguments, as in the
            catalog) or a dataset instance. It must write to the local file system and expose
            its path as ``_filepath`` (every kedro-datasets file dataset does).
        run_id: the run to log into / download from; None: the active run.
        artifact_path: the folder inside the run's artifacts (None: the root).
        data_set: legacy spelling of ``dataset``.
        metadata: free-form metadata, ignored by the dataset.
    """

    def __init__(
        self,
        dataset: dict[str, Any] | AbstractDataset[Any, Any] | str | None = None,
        run_id: str | None = None,
        artifact_path: str | None = None,
        data_set: dict[str, Any] | AbstractDataset[Any, Any] | str | None = None,
        metadata: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
    ) -> None:
        if dataset is None:
            dataset = data_set
        elif data_set is not None:
            raise MlflowDatasetError(
                f"{type(self).__name__}: give the wrapped dataset as `dataset:` only (`data_set:` "
                f"is its legacy spelling), not both.", dataset=type(self).__name__)
        if dataset is None:
            raise MlflowDatasetError(f"{type(self).__name__}: `dataset:` (the wrapped dataset) is required.",
                                     dataset=type(self).__name__)
        if credentials is not None and isinstance(dataset, dict):  # kedro-mlflow's: for the wrapped dataset
            dataset = {**dataset, "credentials": credentials}
        self._dataset = build_wrapped(dataset, type(self).__name__)
        self._run_id = str(run_id) if run_id else None
        self._artifact_path = artifact_path.strip("/") if artifact_path else None
        self.metadata = metadata
        self._partitioned = datasets.is_partitioned(self._dataset)
        if self._partitioned and self._artifact_path is None:  # keep the run's root tidy, and loadable
            self._artifact_path = PurePosixPath(str(datasets.partitions_path(self._dataset)).rstrip("/")).name or None
        if not self._partitioned and not datasets.has_filepath(self._dataset):
            raise MlflowDatasetError(
                f"{self._label()}: the wrapped {type(self._dataset).__name__} has no local file "
                f"path (_filepath); only file-based datasets (or a PartitionedDataset of them) can be "
                f"logged as artifacts.", dataset=self._label())

    @property
    def dataset(self) -> AbstractDataset[Any, Any]:
        """The wrapped dataset."""
        return self._dataset

    def _label(self) -> str:
        entry = f"catalog entry '{self._catalog_name}', " if self._catalog_name else ""
        wrapped = type(self._dataset).__name__ if hasattr(self, "_dataset") else "?"
        inner = getattr(self, "_dataset", None)
        path = datasets.filepath(inner) or datasets.partitions_path(inner)
        return f"{type(self).__name__}({entry}wrapping {wrapped} '{path}')"

    def _describe(self) -> dict[str, Any]:
        return {
            "dataset": datasets.describe(self._dataset),
            "dataset_type": type(self._dataset).__name__,
            "run_id": self._run_id,
            "artifact_path": self._artifact_path,
        }

    # -- save ---------------------------------------------------------------------------

    def save(self, data: Any) -> None:
        target = select_run(self._label(), self._run_id, "save", self._kedro_run_id)
        if self._partitioned:
            self._save_partitions(data, target)
            return
        local_path(datasets.filepath(self._dataset), datasets.protocol(self._dataset), self._label())
        self._dataset.save(data)
        local = self._saved_path()
        try:
            self._log(local, target)
        except Exception as exc:
            error = tracking_error(self._label(), f"log '{local}' as an artifact of", target, exc)
            raise MlflowDatasetError(
                f"{error} The local file is kept at '{local}'; log it again or re-run the node.",
                run_id=target.run_id,
                dataset=self._label(),
            ) from safe_cause(exc)

    def _save_partitions(self, data: Any, target: RunTarget) -> None:
        dataset = self._dataset
        local_path(datasets.partitions_path(dataset), datasets.protocol(dataset), self._label())
        if not isinstance(data, dict):
            raise MlflowDatasetError(
                f"{self._label()}: a PartitionedDataset saves a dict of {{partition id: data}}, got "
                f"{type(data).__name__}. Return a dict from the node.", dataset=self._label())
        dataset.save(data)
        log_partitions(dataset, sorted(data), self._artifact_path, target, self._label())

    def _saved_path(self) -> Path:
        """Where the wrapped dataset has just written (its save version's folder when versioned)."""
        dataset = self._dataset
        path = datasets.versioned_path(dataset, saving=True) if isinstance(dataset, AbstractVersionedDataset) else None
        if path is None:
            path = datasets.filepath(dataset)
        return local_path(path, datasets.protocol(dataset), self._label())

    def _log(self, local: Path, target: RunTarget) -> None:
        if local.is_dir():
            destination = "/".join(p for p in (self._artifact_path, local.name) if p)
            tracker(target).log_artifact(target.run_id, str(local), destination)
        elif local.is_file():
            tracker(target).log_artifact(target.run_id, str(local), self._artifact_path)
        else:
            raise FileNotFoundError(f"the wrapped dataset wrote nothing at '{local}'")
        logger.info("Logged artifact '%s' into MLflow run %s", self._artifact_name(local), target.run_id)

    def _artifact_name(self, local: Path | PurePosixPath) -> str:
        return "/".join(p for p in (self._artifact_path, local.name) if p)

    # -- load ---------------------------------------------------------------------------

    def load(self) -> Any:
        if self._run_id is None:
            if self._local_exists():  # the local file wins: no request at all
                return self._dataset.load()
            return self._load_missing()
        target = select_run(self._label(), self._run_id, "load", self._kedro_run_id)
        if self._partitioned:
            return self._load_partitions(target)
        name = self._artifact_name(PurePosixPath(str(datasets.filepath(self._dataset))))
        with tempfile.TemporaryDirectory(prefix="kmr-artifact-") as tmp:
            with wrapped_errors(self._label(), f"download artifact '{name}' from", target):
                downloaded = tracker(target).download_artifact(target.run_id, name, tmp)
            return self._copy_at(Path(downloaded)).load()

    def _load_missing(self) -> Any:
        """The local file is missing: download the artifact another step saved into the active run into
        the local path (as a save would have written it), then load it as usual."""
        try:
            target = select_run(self._label(), None, "load", self._kedro_run_id)
        except NoActiveRunError:
            return self._load_without_run()
        name, local = local_target(self._dataset, self._artifact_path, self._label())
        with wrapped_errors(self._label(), f"look for artifact '{name}' in", target):
            present = in_run(tracker(target), target.run_id, name)
        if not present:
            raise MlflowDatasetError(
                f"{self._label()} cannot load: its local {self._what()} does not exist, "
                f"and MLflow run '{target.run_id}' has no artifact '{name}' to download instead. Run the node "
                f"that produces it first (in this run, on any machine), or set `run_id: <run id>` in its catalog "
                f"entry to load it from the run that holds it.",
                run_id=target.run_id, dataset=self._label())
        with wrapped_errors(self._label(), f"download artifact '{name}' from", target):
            download_into(tracker(target), target.run_id, name, local)
        datasets.refresh(self._dataset)
        logger.info("Downloaded artifact '%s' of MLflow run %s into '%s': the local %s of %s was missing", name,
                    target.run_id, local, self._what(), self._label())
        note_loaded_from(self._kedro_run_id, self._catalog_name, f"runs:/{target.run_id}/{name}")
        return self._dataset.load()

    def _load_without_run(self) -> Any:
        """No run to look in: the wrapped dataset's own error, saying where the data could come from."""
        try:
            return self._dataset.load()
        except DatasetError as exc:
            raise MlflowDatasetError(
                f"{exc}\n{self._label()}: its local {self._what()} is missing, and no MLflow run is active "
                f"to download the artifact from. Run the node that produces it first, run this step with "
                f"tracking enabled in the run that holds it (MLFLOW_RUN_ID or tracking.run.id), or set "
                f"`run_id: <run id>` in its catalog entry.", dataset=self._label()) from exc

    def _local_exists(self) -> bool:
        if self._partitioned:  # what is on disk now, not the partitions it listed before (a copy's too)
            datasets.refresh(self._dataset)
        return self._dataset.exists()

    def _what(self) -> str:
        return "folder" if self._partitioned else "file"

    def _load_partitions(self, target: RunTarget) -> Any:
        """The run's partitions, downloaded to a temporary folder that lives as long as the loaders."""
        folder = self._artifact_path or ""
        tmp = tempfile.mkdtemp(prefix="kmr-partitions-")
        try:
            downloaded = tracker(target).download_artifact(target.run_id, folder, tmp)
        except Exception as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            what = f"download partitions '{folder}' from"
            raise tracking_error(self._label(), what, target, exc) from safe_cause(exc)
        keeper = Downloaded(tmp)  # removed with the last loader that needs it (or now, on an error)
        twin = copy.deepcopy(self._dataset)
        datasets.point_partitions_at(twin, Path(downloaded).as_posix())
        return {partition: functools.partial(load_kept, loader, keeper) for partition, loader in twin.load().items()}

    def _copy_at(self, path: Path) -> AbstractDataset[Any, Any]:
        """A copy of the wrapped dataset reading ``path``, unversioned."""
        twin = copy.deepcopy(self._dataset)
        datasets.point_at_file(twin, PurePosixPath(path.as_posix()))
        if isinstance(twin, AbstractVersionedDataset):
            datasets.drop_version(twin)
        return twin

    def _exists(self) -> bool:
        """The local file (or folder) exists, or the run it would be loaded from holds the artifact."""
        if self._local_exists():
            return True
        try:
            target = select_run(self._label(), self._run_id, "load", self._kedro_run_id)
        except NoActiveRunError:
            return False
        name = local_target(self._dataset, self._artifact_path, self._label())[0]
        with wrapped_errors(self._label(), f"look for artifact '{name}' in", target):
            return in_run(tracker(target), target.run_id, name)

    def _release(self) -> None:
        self._dataset.release()


#: Legacy name (the seed's): the same class.
MlflowArtifactDataSet = MlflowArtifactDataset
