"""``kedro mlflow modelify``: log a registered pipeline's inference part as a model, outside ``kedro run``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.pipeline import Pipeline

from ..config import credentials_env, load_config
from ..core.context import RunContext
from ..core.registry import REGISTRY
from ..errors import PipelineModelError
from ..handle import Outcome, RunHandle
from ..io.naming import name_datasets
from ..tracking import Tracker
from ._factory import InferenceSpec
from ._logging import log_pipeline_model, sample_of

__all__ = ["modelify_pipeline"]

logger = logging.getLogger(__name__)


def modelify_pipeline(
    project: Path,
    pipeline_name: str,
    input_name: str,
    *,
    run_id: str | None = None,
    name: str | None = None,
    registered_model_name: str | None = None,
    env: str | None = None,
) -> tuple[str, str]:
    """Log pipeline ``pipeline_name`` of ``project`` as a :class:`KedroPipelineModel`; return ``(run_id, name)``.

    With ``run_id``, the model goes into that run and the artifacts are loaded while it is the
    active run (attached, left as it is), so the plugin's datasets read what that run logged.
    Without, a new run of the project's experiment is created, and ended FINISHED (FAILED when
    logging fails). The options of a ``pipeline_ml_factory`` pipeline are kept; ``name`` and
    ``registered_model_name`` override them.

    Raises:
        PipelineModelError: the pipeline is not registered, ``input_name`` is not its free input,
            or an artifact cannot be loaded from the catalog.
        RunNotFoundError: ``run_id`` does not exist.
    """
    metadata = bootstrap_project(project)
    with KedroSession.create(project_path=metadata.project_path, env=env) as session:
        context = session.load_context()  # type: ignore[attr-defined]
        config = load_config(context)
        try:
            registered = pipelines[pipeline_name]
        except KeyError:
            raise PipelineModelError(
                f"No pipeline named '{pipeline_name}' is registered (registered: {', '.join(sorted(pipelines))}). "
                f"Pass --pipeline with one of them.", key=pipeline_name) from None
        specs: tuple[InferenceSpec, ...] = tuple(getattr(registered, "ml_specs", ()))
        inference, log_kwargs, kpm = registered, dict[str, Any](), dict[str, Any]()
        if len(specs) == 1:
            inference, log_kwargs, kpm = specs[0].inference, dict(specs[0].log_model_kwargs), dict(specs[0].kpm_kwargs)
            kpm["output_name"] = specs[0].output_name
        if name:
            log_kwargs["name"] = name
        if registered_model_name:
            log_kwargs["registered_model_name"] = registered_model_name
        spec = InferenceSpec(Pipeline([]), inference, input_name, log_kwargs, kpm)
        catalog = context.catalog
        name_datasets(catalog, [*spec.artifacts, input_name])
        environment = {**config.server.uri_credentials, **credentials_env(config, context)}
        with REGISTRY.process.environment(environment):
            ctx = _run_context(config, run_id, pipeline_name)
            try:
                values = {artifact: _load(catalog, artifact, spec) for artifact in spec.artifacts}
                sample = _sample(catalog, input_name)
                logged = log_pipeline_model(spec, values, sample, run_id=str(ctx.run_id),
                                            package=metadata.package_name)
            except BaseException as exc:
                REGISTRY.finish(ctx, Outcome.of_exception(exc))
                raise
            REGISTRY.finish(ctx, Outcome.finished())
            return str(ctx.run_id), logged


def _run_context(config: Any, run_id: str | None, pipeline_name: str) -> Any:
    if run_id is None:
        ctx = RunContext(config)
        ctx.start(run_name=f"modelify {pipeline_name}", tags={"kedro.modelify.pipeline": pipeline_name},
                  publish=False)
        return ctx
    run = _tracker(config).get_run(run_id, source="--run-id")
    handle = RunHandle(run_id, config.server.tracking_uri, str(run.info.experiment_id), config.server.registry_uri)
    return RunContext.attach(handle)  # left as it is when done


def _tracker(config: Any) -> Tracker:
    return Tracker(config.server.tracking_uri, config.server.registry_uri)


def _load(catalog: Any, name: str, spec: Any) -> Any:
    try:
        return catalog.load(name)
    except Exception as exc:
        raise PipelineModelError(
            f"Inference input '{name}' of {spec.describe()} could not be loaded from the catalog "
            f"({type(exc).__name__}: {exc}). modelify bundles every free input but --input-name: persist it "
            f"(catalog.yml) or run the pipeline that produces it first.", dataset=name) from exc


def _sample(catalog: Any, name: str) -> Any:
    try:
        if name in catalog and catalog.exists(name):
            return sample_of(catalog.load(name))
    except Exception:
        logger.debug("Could not load '%s' for the input example", name, exc_info=True)
    return None
