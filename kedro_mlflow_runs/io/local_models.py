"""MlflowModelSaverDataset: save a model to a local folder with its flavor's ``save_model``.

```yaml
sklearn_model:
  type: kedro_mlflow_runs.io.models.MlflowModelSaverDataset
  flavor: mlflow.sklearn
  filepath: data/06_models/sklearn_model
  versioned: true
```
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

from kedro.io.core import AbstractVersionedDataset, DatasetError, Version

from ..errors import MlflowDatasetError
from ._flavors import FlavoredDataset, model_as_data
from ._requirements import apply_requirements

__all__ = ["MlflowModelSaverDataset"]



class MlflowModelSaverDataset(FlavoredDataset, AbstractVersionedDataset[Any, Any]):
    """Save a model to a local folder with its flavor's ``save_model``; load it back. Logs nothing.

    Versioned like Kedro's datasets: with ``versioned: true`` each save goes to
    ``<filepath>/<version>/<folder name>`` and load takes the latest or the given version.
    An unversioned save over an existing model folder writes the new model to a temporary
    sibling folder first and swaps it in (atomically where the OS can), so there is never a
    moment without a complete model at ``filepath``.

    Args:
        filepath: the local folder of the model.
        flavor: module path of the flavor.
        pyfunc_workflow: ``python_model`` or ``loader_module``.
        load_args: passed to the flavor's ``load_model``.
        save_args: passed to the flavor's ``save_model``, plus ``requirements: fast | infer``.
        version: a Kedro ``Version`` (set by ``versioned: true`` in the catalog).
        metadata: free-form metadata, ignored by the dataset.
    """

    def __init__(
        self,
        filepath: str,
        flavor: str,
        pyfunc_workflow: str | None = None,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if "://" in str(filepath) and not str(filepath).startswith("file://"):
            label = f"{type(self).__name__}(flavor '{flavor}', filepath '{filepath}')"
            raise MlflowDatasetError(
                f"{label}: only local paths are supported. Save locally and wrap the dataset in "
                f"MlflowArtifactDataset to store it in MLflow.",
                dataset=label,
            )
        super().__init__(filepath=PurePosixPath(str(filepath).removeprefix("file://")), version=version)
        self._flavor = flavor
        self._save_args = dict(save_args or {})
        self._load_args = dict(load_args or {})
        self.metadata = metadata
        self._init_flavor(flavor, pyfunc_workflow)

    def _label(self) -> str:
        return f"{type(self).__name__}(flavor '{self._flavor}', filepath '{self._filepath}')"

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "flavor": self._flavor,
            "pyfunc_workflow": self._pyfunc_workflow,
            "version": self._version,
            "save_args": self._save_args,
            "load_args": self._load_args,
        }

    @property
    def local_path(self) -> PurePosixPath:
        """Where the next save writes (a fresh version folder when versioned)."""
        return self._get_save_path()

    def load(self) -> Any:
        path = Path(str(self._get_load_path()))
        if not path.exists():
            raise MlflowDatasetError(f"{self._label()}: no model at '{path}'. Save one first.", dataset=self._label())
        return self._load_from(str(path))

    def save(self, data: Any) -> None:
        path = Path(str(self._get_save_path()))
        module = self._module()
        args = apply_requirements(self._save_args, self._requirements_flavor(), data, self._label())
        path.parent.mkdir(parents=True, exist_ok=True)
        if self._version is not None:  # a fresh version folder: Kedro checked it does not exist
            self._write(module, data, path, args)
        else:
            _replace_folder(path, lambda tmp: self._write(module, data, tmp, args))

    def _exists(self) -> bool:
        try:
            path = self._get_load_path()
        except DatasetError:
            return False
        return Path(str(path)).exists()

    def _write(self, module: ModuleType, model: Any, path: Path, args: dict[str, Any]) -> None:
        if self._pyfunc_workflow == "loader_module":
            import mlflow.pyfunc

            with model_as_data(model) as data_path:
                mlflow.pyfunc.save_model(path=str(path), loader_module=self._flavor, data_path=data_path, **args)
        elif self._pyfunc_workflow == "python_model":
            module.save_model(path=str(path), python_model=model, **args)
        else:  # every flavor's save_model takes the model first
            module.save_model(model, path=str(path), **args)


def _replace_folder(path: Path, write: Callable[[Path], None]) -> None:
    """Write a new model folder at ``path`` through a temporary sibling, then swap it in.

    The old folder (if any) is removed only after the new one is complete and in place; when
    writing fails the old one is untouched and the temporary folder is removed.
    """
    token = uuid.uuid4().hex[:8]
    new = path.with_name(f".{path.name}.new-{token}")
    try:
        write(new)
    except BaseException:
        _remove(new)
        raise
    if not os.path.lexists(path):
        os.rename(new, path)
        return
    if _exchange(new, path):  # new is now the old model
        _remove(new)
        return
    old = path.with_name(f".{path.name}.old-{token}")
    os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(old, path)
        _remove(new)
        raise
    _remove(old)


def _exchange(first: Path, second: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False when unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink()
