"""Tracked runs of ``pipeline_ml_factory`` pipelines: plan at the start, log the model at the successful end.

``before_pipeline_run`` calls :func:`plan_pipeline_models`. For each inference spec carried by the
registered pipelines this run asked for, it

- warns and logs nothing when the (filtered) pipeline does not produce every artifact the
  training makes, naming what is missing (with ``--only-missing-outputs``, an artifact that
  exists already counts as not produced: Kedro may skip its node);
- fails the run before any node when an artifact that training does not make is not a
  persisted catalog entry;
- keeps, in the session process, the data of in-memory artifacts (and a sample of the model
  input) that Kedro would release before the end of the run;
- registers a ``TrackedRun.before_success`` step that logs the model, so it is logged only
  when the pipeline succeeded, once, by the process that ends the run (never in a worker).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from ..compat.kedro_datasets import before_release, is_ephemeral
from ..core.catalog import is_parameter
from ..core.children import one_group, set_group
from ..errors import PipelineModelError
from ._factory import InferenceSpec

__all__ = ["plan_pipeline_models", "specs_for_run"]

logger = logging.getLogger(__name__)


def specs_for_run(run_params: Mapping[str, Any], pipeline: Any) -> list[InferenceSpec]:
    """The inference specs of the registered pipelines named in ``run_params`` (and of ``pipeline``)."""
    specs: list[InferenceSpec] = list(getattr(pipeline, "ml_specs", ()))
    names = run_params.get("pipeline_names") or ["__default__"]
    try:
        from kedro.framework.project import pipelines
    except ImportError:  # pragma: no cover
        return specs
    for name in names:
        try:
            registered = pipelines[name]
        except Exception:  # no project configured (a runner used by hand), or not registered
            continue
        specs += [s for s in getattr(registered, "ml_specs", ()) if s not in specs]
    return specs


def plan_pipeline_models(run_params: Mapping[str, Any], pipeline: Any, catalog: Any, tracked: Any) -> None:
    """Register the model-logging steps of this run's ``pipeline_ml_factory`` pipelines (see module docstring).

    Raises:
        PipelineModelError: an inference input is neither produced by training, a parameter, nor
            a persisted catalog entry.
    """
    specs = specs_for_run(run_params, pipeline)
    if not specs or tracked is None:
        return
    produced = pipeline.all_outputs()
    datasets = pipeline.datasets()
    for spec in specs:
        missing = [name for name in spec.trained if name not in produced]
        if run_params.get("only_missing_outputs"):  # Kedro skips the nodes whose outputs exist already
            missing += [name for name in spec.trained if name not in missing and _exists(catalog, name)]
        if missing:
            logger.warning(
                "This run does not produce %s (filtered out, or skipped by --only-missing-outputs): the model "
                "'%s' of %s will not be logged. Run the whole pipeline to log it.",
                ", ".join(f"'{n}'" for n in missing),
                spec.model_name, spec.describe())
            continue
        for name in spec.persisted:
            dataset = catalog.get(name) if name in catalog else None
            if dataset is None or is_ephemeral(dataset):
                raise PipelineModelError(
                    f"Inference input '{name}' of {spec.describe()} is not produced by the training pipeline and is "
                    f"not a persisted catalog entry, so it cannot be bundled with the model. Produce it in the "
                    f"training pipeline or declare it in catalog.yml.", dataset=name)
        kept = _Kept()
        for name in spec.trained:
            kept.watch(catalog, name, sample=False)
        if spec.input_name in datasets:
            kept.watch(catalog, spec.input_name, sample=True)
        tracked.before_success.append(_LogStep(spec, catalog, kept))


def _exists(catalog: Any, name: str) -> bool:
    try:
        return name in catalog and bool(catalog.exists(name))
    except Exception:
        return False


class _Kept:
    """Data of in-memory datasets, taken when Kedro releases them (the session process only)."""

    __slots__ = ("_lock", "data")

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self._lock = threading.Lock()

    def watch(self, catalog: Any, name: str, *, sample: bool) -> None:
        """Take ``name``'s data (or a sample) just before Kedro releases it, when it is a MemoryDataset.

        Kedro's ``SharedMemoryDataset`` (ParallelRunner) keeps its data until the runner ends, and
        persisted datasets load again: neither needs this.
        """
        from kedro.io import MemoryDataset

        dataset = catalog.get(name, fallback_to_runtime_pattern=True)
        if type(dataset) is not MemoryDataset:  # exactly MemoryDataset: subclasses may release differently
            return

        def keep() -> None:
            if dataset.exists():
                from ._logging import sample_of

                data = dataset.load()
                with self._lock:
                    self.data[name] = sample_of(data) if sample else data

        before_release(dataset, keep)  # this run's catalog only


class _LogStep:
    """The ``before_success`` step: load the artifacts, log the model into the run."""

    __slots__ = ("catalog", "kept", "spec")

    def __init__(self, spec: InferenceSpec, catalog: Any, kept: _Kept) -> None:
        self.spec, self.catalog, self.kept = spec, catalog, kept

    def __call__(self, ctx: Any) -> None:
        from ._logging import log_pipeline_model, sample_of

        spec = self.spec
        values = {name: self._load(name) for name in spec.artifacts}
        sample = self.kept.data.get(spec.input_name)
        if sample is None and self._exists(spec.input_name):
            sample = sample_of(self.catalog.load(spec.input_name))
        # tracking.child_runs: a model whose training nodes are all in one group goes to that group's child
        found = one_group(ctx.kedro_run_id, [node.name for node in spec.training.nodes])
        set_group(found[0] if found else None)
        try:
            log_pipeline_model(spec, values, sample, run_id=found[1] if found else str(ctx.run_id),
                               kedro_run_id=ctx.kedro_run_id)
        finally:
            set_group(None)

    def _load(self, name: str) -> Any:
        if name in self.kept.data:
            return self.kept.data[name]
        try:
            return self.catalog.load(name)
        except Exception as exc:
            raise PipelineModelError(
                f"Inference input '{name}' of {self.spec.describe()} could not be loaded at the end of the run "
                f"({type(exc).__name__}: {exc}); no model was logged.", dataset=name) from exc

    def _exists(self, name: str) -> bool:
        if is_parameter(name) or name not in self.catalog:
            return False
        try:
            return bool(self.catalog.exists(name))
        except Exception:
            return False
