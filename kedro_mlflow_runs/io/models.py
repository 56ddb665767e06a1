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

import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any, Final

from kedro.io.core import AbstractDataset

from .._redact import redact_uri, safe_cause
from ..errors import KedroMlflowRunsError, MlflowDatasetError
from ..tracking.progress import transfer_status
from ._flavors import FlavoredDataset, accepts, model_as_data
from ._requirements import apply_requirements
from ._run import RunTarget, pinned_store, select_run, store_target, tracker, tracking_error, wrapped_errors
from .local_models import MlflowModelSaverDataset
from .model_registry import MlflowModelRegistryDataset
from .naming import NamedDataset

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

DEFAULT_MODEL_NAME: Final = "model"


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


class MlflowModelLoggerDataset(FlavoredDataset, NamedDataset, AbstractDataset[Any, Any]):
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
        self._model_uri = self._load_args.pop("model_uri", None)  # kedro-mlflow's: load this model instead
        if "artifact_path" in self._save_args and "name" not in self._save_args:
            self._save_args["name"] = self._save_args.pop("artifact_path")
        self.metadata = metadata
        self._init_flavor(flavor, pyfunc_workflow)

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
        self.validate()
        if self._model_uri:  # models:/<id>, models:/<name>@<alias>, runs:/...: no run selection
            target = store_target(self._kedro_run_id)
            uri = str(self._model_uri)
        else:
            target = select_run(self._label(), self._run_id, "load", self._kedro_run_id)
            uri = f"runs:/{target.run_id}/{self.model_name}"
        try:
            with pinned_store(target):
                return self._load_from(uri)
        except KedroMlflowRunsError:
            raise
        except Exception as exc:
            raise MlflowDatasetError(
                f"{self._label()} could not load model '{self.model_name}' from MLflow run "
                f"'{target.run_id}' ({uri}) in {redact_uri(target.tracking_uri)}: "
                f"{type(exc).__name__}: {redact_uri(str(exc), limit=2000)}. Check that the run logged a model "
                f"with this name (save_args.name) and flavor.",
                run_id=target.run_id or None,
                dataset=self._label(),
            ) from safe_cause(exc)

    def save(self, data: Any) -> None:
        module = self._module()
        target = select_run(self._label(), self._run_id, "save", self._kedro_run_id)
        args = dict(self._save_args)
        name = str(args.pop("name", None) or self._catalog_name or DEFAULT_MODEL_NAME)
        alias = args.pop("registered_model_alias", None)
        version_tags = args.pop("registered_model_version_tags", None) or {}
        args = apply_requirements(args, self._requirements_flavor(), data, self._label())
        with pinned_store(target):
            model_id = self._create_logged_model(target, name, args)
            try:
                with transfer_status(f"Logging model '{name}' to MLflow run {target.run_id[:8]}"):
                    info = self._log(module, data, name, target.run_id, model_id, args)
            except Exception as exc:
                tracker(target).fail_logged_model(model_id)
                if isinstance(exc, KedroMlflowRunsError):
                    raise
                raise tracking_error(self._label(), f"log model '{name}' into", target, exc) from safe_cause(exc)
        version = getattr(info, "registered_model_version", None)
        if version is not None and (alias or version_tags):
            registered = args["registered_model_name"]
            with wrapped_errors(self._label(), f"set alias/tags of '{registered}' version {version} from", target):
                tracker(target).label_model_version(registered, str(version), alias, version_tags)
        logger.info("Logged model '%s' into MLflow run %s (%s)", name, target.run_id, model_id)

    def _exists(self) -> bool:
        try:
            target = select_run(self._label(), self._run_id, "load", self._kedro_run_id)
            return tracker(target).has_logged_model(target.run_id, target.experiment_id, self.model_name)
        except Exception:
            return False

    # -- helpers ------------------------------------------------------------------------

    def _create_logged_model(self, target: RunTarget, name: str, args: dict[str, Any]) -> str:
        """Create the LoggedModel in the run's own experiment, linked to the run."""
        tags = args.get("tags")
        if target.attempt_id:  # a retry marks FAILED the models an attempt it repeats left PENDING
            tags = {**(tags or {}), "kedro.attempt": target.attempt_id}
        with wrapped_errors(self._label(), f"create model '{name}' in", target):
            return tracker(target).create_logged_model(
                target.run_id, name, experiment_id=target.experiment_id, params=args.pop("params", None),
                tags=tags, model_type=args.pop("model_type", None),
            )

    def _log(
        self, module: ModuleType, model: Any, name: str, run_id: str, model_id: str, args: dict[str, Any]
    ) -> Any:
        """Log the model; return MLflow's ``ModelInfo``."""
        ids = {"run_id": run_id, "model_id": model_id}
        if self._pyfunc_workflow == "loader_module":
            import mlflow.pyfunc

            with model_as_data(model) as data_path:
                return self._call_log(
                    mlflow.pyfunc, name, ids, {"loader_module": self._flavor, "data_path": data_path, **args}
                )
        if self._pyfunc_workflow == "python_model":
            return self._call_log(module, name, ids, {"python_model": model, **args})
        if accepts(module.log_model, "run_id") and accepts(module.log_model, "model_id"):
            return module.log_model(model, name=name, **ids, **args)
        return self._call_log(module, name, ids, {self._model_keyword(module): model, **args})

    @staticmethod
    def _call_log(module: ModuleType, name: str, ids: dict[str, str], kwargs: dict[str, Any]) -> Any:
        if accepts(module.log_model, "run_id") and accepts(module.log_model, "model_id"):
            return module.log_model(name=name, **ids, **kwargs)
        # A flavor whose log_model cannot be told the run (mlflow.pyfunc among them): MLflow's
        # generic logger, which each flavor's log_model wraps, saves it with the flavor's
        # save_model into the given run.
        from mlflow.models import Model

        return Model.log(artifact_path=None, name=name, flavor=module, **ids, **kwargs)

    def _model_keyword(self, module: ModuleType) -> str:
        keyword = _model_argument(module.save_model)
        if keyword is None:
            raise MlflowDatasetError(
                f"{self._label()}: cannot tell which argument of {self._flavor}.save_model takes "
                f"the model. Give its log_model run_id= and model_id= keyword arguments.",
                dataset=self._label(),
            )
        return keyword


#: Legacy names (the seed's and kedro-mlflow's): the same classes.
MlflowModelLoggerDataSet = MlflowModelLoggerDataset
MlflowModelTrackingDataset = MlflowModelLoggerDataset
MlflowModelSaverDataSet = MlflowModelSaverDataset
MlflowModelLocalFileSystemDataset = MlflowModelSaverDataset
