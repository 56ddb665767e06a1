"""Flavors: which module saves, logs and loads a model, and how a pyfunc workflow uses it.

A flavor is a module path (``mlflow.sklearn``, any built-in MLflow flavor, or a user's module)
exposing ``log_model``, ``save_model`` and ``load_model``. Datasets keep only the *name* of the
flavor (modules do not pickle); :func:`flavor_module` imports it when needed.

``pyfunc_workflow``:

- ``python_model``: the model object is passed as ``python_model=`` to the flavor's
  ``log_model`` / ``save_model``. The flavor must be ``mlflow.pyfunc`` or a module whose
  ``log_model`` and ``save_model`` declare a ``python_model`` parameter (a wrapper of pyfunc).
- ``loader_module``: the flavor module is the pyfunc loader: the model is written as data
  (a path to existing model files is used as is; any other object is pickled with
  cloudpickle into ``model.pkl``) and logged with ``mlflow.pyfunc`` as
  ``loader_module=<flavor>, data_path=<data>``. The flavor must define ``_load_pyfunc``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from .._redact import safe_cause
from ..errors import MlflowDatasetError
from .naming import ValidatedDataset

__all__ = [
    "PYFUNC",
    "PYFUNC_WORKFLOWS",
    "FlavoredDataset",
    "accepts",
    "check_flavor",
    "flavor_module",
    "model_as_data",
    "module_available",
    "validate_flavor",
]

PYFUNC: Final = "mlflow.pyfunc"
PYFUNC_WORKFLOWS: Final = ("python_model", "loader_module")
_REQUIRED: Final = ("log_model", "save_model", "load_model")


def flavor_module(flavor: str, dataset: str) -> ModuleType:
    """Import the flavor module ``flavor``.

    Raises:
        MlflowDatasetError: the module cannot be imported.
    """
    if not isinstance(flavor, str) or not flavor.strip():
        raise MlflowDatasetError(
            f"{dataset}: `flavor` must be a module path such as 'mlflow.sklearn', got {flavor!r}.", dataset=dataset)
    try:
        return importlib.import_module(flavor)
    except ImportError as exc:
        raise MlflowDatasetError(
            f"{dataset}: flavor '{flavor}' cannot be imported ({exc}). Use a built-in MLflow "
            f"flavor such as 'mlflow.sklearn', or the module path of your own flavor, and check "
            f"that its package is installed.",
            dataset=dataset,
        ) from safe_cause(exc)


def module_available(name: str) -> bool:
    """Whether module ``name`` can be imported, found without importing it or its parents.

    ``importlib.util.find_spec("mlflow.sklearn")`` would import ``mlflow`` (over a second) to
    read its ``__path__``; this walks the parents' specs instead.
    """
    if name in sys.modules:
        return True
    parent, _, _ = name.rpartition(".")
    try:
        if not parent or parent in sys.modules:
            return importlib.util.find_spec(name) is not None
        path = _search_path(parent)
        if path is None:
            return False
        return any(
            callable(getattr(finder, "find_spec", None)) and finder.find_spec(name, path) is not None
            for finder in sys.meta_path
        )
    except (ImportError, ValueError, AttributeError):
        return False


def _search_path(package: str) -> list[str] | None:
    """Where the submodules of ``package`` live, found without importing it."""
    parent, _, _ = package.rpartition(".")
    if not parent or parent in sys.modules:
        spec = importlib.util.find_spec(package)
    else:
        path = _search_path(parent)
        if path is None:
            return None
        spec = next((s for f in sys.meta_path if callable(getattr(f, "find_spec", None))
                     for s in [f.find_spec(package, path)] if s is not None), None)
    locations = getattr(spec, "submodule_search_locations", None) if spec is not None else None
    return list(locations) if locations is not None else None


def check_flavor(flavor: str, pyfunc_workflow: str | None, dataset: str) -> None:
    """The checks that need no import, run when the dataset is created (also with tracking off).

    Raises:
        MlflowDatasetError: the flavor module does not exist, or the workflow is unknown or
            cannot work with it.
    """
    if not isinstance(flavor, str) or not flavor.strip():
        raise MlflowDatasetError(
            f"{dataset}: `flavor` must be a module path such as 'mlflow.sklearn', got {flavor!r}.", dataset=dataset
        )
    if not module_available(flavor):
        raise MlflowDatasetError(
            f"{dataset}: flavor '{flavor}' cannot be imported (no module named '{flavor}'). Use a built-in "
            f"MLflow flavor such as 'mlflow.sklearn', or the module path of your own flavor, and check "
            f"that its package is installed.",
            dataset=dataset,
        )
    if pyfunc_workflow is not None and pyfunc_workflow not in PYFUNC_WORKFLOWS:
        raise MlflowDatasetError(
            f"{dataset}: pyfunc_workflow must be one of {', '.join(PYFUNC_WORKFLOWS)} (or unset), "
            f"got {pyfunc_workflow!r}.",
            dataset=dataset,
        )
    if pyfunc_workflow == "loader_module" and flavor == PYFUNC:
        raise MlflowDatasetError(
            f"{dataset}: pyfunc_workflow 'loader_module' needs a flavor module that can load the model "
            f"as a pyfunc (it must define _load_pyfunc(data_path)); '{flavor}' is mlflow.pyfunc itself. "
            f"Use your flavor module, or remove pyfunc_workflow.",
            dataset=dataset,
        )


def validate_flavor(flavor: str, pyfunc_workflow: str | None, dataset: str) -> None:
    """The full checks: the flavor's functions and the workflow (imports the flavor).

    Run when a tracked run starts (before any node) and on first save or load.

    Raises:
        MlflowDatasetError: unknown module, missing functions, or an unusable workflow.
    """
    check_flavor(flavor, pyfunc_workflow, dataset)
    module = flavor_module(flavor, dataset)
    missing = [name for name in _REQUIRED if not callable(getattr(module, name, None))]
    if missing:
        raise MlflowDatasetError(
            f"{dataset}: flavor '{flavor}' is not an MLflow flavor: it has no "
            f"{', '.join(missing)} function(s). A flavor module must expose log_model, "
            f"save_model and load_model.",
            dataset=dataset,
        )
    if pyfunc_workflow is None:
        return
    if pyfunc_workflow == "python_model":
        if flavor != PYFUNC and not (
            _declares(module.log_model, "python_model") and _declares(module.save_model, "python_model")
        ):
            raise MlflowDatasetError(
                f"{dataset}: pyfunc_workflow 'python_model' needs a pyfunc-compatible flavor "
                f"(mlflow.pyfunc, or a module whose log_model and save_model take python_model=); "
                f"'{flavor}' is not. Use flavor: mlflow.pyfunc, or remove pyfunc_workflow.",
                dataset=dataset,
            )
    elif not callable(getattr(module, "_load_pyfunc", None)):
        raise MlflowDatasetError(
            f"{dataset}: pyfunc_workflow 'loader_module' needs a flavor module that can load "
            f"the model as a pyfunc (it must define _load_pyfunc(data_path)); '{flavor}' does not. "
            f"Use your flavor module, or remove pyfunc_workflow.",
            dataset=dataset,
        )


def _declares(func: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def accepts(func: Callable[..., Any], name: str) -> bool:
    """Whether ``func`` takes keyword ``name`` (declared, or through ``**kwargs``)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


@contextlib.contextmanager
def model_as_data(model: Any) -> Iterator[str]:
    """A path holding ``model`` as data for the ``loader_module`` workflow.

    A ``str`` / ``PathLike`` naming existing files is used as is; any other object is
    pickled with cloudpickle into a temporary ``model.pkl``.
    """
    if isinstance(model, (str, os.PathLike)) and Path(model).exists():
        yield str(model)
        return
    import cloudpickle

    with tempfile.TemporaryDirectory(prefix="kmr-model-data-") as tmp:
        path = Path(tmp) / "model.pkl"
        with path.open("wb") as handle:
            cloudpickle.dump(model, handle)
        yield str(path)


class FlavoredDataset(ValidatedDataset):
    """What the model logger and saver share: a flavor, checked cheaply at creation and fully
    before first use; the module is imported only then (datasets keep its name, which pickles)."""

    _flavor: str
    _pyfunc_workflow: str | None
    _load_args: dict[str, Any]
    _validated: bool = False

    def _init_flavor(self, flavor: str, pyfunc_workflow: str | None) -> None:
        if flavor == PYFUNC and pyfunc_workflow is None:
            pyfunc_workflow = "python_model"
        check_flavor(flavor, pyfunc_workflow, self._label())
        self._flavor = flavor
        self._pyfunc_workflow = pyfunc_workflow

    def _label(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def validate(self) -> None:
        """The full flavor checks (imports the flavor); done once."""
        if not self._validated:
            validate_flavor(self._flavor, self._pyfunc_workflow, self._label())
            self._validated = True

    def _module(self) -> ModuleType:
        self.validate()
        return flavor_module(self._flavor, self._label())

    def _requirements_flavor(self) -> ModuleType:
        if self._pyfunc_workflow == "loader_module":
            import mlflow.pyfunc

            return mlflow.pyfunc
        return self._module()

    def _load_from(self, uri: str) -> Any:
        """Load the model at ``uri`` (a local path or an MLflow model URI)."""
        if self._pyfunc_workflow == "loader_module":
            self.validate()
            import mlflow.pyfunc

            return mlflow.pyfunc.load_model(uri, **self._load_args)
        return self._module().load_model(uri, **self._load_args)
