"""``KedroPipelineModel``: a Kedro inference pipeline as an MLflow pyfunc model (imports MLflow).

Logged as ``python_model``: MLflow cloudpickles this object (the inference pipeline, whose node
functions pickle by reference to the project package bundled in the model's ``code/``), and
stores each artifact (an inference input: estimator, encoder, parameter) as a pickle file under
``artifacts/``. ``load_context`` reads them back; ``predict`` runs the pipeline in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from mlflow.pyfunc.model import PythonModel

from ..core.catalog import is_parameter
from ..errors import PipelineModelError
from ._factory import check_inference, check_kpm_kwargs

__all__ = ["KedroPipelineModel"]


class KedroPipelineModel(PythonModel):
    """Runs a Kedro inference pipeline on the model input, with its bundled artifacts.

    Args:
        pipeline: the inference pipeline.
        input_name: its free input that receives the model input.
        output_name: its free output that ``predict`` returns (default: its only free output).
        runner: the Kedro runner ``predict`` uses (default ``SequentialRunner()``).
        copy_mode: ``MemoryDataset`` copy mode of every dataset (default ``assign``: nodes must
            not mutate their inputs), or ``{dataset: mode}``.
        artifact_names: the free inputs bundled as artifacts (default: all but ``input_name``).

    Raises:
        PipelineModelError: an argument is invalid (see ``pipeline_ml_factory``).
    """

    def __init__(
        self,
        pipeline: Any,
        input_name: str,
        *,
        output_name: str | None = None,
        runner: Any = None,
        copy_mode: str | Mapping[str, str] | None = None,
        artifact_names: tuple[str, ...] | None = None,
    ) -> None:
        from kedro.runner import SequentialRunner

        self.input_name, self.output_name = check_inference(pipeline, input_name, output_name)
        check_kpm_kwargs({"runner": runner, "copy_mode": copy_mode})
        self.pipeline = pipeline
        self.runner = runner if runner is not None else SequentialRunner()
        self.copy_mode = dict(copy_mode) if isinstance(copy_mode, Mapping) else copy_mode
        needed = sorted(pipeline.inputs() - {self.input_name})
        self.artifact_names = tuple(artifact_names) if artifact_names is not None else tuple(needed)
        missing = sorted(set(needed) - set(self.artifact_names))
        if missing:
            raise PipelineModelError(
                f"The inference pipeline needs {', '.join(missing)}, which are not among the model's artifacts.",
                dataset=missing[0])
        self._data: dict[str, Any] = {}

    # -- MLflow's PythonModel interface ---------------------------------------------------

    def load_context(self, context):  # type: ignore[no-untyped-def]  # no hints: MLflow reads them
        """Read every artifact (a pickle file MLflow downloaded) into memory."""
        import cloudpickle

        artifacts = dict(getattr(context, "artifacts", None) or {})
        missing = [name for name in self.artifact_names if name not in artifacts]
        if missing:
            raise PipelineModelError(
                f"The model has no artifact for inference input(s) {', '.join(missing)}; log it again with "
                f"pipeline_ml_factory or `kedro mlflow modelify`.", dataset=missing[0])
        data = {}
        for name in self.artifact_names:
            with open(artifacts[name], "rb") as file:
                data[name] = cloudpickle.load(file)
        self._data = data

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]  # no hints: MLflow reads them
        """Run the inference pipeline on ``model_input``; return its output.

        ``params`` override the bundled parameters: ``{"threshold": 0.7}`` replaces the value of the
        ``params:threshold`` input.

        Raises:
            PipelineModelError: a key of ``params`` is not a parameter of the inference pipeline, or
                the artifacts were not loaded.
        """
        from kedro.io import DataCatalog, MemoryDataset

        if set(self.artifact_names) - set(self._data):
            raise PipelineModelError("The model's artifacts are not loaded: load it with mlflow.pyfunc.load_model.")
        values = dict(self._data)
        for key, value in (params or {}).items():
            name = key if is_parameter(key) else f"params:{key}"
            if name not in values:
                known = ", ".join(n.removeprefix("params:") for n in self.artifact_names if is_parameter(n))
                raise PipelineModelError(
                    f"predict params key {key!r} is not a parameter of the inference pipeline (its parameters: "
                    f"{known or 'none'}).", key=key)
            values[name] = value
        values[self.input_name] = model_input
        catalog = DataCatalog(datasets={
            name: MemoryDataset(data=value, copy_mode=self._copy_mode(name)) for name, value in values.items()})
        self.runner.run(self.pipeline, catalog)
        return catalog.load(self.output_name)

    # -- helpers ----------------------------------------------------------------------------

    def _copy_mode(self, name: str) -> Literal["deepcopy", "copy", "assign"]:
        mode = self.copy_mode.get(name, "assign") if isinstance(self.copy_mode, dict) else self.copy_mode or "assign"
        return cast(Literal["deepcopy", "copy", "assign"], mode)  # checked in __init__ (check_kpm_kwargs)

    def _bind(self, values: Mapping[str, Any]) -> KedroPipelineModel:
        """Use ``values`` as the artifacts (in the training process, before logging)."""
        self._data = {name: values[name] for name in self.artifact_names}
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_data"] = {}  # the artifacts are files of the model, not part of python_model.pkl
        return state

    def __repr__(self) -> str:
        return (f"KedroPipelineModel(input_name={self.input_name!r}, output_name={self.output_name!r}, "
                f"artifacts={list(self.artifact_names)}, runner={type(self.runner).__name__})")

