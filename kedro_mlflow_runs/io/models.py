"""Model datasets: log a model into the run, save it to a local folder, load a registered one.

```yaml
my_sklearn_model:
  type: kedro_mlflow_runs.io.models.MlflowModelLoggerDataset
  flavor: mlflow.sklearn

my_custom_model:
  type: kedro_mlflow_runs.io.models.MlflowModelLoggerDataset
  flavor: my_package.custom_mlflow_flavor
  pyfunc_workflow: python_model   # or loader_module
```

Every dataset keeps plain data only (the flavor is a module *name*), so it pickles and
deep-copies; MLflow is imported when a model is saved or loaded.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

from kedro.io.core import (
    AbstractDataset,
    AbstractVersionedDataset,
    DatasetError,
    Version,
)

from ..config import redact_uri, safe_cause
from ..context import store_uris
from ..errors import KedroMlflowRunsError, MlflowDatasetError
from ._flavors import PYFUNC, accepts, flavor_module, model_as_data, validate_flavor
from ._naming import NamedDataset
from ._requirements import apply_requirements
from ._run import RunTarget, client, pinned_store, select_run, tracking_error

__all__ = [
    "MlflowModelLocalFileSystemDataset",
    "MlflowModelLoggerDataSet",
    "MlflowModelLoggerDataset",
    "MlflowModelRegistryDataset",
    "MlflowModelSaverDataSet",
    "MlflowModelSaverDataset",
    "MlflowModelTrackingDataset",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "model"


class _FlavorMixin:
    """What the logger and the saver share: a validated flavor and its pyfunc workflow."""

    _flavor: str
    _pyfunc_workflow: str | None
    _save_args: dict[str, Any]
    _load_args: dict[str, Any]

    def _init_flavor(self, flavor: str, pyfunc_workflow: str | None, dataset: str) -> None:
        if flavor == PYFUNC and pyfunc_workflow is None:
            pyfunc_workflow = "python_model"
        validate_flavor(flavor, pyfunc_workflow, dataset)
        self._flavor = flavor
        self._pyfunc_workflow = pyfunc_workflow

    def _module(self) -> ModuleType:
        return flavor_module(self._flavor, self._label())

    def _label(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _load_from(self, uri: str) -> Any:
        """Load the model at ``uri`` (a local path or an MLflow model URI)."""
        if self._pyfunc_workflow == "loader_module":
            import mlflow.pyfunc

            return mlflow.pyfunc.load_model(uri, **self._load_args)
        return self._module().load_model(uri, **self._load_args)


def _model_argument(function: Callable[..., Any]) -> str | None:
    """The name of the first parameter of a flavor's save/log function that is not a path."""
    import inspect

    for param in inspect.signature(function).parameters.values():
        if param.name not in ("path", "artifact_path", "name") and param.kind in (
            param.POSITIONAL_ONLY,
            param.POSITIONAL_OR_KEYWORD,
        ):
            return param.name
    return None


class MlflowModelLoggerDataset(_FlavorMixin, NamedDataset, AbstractDataset[Any, Any]):
    """Log a model into an MLflow run with its flavor's ``log_model``; load it back.

    Which run is used follows the run-selection table (see ``docs/datasets.md``): the active
    run of the ``kedro run``, or ``run_id``. The dataset never starts or ends a run.

    The model is logged as ``name`` (``save_args.name``, else the catalog entry, else
    ``"model"``) and loads from ``runs:/<run_id>/<name>``. Requirements are derived fast by
    default (see ``docs/performance.md``); ``save_args.pip_requirements`` or
    ``save_args.requirements: infer`` restore MLflow's inference.

    Args:
        flavor: module path of the flavor (``mlflow.sklearn``, or your own module).
        run_id: the run to log into / load from; None: the active run.
        pyfunc_workflow: ``python_model`` or ``loader_module`` (see ``_flavors``).
        load_args: passed to the flavor's ``load_model``.
        save_args: passed to the flavor's ``log_model`` (``name``, ``registered_model_name``,
            ``signature``, ``input_example``, ``pip_requirements``, ...), plus
            ``requirements: fast | infer``.
        metadata: free-form metadata, ignored by the dataset.

    Raises:
        MlflowDatasetError: at creation, when the flavor or workflow cannot work.
    """

    def __init__(
        self,
        flavor: str,
        run_id: str | None = None,
        pyfunc_workflow: str | None = None,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._flavor = flavor
        self._run_id = str(run_id) if run_id else None
        self._save_args = dict(save_args or {})
        self._load_args = dict(load_args or {})
        if "artifact_path" in self._save_args and "name" not in self._save_args:
            self._save_args["name"] = self._save_args.pop("artifact_path")
        self.metadata = metadata
        self._init_flavor(flavor, pyfunc_workflow, self._label())

    @property
    def model_name(self) -> str:
        """The name the model is logged under."""
        return str(self._save_args.get("name") or self._catalog_name or DEFAULT_MODEL_NAME)

    def _label(self) -> str:
        entry = f"catalog entry '{self._catalog_name}', " if self._catalog_name else ""
        return f"{type(self).__name__}({entry}flavor '{self._flavor}')"

    def _describe(self) -> dict[str, Any]:
        return {
            "flavor": self._flavor,
            "run_id": self._run_id,
            "pyfunc_workflow": self._pyfunc_workflow,
            "name": self.model_name,
            "save_args": self._save_args,
            "load_args": self._load_args,
        }

    def load(self) -> Any:
        target = select_run(self._label(), self._run_id, "load", self._kedro_run_id)
        uri = f"runs:/{target.run_id}/{self.model_name}"
        try:
            with pinned_store(target.tracking_uri, target.registry_uri):
                return self._load_from(uri)
        except KedroMlflowRunsError:
            raise
        except Exception as exc:
            raise MlflowDatasetError(
                f"{self._label()} could not load model '{self.model_name}' from MLflow run "
                f"'{target.run_id}' ({uri}) in {redact_uri(target.tracking_uri)}: "
                f"{type(exc).__name__}: {redact_uri(str(exc))}. Check that the run logged a model with this name "
                f"(save_args.name) and flavor."
            ) from safe_cause(exc)

    def save(self, data: Any) -> None:
        target = select_run(self._label(), self._run_id, "save", self._kedro_run_id)
        module = self._module()
        args = dict(self._save_args)
        name = str(args.pop("name", None) or self._catalog_name or DEFAULT_MODEL_NAME)
        args = apply_requirements(args, self._requirements_flavor(module), data, self._label())
        with pinned_store(target.tracking_uri, target.registry_uri):
            model_id = self._create_logged_model(target, name, args)
            try:
                self._log(module, data, name, target.run_id, model_id, args)
            except Exception as exc:
                _mark_failed(target, model_id)
                if isinstance(exc, KedroMlflowRunsError):
                    raise
                raise tracking_error(self._label(), f"log model '{name}' into", target, exc) from safe_cause(exc)
        logger.info("Logged model '%s' into MLflow run %s (%s)", name, target.run_id, model_id)

    def _exists(self) -> bool:
        try:
            target = select_run(self._label(), self._run_id, "load", self._kedro_run_id)
            found = client(target).search_logged_models(
                experiment_ids=[target.experiment_id],
                filter_string=f"source_run_id = '{target.run_id}' AND name = '{self.model_name}'",
                max_results=1,
            )
            return len(found) > 0
        except Exception:
            return False

    # -- helpers ------------------------------------------------------------------------

    def _requirements_flavor(self, module: ModuleType) -> ModuleType:
        if self._pyfunc_workflow == "loader_module":
            import mlflow.pyfunc

            return mlflow.pyfunc
        return module

    def _create_logged_model(self, target: RunTarget, name: str, args: dict[str, Any]) -> str:
        """Create the LoggedModel in the run's own experiment, linked to the run."""
        mlflow_client = client(target)
        try:
            run = mlflow_client.get_run(target.run_id)
            params = {**{k: str(v) for k, v in (args.pop("params", None) or {}).items()}, **run.data.params}
            tags = args.get("tags")
            model = mlflow_client.create_logged_model(
                experiment_id=target.experiment_id or str(run.info.experiment_id),
                name=name,
                source_run_id=target.run_id,
                params=params,
                tags={str(k): str(v) for k, v in tags.items()} if tags else None,
                model_type=args.pop("model_type", None),
            )
        except Exception as exc:
            raise tracking_error(self._label(), f"create model '{name}' in", target, exc) from safe_cause(exc)
        return str(model.model_id)

    def _log(
        self, module: ModuleType, model: Any, name: str, run_id: str, model_id: str, args: dict[str, Any]
    ) -> None:
        ids = {"run_id": run_id, "model_id": model_id}
        if self._pyfunc_workflow == "loader_module":
            import mlflow.pyfunc

            with model_as_data(model) as data_path:
                self._call_log(
                    mlflow.pyfunc, name, ids, {"loader_module": self._flavor, "data_path": data_path, **args}
                )
            return
        if self._pyfunc_workflow == "python_model":
            self._call_log(module, name, ids, {"python_model": model, **args})
            return
        if accepts(module.log_model, "run_id") and accepts(module.log_model, "model_id"):
            module.log_model(model, name=name, **ids, **args)
            return
        self._call_log(module, name, ids, {self._model_keyword(module): model, **args})

    @staticmethod
    def _call_log(module: ModuleType, name: str, ids: dict[str, str], kwargs: dict[str, Any]) -> None:
        if accepts(module.log_model, "run_id") and accepts(module.log_model, "model_id"):
            module.log_model(name=name, **ids, **kwargs)
            return
        # A flavor whose log_model cannot be told the run (mlflow.pyfunc among them): MLflow's
        # generic logger, which each flavor's log_model wraps, saves it with the flavor's
        # save_model into the given run.
        from mlflow.models import Model

        Model.log(artifact_path=None, name=name, flavor=module, **ids, **kwargs)

    def _model_keyword(self, module: ModuleType) -> str:
        keyword = _model_argument(module.save_model)
        if keyword is None:
            raise MlflowDatasetError(
                f"{self._label()}: cannot tell which argument of {self._flavor}.save_model takes "
                f"the model. Give its log_model run_id= and model_id= keyword arguments."
            )
        return keyword


def _mark_failed(target: RunTarget, model_id: str) -> None:
    try:
        model = client(target).get_logged_model(model_id)
        if str(model.status) not in ("READY", "FAILED", "LoggedModelStatus.READY", "LoggedModelStatus.FAILED"):
            client(target).finalize_logged_model(model_id, "FAILED")
    except Exception:
        logger.debug("Could not mark model %s as FAILED", model_id, exc_info=True)


# --- local folder ------------------------------------------------------------------------


class MlflowModelSaverDataset(_FlavorMixin, AbstractVersionedDataset[Any, Any]):
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
            raise MlflowDatasetError(
                f"{type(self).__name__}(flavor '{flavor}', filepath '{filepath}'): only local "
                f"paths are supported. Save locally and wrap the dataset in MlflowArtifactDataset "
                f"to store it in MLflow."
            )
        super().__init__(filepath=PurePosixPath(str(filepath).removeprefix("file://")), version=version)
        self._flavor = flavor
        self._save_args = dict(save_args or {})
        self._load_args = dict(load_args or {})
        self.metadata = metadata
        self._init_flavor(flavor, pyfunc_workflow, self._label())

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
            raise MlflowDatasetError(f"{self._label()}: no model at '{path}'. Save one first.")
        return self._load_from(str(path))

    def save(self, data: Any) -> None:
        path = Path(str(self._get_save_path()))
        module = self._module()
        requirements_flavor = module
        if self._pyfunc_workflow == "loader_module":
            import mlflow.pyfunc

            requirements_flavor = mlflow.pyfunc
        args = apply_requirements(self._save_args, requirements_flavor, data, self._label())
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


# --- registry -----------------------------------------------------------------------------


class MlflowModelRegistryDataset(AbstractDataset[None, Any]):
    """Load a registered model by version, alias, or the latest version. Read-only.

    Kedro's catalog reserves the ``version:`` key (and drops it with a warning), so in
    ``catalog.yml`` write the version as ``model_version:``; in Python either works.

    Args:
        model_name: the registered model's name.
        version: a version number; exclusive with ``alias``.
        alias: a version alias (``champion``); exclusive with ``version``.
        flavor: module path of the flavor whose ``load_model`` is used.
        load_args: passed to ``load_model``.
        metadata: free-form metadata, ignored by the dataset.
        model_version: the catalog spelling of ``version``.
    """

    def __init__(
        self,
        model_name: str,
        version: int | str | None = None,
        alias: str | None = None,
        flavor: str = PYFUNC,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        model_version: int | str | None = None,
    ) -> None:
        if version is not None and model_version is not None and str(version) != str(model_version):
            raise MlflowDatasetError(
                f"{type(self).__name__}(model '{model_name}'): version ({version}) and "
                f"model_version ({model_version}) disagree; give one."
            )
        version = version if version is not None else model_version
        self._model_name = model_name
        self._version = None if version is None else str(version)
        self._alias = alias
        self._flavor = flavor
        self._load_args = dict(load_args or {})
        self.metadata = metadata
        if version is not None and alias is not None:
            raise MlflowDatasetError(
                f"{self._label()}: give either version ({version}) or alias ('{alias}'), not both."
            )
        module = flavor_module(flavor, self._label())
        if not callable(getattr(module, "load_model", None)):
            raise MlflowDatasetError(f"{self._label()}: flavor '{flavor}' has no load_model function.")

    def _label(self) -> str:
        return f"{type(self).__name__}(model '{self._model_name}', flavor '{self._flavor}')"

    @property
    def model_uri(self) -> str:
        """``models:/<name>/<version>``, ``models:/<name>@<alias>`` or ``models:/<name>/latest``."""
        if self._alias:
            return f"models:/{self._model_name}@{self._alias}"
        return f"models:/{self._model_name}/{self._version or 'latest'}"

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "version": self._version, "alias": self._alias,
                "flavor": self._flavor, "load_args": self._load_args}

    def load(self) -> Any:
        tracking_uri, registry_uri = store_uris()
        try:
            with pinned_store(tracking_uri, registry_uri):
                return flavor_module(self._flavor, self._label()).load_model(self.model_uri, **self._load_args)
        except KedroMlflowRunsError:
            raise
        except Exception as exc:
            raise MlflowDatasetError(
                f"{self._label()} could not load {self.model_uri} from the registry at "
                f"{redact_uri(registry_uri or tracking_uri)}: {type(exc).__name__}: {redact_uri(str(exc))}. Check "
                f"the model name, version or alias."
            ) from safe_cause(exc)

    def save(self, data: Any) -> None:
        raise MlflowDatasetError(
            f"{self._label()} is read-only. To register a model, save it with "
            f"MlflowModelLoggerDataset and save_args.registered_model_name: {self._model_name}."
        )


#: Legacy names (the seed's and kedro-mlflow's): the same classes.
MlflowModelLoggerDataSet = MlflowModelLoggerDataset
MlflowModelTrackingDataset = MlflowModelLoggerDataset
MlflowModelSaverDataSet = MlflowModelSaverDataset
MlflowModelLocalFileSystemDataset = MlflowModelSaverDataset
