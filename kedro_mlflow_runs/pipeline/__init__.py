"""Kedro inference pipelines logged as one MLflow model.

:func:`pipeline_ml_factory` returns the training pipeline (a :class:`PipelineML`) remembering the
inference pipeline; when a tracked ``kedro run`` of it succeeds, the plugin logs a
:class:`KedroPipelineModel` (the inference pipeline and its artifacts) into the run. See
``docs/pipeline-models.md``.

Importing this package does not import MLflow: ``KedroPipelineModel`` (a ``mlflow.pyfunc.PythonModel``)
is imported on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._factory import InferenceSpec, PipelineML, pipeline_ml_factory

if TYPE_CHECKING:  # pragma: no cover
    from ._model import KedroPipelineModel

__all__ = ["InferenceSpec", "KedroPipelineModel", "PipelineML", "pipeline_ml_factory"]


def __getattr__(name: str) -> Any:
    if name == "KedroPipelineModel":
        from ._model import KedroPipelineModel

        return KedroPipelineModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
