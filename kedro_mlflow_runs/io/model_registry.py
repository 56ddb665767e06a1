"""MlflowModelRegistryDataset: load a registered model by version, alias, or the latest version.

```yaml
champion:
  type: kedro_mlflow_runs.io.models.MlflowModelRegistryDataset
  model_name: classifier
  alias: champion            # or model_version: 3
```
"""

from __future__ import annotations

import warnings
from typing import Any

from kedro.io.core import AbstractDataset

from .._redact import redact_uri, safe_cause
from ..errors import KedroMlflowRunsError, MlflowDatasetError
from ._flavors import PYFUNC, check_flavor, flavor_module
from ._run import pinned_store, store_target
from .naming import NamedDataset

__all__ = ["MlflowModelRegistryDataset"]



class MlflowModelRegistryDataset(NamedDataset, AbstractDataset[None, Any]):
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
        stage_or_version: int | str | None = None,
        pyfunc_workflow: str | None = None,
    ) -> None:
        if stage_or_version is not None and str(stage_or_version) != "latest":  # kedro-mlflow's argument
            if str(stage_or_version).isdigit():
                model_version = model_version if model_version is not None else stage_or_version
            else:
                warnings.warn(
                    f"{type(self).__name__}(model '{model_name}'): stage_or_version '{stage_or_version}' is a "
                    f"registry stage; MLflow deprecated stages: give the version an alias and use `alias:`.",
                    FutureWarning, stacklevel=2)
                self._stage: str | None = str(stage_or_version)
        del pyfunc_workflow  # kedro-mlflow's; loading goes through the flavor's load_model either way
        if version is not None and model_version is not None and str(version) != str(model_version):
            raise MlflowDatasetError(
                f"{type(self).__name__}(model '{model_name}'): version ({version}) and "
                f"model_version ({model_version}) disagree; give one.", dataset=type(self).__name__)
        version = version if version is not None else model_version
        self._model_name = model_name
        self._version = None if version is None else str(version)
        self._alias = alias
        self._flavor = flavor
        self._load_args = dict(load_args or {})
        self.metadata = metadata
        if version is not None and alias is not None:
            raise MlflowDatasetError(
                f"{self._label()}: give either version ({version}) or alias ('{alias}'), not both.",
                dataset=self._label())
        check_flavor(flavor, None, self._label())

    def _label(self) -> str:
        return f"{type(self).__name__}(model '{self._model_name}', flavor '{self._flavor}')"

    _stage: str | None = None

    @property
    def model_uri(self) -> str:
        """``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``models:/<name>/<stage>`` (deprecated)
        or ``models:/<name>/latest``."""
        if self._alias:
            return f"models:/{self._model_name}@{self._alias}"
        if self._stage:
            return f"models:/{self._model_name}/{self._stage}"
        return f"models:/{self._model_name}/{self._version or 'latest'}"

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "version": self._version, "alias": self._alias,
                "flavor": self._flavor, "load_args": self._load_args}

    def load(self) -> Any:
        store = store_target(self._kedro_run_id)
        module = flavor_module(self._flavor, self._label())
        if not callable(getattr(module, "load_model", None)):
            raise MlflowDatasetError(f"{self._label()}: flavor '{self._flavor}' has no load_model function.",
                                     dataset=self._label())
        try:
            with pinned_store(store):
                return module.load_model(self.model_uri, **self._load_args)
        except KedroMlflowRunsError:
            raise
        except Exception as exc:
            raise MlflowDatasetError(
                f"{self._label()} could not load {self.model_uri} from the registry at "
                f"{redact_uri(store.registry_uri or store.tracking_uri)}: {type(exc).__name__}: "
                f"{redact_uri(str(exc), limit=2000)}. Check the model name, version or alias.",
                dataset=self._label()) from safe_cause(exc)

    def save(self, data: Any) -> None:
        raise MlflowDatasetError(
            f"{self._label()} is read-only. To register a model, save it with "
            f"MlflowModelLoggerDataset and save_args.registered_model_name: {self._model_name}.", dataset=self._label())
