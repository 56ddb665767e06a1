"""``pipeline_ml_factory``: a training pipeline that remembers the inference pipeline to log as a model.

The result is a Kedro :class:`~kedro.pipeline.Pipeline` (a :class:`PipelineML`, made of the training
nodes only), so it composes and filters like any other. What makes it an ML pipeline is its
:class:`InferenceSpec`: the inference pipeline, its input, its output and the logging options,
validated here, at construction.

How a tracked ``kedro run`` finds the spec: Kedro hands ``before_pipeline_run`` the *filtered*
pipeline it built (always a plain ``Pipeline``), so the plugin looks the spec up on the
*registered* pipelines the run asked for (``run_params["pipeline_names"]``, else ``__default__``).
For that, a :class:`PipelineML` stays one through ``+`` (either side, ``sum()`` included), ``|``,
``-`` and ``&``: the result carries the specs of every ``PipelineML`` operand. No process-wide
list of specs exists: a spec lives exactly as long as the pipelines holding it.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping
from typing import Any

from kedro.pipeline import Pipeline

from ..core.catalog import is_parameter
from ..errors import PipelineModelError

__all__ = ["InferenceSpec", "PipelineML", "is_parameter", "pipeline_ml_factory"]

#: ``log_model_kwargs`` keys the plugin accepts (``mlflow.pyfunc.log_model`` arguments, plus ``requirements``).
LOG_MODEL_KEYS = frozenset({
    "name", "artifact_path", "registered_model_name", "signature", "input_example", "pip_requirements",
    "extra_pip_requirements", "conda_env", "code_paths", "await_registration_for", "metadata", "tags",
    "params", "model_type", "registered_model_alias", "registered_model_version_tags", "requirements",
})
#: ``log_model_kwargs`` keys the plugin sets itself.
_RESERVED_LOG_KEYS = frozenset({"python_model", "artifacts", "loader_module", "data_path", "run_id", "model_id"})
KPM_KEYS = frozenset({"runner", "copy_mode", "output_name"})
COPY_MODES = ("deepcopy", "copy", "assign")
DEFAULT_MODEL_NAME = "model"


class InferenceSpec:
    """What to log as a model when the training pipeline succeeds (validated; read-only).

    Attributes:
        training: the training pipeline given to the factory.
        inference: the inference pipeline logged as the model.
        input_name: the free input of ``inference`` that receives the model input at predict time.
        output_name: the free output of ``inference`` that ``predict`` returns.
        log_model_kwargs: the logging options (``name`` always set).
        kpm_kwargs: ``runner`` and ``copy_mode`` of the :class:`KedroPipelineModel`.
    """

    __slots__ = ("inference", "input_name", "kpm_kwargs", "log_model_kwargs", "output_name", "training")

    def __init__(self, training: Pipeline, inference: Pipeline, input_name: str,
                 log_model_kwargs: Mapping[str, Any] | None = None,
                 kpm_kwargs: Mapping[str, Any] | None = None) -> None:
        if not isinstance(training, Pipeline) or not isinstance(inference, Pipeline):
            raise PipelineModelError(
                f"pipeline_ml_factory needs Kedro Pipelines for training and inference, got "
                f"{type(training).__name__} and {type(inference).__name__}.")
        kpm = dict(kpm_kwargs or {})
        _check_keys(kpm, KPM_KEYS, "kpm_kwargs")
        self.training = training
        self.inference = inference
        self.input_name, self.output_name = check_inference(inference, input_name, kpm.pop("output_name", None))
        check_kpm_kwargs(kpm)
        self.kpm_kwargs = kpm
        self.log_model_kwargs = check_log_model_kwargs(log_model_kwargs)

    # -- the inference inputs, by where they come from ------------------------------------

    @property
    def artifacts(self) -> tuple[str, ...]:
        """Every free input of the inference pipeline but ``input_name``, sorted: bundled with the model."""
        return tuple(sorted(self.inference.inputs() - {self.input_name}))

    @property
    def trained(self) -> tuple[str, ...]:
        """The artifacts the training pipeline produces."""
        outputs = self.training.all_outputs()
        return tuple(name for name in self.artifacts if name in outputs)

    @property
    def parameters(self) -> tuple[str, ...]:
        """The artifacts that are Kedro parameters."""
        return tuple(name for name in self.artifacts if is_parameter(name))

    @property
    def persisted(self) -> tuple[str, ...]:
        """The other artifacts: they must be persisted catalog entries."""
        return tuple(n for n in self.artifacts if n not in self.trained and not is_parameter(n))

    @property
    def model_name(self) -> str:
        return str(self.log_model_kwargs["name"])

    def describe(self) -> str:
        """How to name this spec in messages."""
        return (f"pipeline_ml_factory(input_name='{self.input_name}', output '{self.output_name}', "
                f"model '{self.model_name}')")

    def __repr__(self) -> str:
        return f"<InferenceSpec {self.describe()}>"


def check_inference(inference: Pipeline, input_name: Any, output_name: Any = None) -> tuple[str, str]:
    """``(input_name, output_name)`` once they are valid for ``inference``; else a clear error."""
    free_inputs = sorted(inference.inputs())
    if not isinstance(input_name, str) or input_name not in free_inputs:
        raise PipelineModelError(
            f"input_name {input_name!r} is not a free input of the inference pipeline (its free inputs: "
            f"{', '.join(free_inputs) or 'none'}). Give the dataset the model receives at predict time.",
            dataset=str(input_name))
    if is_parameter(input_name):
        raise PipelineModelError(
            f"input_name {input_name!r} is a parameter; the model input must be a dataset. Parameters are "
            f"bundled with the model and can be overridden with predict(..., params=...).", dataset=input_name)
    free_outputs = sorted(inference.outputs())
    if output_name is None:
        if len(free_outputs) != 1:
            raise PipelineModelError(
                f"The inference pipeline must have exactly one free output, the prediction; it has "
                f"{len(free_outputs)}: {', '.join(free_outputs) or 'none'}. Say which one predict returns with "
                f"kpm_kwargs={{'output_name': ...}}, or remove the others.")
        return input_name, free_outputs[0]
    if output_name not in free_outputs:
        raise PipelineModelError(
            f"kpm_kwargs output_name {output_name!r} is not a free output of the inference pipeline (its free "
            f"outputs: {', '.join(free_outputs) or 'none'}).", dataset=str(output_name), key="output_name")
    return input_name, str(output_name)


def check_kpm_kwargs(kpm: Mapping[str, Any]) -> None:
    """``runner`` must be a picklable Kedro runner instance; ``copy_mode`` a mode or a dict of modes."""
    from kedro.runner import AbstractRunner

    runner = kpm.get("runner")
    if runner is not None:
        if not isinstance(runner, AbstractRunner):
            raise PipelineModelError(
                f"kpm_kwargs runner must be a Kedro runner instance (e.g. SequentialRunner()) or None, got "
                f"{runner!r}.", key="runner")
        try:
            pickle.dumps(runner)
        except Exception as exc:
            raise PipelineModelError(
                f"kpm_kwargs runner {type(runner).__name__} cannot be pickled into the model ({exc}); use "
                f"SequentialRunner() or ThreadRunner().", key="runner") from None
    copy_mode = kpm.get("copy_mode")
    modes = copy_mode.values() if isinstance(copy_mode, Mapping) else [] if copy_mode is None else [copy_mode]
    bad = [m for m in modes if m not in COPY_MODES]
    if bad:
        raise PipelineModelError(
            f"kpm_kwargs copy_mode must be one of {', '.join(COPY_MODES)} (or a dict of dataset name to mode), "
            f"got {bad[0]!r}.", key="copy_mode")


def check_log_model_kwargs(kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The logging options, normalised (``artifact_path`` becomes ``name``; ``signature`` defaults to auto)."""
    args = dict(kwargs or {})
    reserved = sorted(set(args) & _RESERVED_LOG_KEYS)
    if reserved:
        raise PipelineModelError(
            f"log_model_kwargs key {reserved[0]!r} is set by the plugin (the model is the inference pipeline); "
            f"remove it.", key=reserved[0])
    _check_keys(args, LOG_MODEL_KEYS, "log_model_kwargs")
    if "artifact_path" in args:
        path = args.pop("artifact_path")
        args.setdefault("name", path)
    if not args.get("name"):
        args["name"] = DEFAULT_MODEL_NAME
    args.setdefault("signature", "auto")
    signature = args["signature"]
    if isinstance(signature, str) and signature != "auto":
        raise PipelineModelError(
            f"log_model_kwargs signature must be 'auto', None or an mlflow.models.ModelSignature, got "
            f"{signature!r}.", key="signature")
    if args.get("requirements") not in (None, "fast", "infer"):
        raise PipelineModelError(
            f"log_model_kwargs requirements must be 'fast' or 'infer', got {args['requirements']!r}.",
            key="requirements")
    return args


def _check_keys(args: Mapping[str, Any], allowed: Iterable[str], what: str) -> None:
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise PipelineModelError(
            f"{what} has unknown key {unknown[0]!r}; known keys: {', '.join(sorted(allowed))}.", key=unknown[0])


class PipelineML(Pipeline):
    """A Kedro ``Pipeline`` of training nodes that carries the :class:`InferenceSpec` of its model(s).

    Build it with :func:`pipeline_ml_factory`. ``+``, ``|``, ``-`` and ``&`` with any pipeline give
    a ``PipelineML`` holding the specs of both sides; other transformations (filtering, ``tag``,
    namespacing, ``Pipeline([...])``) give a plain ``Pipeline``.
    """

    def __init__(self, nodes: Any, *, specs: Iterable[InferenceSpec] = ()) -> None:
        super().__init__(nodes)
        self._ml_specs: tuple[InferenceSpec, ...] = tuple(specs)

    @property
    def ml_specs(self) -> tuple[InferenceSpec, ...]:
        """The inference specs this pipeline carries (one per ``pipeline_ml_factory`` call in it)."""
        return self._ml_specs

    def _single(self) -> InferenceSpec:
        if len(self._ml_specs) != 1:
            raise PipelineModelError(
                f"This pipeline holds {len(self._ml_specs)} pipeline_ml_factory pipelines; use .ml_specs.")
        return self._ml_specs[0]

    training = property(lambda self: self._single().training, doc="The training pipeline (one spec only).")
    inference = property(lambda self: self._single().inference, doc="The inference pipeline (one spec only).")
    input_name = property(lambda self: self._single().input_name, doc="The model input (one spec only).")
    log_model_kwargs = property(lambda self: dict(self._single().log_model_kwargs), doc="Logging options.")
    kpm_kwargs = property(lambda self: dict(self._single().kpm_kwargs), doc="KedroPipelineModel options.")

    def _with_specs(self, result: Any, other: Any) -> Any:
        if not isinstance(result, Pipeline):
            return result
        specs = list(self._ml_specs)
        specs += [s for s in getattr(other, "ml_specs", ()) if s not in specs]
        return PipelineML(result, specs=specs)

    def __add__(self, other: Any) -> Any:
        return self._with_specs(super().__add__(other), other)

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, int) and other == 0:  # sum([...])
            return self
        if not isinstance(other, Pipeline):
            return NotImplemented
        return self._with_specs(Pipeline.__add__(other, self), other)

    def __or__(self, other: Any) -> Any:
        return self._with_specs(super().__or__(other), other)

    def __ror__(self, other: Any) -> Any:
        if not isinstance(other, Pipeline):
            return NotImplemented
        return self._with_specs(Pipeline.__or__(other, self), other)

    def __sub__(self, other: Any) -> Any:
        return self._with_specs(super().__sub__(other), None)

    def __and__(self, other: Any) -> Any:
        return self._with_specs(super().__and__(other), other)


def pipeline_ml_factory(
    training: Pipeline,
    inference: Pipeline,
    input_name: str,
    log_model_kwargs: Mapping[str, Any] | None = None,
    kpm_kwargs: Mapping[str, Any] | None = None,
) -> PipelineML:
    """The training pipeline, remembering ``inference`` to log as one MLflow model when a tracked run succeeds.

    Args:
        training: the pipeline that produces the model's artifacts (estimator, encoders, ...).
        inference: the pipeline the model runs at predict time.
        input_name: the free input of ``inference`` fed with the model input.
        log_model_kwargs: ``name`` (default ``model``; ``artifact_path`` accepted), ``signature``
            (``"auto"``, the default, ``None`` or a ``ModelSignature``), ``input_example``,
            ``registered_model_name`` (+ ``registered_model_alias``/``registered_model_version_tags``),
            ``pip_requirements``/``extra_pip_requirements``/``conda_env``, ``requirements``
            (``fast``, the default, or ``infer``), ``code_paths``, ``metadata``, ``tags``, ...
        kpm_kwargs: ``runner`` (a Kedro runner instance, default ``SequentialRunner()``),
            ``copy_mode`` (one mode or ``{dataset: mode}``; default ``assign``) and ``output_name``
            (needed when the inference pipeline has several free outputs).

    Returns:
        A :class:`PipelineML` made of the training nodes.

    Raises:
        PipelineModelError: ``input_name`` is not a free input of ``inference``; ``inference`` has
            no single free output and no ``output_name``; an option is unknown or invalid.
    """
    spec = InferenceSpec(training, inference, input_name, log_model_kwargs, kpm_kwargs)
    return PipelineML(training, specs=[spec])
