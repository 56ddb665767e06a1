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
import inspect
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from ..config import safe_cause
from ..errors import MlflowDatasetError

__all__ = [
    "PYFUNC",
    "PYFUNC_WORKFLOWS",
    "accepts",
    "flavor_module",
    "model_as_data",
    "validate_flavor",
]

PYFUNC = "mlflow.pyfunc"
PYFUNC_WORKFLOWS = ("python_model", "loader_module")
_REQUIRED = ("log_model", "save_model", "load_model")


def flavor_module(flavor: str, dataset: str) -> ModuleType:
    """Import the flavor module ``flavor``.

    Raises:
        MlflowDatasetError: the module cannot be imported.
    """
    if not isinstance(flavor, str) or not flavor.strip():
        raise MlflowDatasetError(
            f"{dataset}: `flavor` must be a module path such as 'mlflow.sklearn', got {flavor!r}."
        )
    try:
        return importlib.import_module(flavor)
    except ImportError as exc:
        raise MlflowDatasetError(
            f"{dataset}: flavor '{flavor}' cannot be imported ({exc}). Use a built-in MLflow "
            f"flavor such as 'mlflow.sklearn', or the module path of your own flavor, and check "
            f"that its package is installed."
        ) from safe_cause(exc)


def validate_flavor(flavor: str, pyfunc_workflow: str | None, dataset: str) -> None:
    """Check at catalog creation that ``flavor`` and ``pyfunc_workflow`` can work together.

    Raises:
        MlflowDatasetError: unknown module, missing functions, or an unusable workflow.
    """
    module = flavor_module(flavor, dataset)
    missing = [name for name in _REQUIRED if not callable(getattr(module, name, None))]
    if missing:
        raise MlflowDatasetError(
            f"{dataset}: flavor '{flavor}' is not an MLflow flavor: it has no "
            f"{', '.join(missing)} function(s). A flavor module must expose log_model, "
            f"save_model and load_model."
        )
    if pyfunc_workflow is None:
        return
    if pyfunc_workflow not in PYFUNC_WORKFLOWS:
        raise MlflowDatasetError(
            f"{dataset}: pyfunc_workflow must be one of {', '.join(PYFUNC_WORKFLOWS)} (or unset), "
            f"got {pyfunc_workflow!r}."
        )
    if pyfunc_workflow == "python_model":
        if flavor != PYFUNC and not (
            _declares(module.log_model, "python_model") and _declares(module.save_model, "python_model")
        ):
            raise MlflowDatasetError(
                f"{dataset}: pyfunc_workflow 'python_model' needs a pyfunc-compatible flavor "
                f"(mlflow.pyfunc, or a module whose log_model and save_model take python_model=); "
                f"'{flavor}' is not. Use flavor: mlflow.pyfunc, or remove pyfunc_workflow."
            )
    elif flavor == PYFUNC or not callable(getattr(module, "_load_pyfunc", None)):
        raise MlflowDatasetError(
            f"{dataset}: pyfunc_workflow 'loader_module' needs a flavor module that can load "
            f"the model as a pyfunc (it must define _load_pyfunc(data_path)); '{flavor}' "
            f"{'is mlflow.pyfunc itself' if flavor == PYFUNC else 'does not'}. Use your flavor "
            f"module, or remove pyfunc_workflow."
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
