"""Log an inference pipeline and its artifacts into a run as one pyfunc model (imports MLflow).

Used at the successful end of a tracked ``kedro run`` (``_run.py``) and by ``kedro mlflow
modelify``. The model is logged through :class:`MlflowModelLoggerDataset` with an explicit run
id (a LoggedModel linked to the run, our error translation, registration with alias and tags).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import PipelineModelError
from ._factory import InferenceSpec

__all__ = ["code_packages", "log_pipeline_model", "sample_of"]

logger = logging.getLogger(__name__)

SAMPLE_ROWS = 5
_PARAM_TYPES = (str, bool, int, float)


def sample_of(data: Any) -> Any:
    """The first rows of ``data`` (DataFrame, array, list) for the input example; other data as it is."""
    head = getattr(data, "head", None)
    if callable(head) and hasattr(data, "columns"):  # pandas / polars DataFrame
        return head(SAMPLE_ROWS)
    if isinstance(data, (list, tuple)) or (hasattr(data, "shape") and getattr(data, "ndim", 0) >= 1):
        return data[:SAMPLE_ROWS]
    return data


def log_pipeline_model(
    spec: InferenceSpec,
    values: Mapping[str, Any],
    sample: Any,
    *,
    run_id: str,
    kedro_run_id: str | None = None,
    package: str | None = None,
) -> str:
    """Log ``spec``'s inference pipeline, with ``values`` as its artifacts, into MLflow run ``run_id``.

    Args:
        spec: the inference pipeline and its logging options.
        values: the data of every artifact (``spec.artifacts``).
        sample: model input seen in training, for ``signature: auto`` and the input example; None
            when there is none (no signature is inferred then, and a warning says so).
        run_id: the run to log into (the run of the Kedro run, or the one ``modelify`` targets).
        kedro_run_id: the Kedro run it belongs to (its context is the active one).
        package: the Kedro project's package, bundled as code (default: ``PACKAGE_NAME``).

    Returns:
        The name the model was logged under.

    Raises:
        PipelineModelError: an artifact cannot be pickled, or the inference pipeline fails on the sample.
        MlflowDatasetError: MLflow could not log or register the model.
    """
    import cloudpickle
    import mlflow.pyfunc

    from ..io._requirements import REQUIREMENTS_ENV, merge_requirements, pinned_requirements, referenced_modules
    from ..io.models import MlflowModelLoggerDataset
    from ._model import KedroPipelineModel

    model = KedroPipelineModel(spec.inference, spec.input_name, output_name=spec.output_name,
                               artifact_names=spec.artifacts, **spec.kpm_kwargs)
    args = dict(spec.log_model_kwargs)
    name = str(args.pop("name"))
    args["signature"] = _signature(spec, model, values, sample, args)
    with tempfile.TemporaryDirectory(prefix="kmr-model-") as tmp:
        artifacts: dict[str, str] = {}
        modules: set[str] = set(referenced_modules(model))
        for i, artifact in enumerate(spec.artifacts):
            path = Path(tmp) / f"{i}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', artifact)}.pkl"
            try:
                path.write_bytes(cloudpickle.dumps(values[artifact]))
                modules |= referenced_modules(values[artifact])
            except Exception as exc:
                raise PipelineModelError(
                    f"Inference input '{artifact}' of {spec.describe()} cannot be pickled into the model "
                    f"({type(exc).__name__}: {exc}). Make it a picklable object.", dataset=artifact) from None
            artifacts[artifact] = str(path)
        bundled = code_packages(modules, package)
        modules |= imported_modules(_node_modules(spec.inference), set(bundled))
        args["code_paths"] = [*bundled.values(), *(args.get("code_paths") or [])]
        mode = args.pop("requirements", None) or os.environ.get(REQUIREMENTS_ENV) or "fast"
        if mode == "infer":
            args["requirements"] = "infer"
        elif args.get("pip_requirements") is None and args.get("conda_env") is None:
            pins = pinned_requirements(mlflow.pyfunc, modules - set(bundled))
            args["pip_requirements"] = merge_requirements(pins, list(args.pop("extra_pip_requirements", None) or []))
        dataset = MlflowModelLoggerDataset(flavor="mlflow.pyfunc", pyfunc_workflow="python_model", run_id=run_id,
                                           save_args={"name": name, "artifacts": artifacts, **args})
        dataset._kedro_run_id = kedro_run_id
        dataset.save(model)
    return name


def _signature(spec: InferenceSpec, model: Any, values: Mapping[str, Any], sample: Any, args: dict[str, Any]) -> Any:
    """The signature to log: inferred from ``sample`` and the pipeline's output on it for ``auto``."""
    signature = args.get("signature", "auto")
    if not (isinstance(signature, str) and signature == "auto"):
        return signature
    if sample is None:
        logger.warning(
            "%s: no data of '%s' was seen in this run (it is neither produced, loaded nor persisted), so the model "
            "is logged without a signature. Persist '%s' in the catalog or give log_model_kwargs signature.",
            spec.describe(), spec.input_name, spec.input_name)
        return None
    from mlflow.models import infer_signature

    try:
        output = model._bind(values).predict(None, sample)
    except Exception as exc:
        raise PipelineModelError(
            f"{spec.describe()}: the inference pipeline failed on the first rows of '{spec.input_name}' seen in "
            f"training ({type(exc).__name__}: {exc}); no model was logged. Fix the inference nodes, or set "
            f"log_model_kwargs signature to None or a ModelSignature.", dataset=spec.input_name) from exc
    finally:
        model._data = {}
    params = {name.removeprefix("params:"): values[name] for name in spec.parameters
              if name.startswith("params:") and _is_param_value(values[name])}
    args.setdefault("input_example", sample)
    return infer_signature(sample, output, params=params or None)


def _node_modules(pipeline: Any) -> set[str]:
    """The modules defining the node functions of ``pipeline``."""
    found = set()
    for node in pipeline.nodes:
        func = getattr(node, "func", None)
        module = getattr(func, "__module__", None) or getattr(type(func), "__module__", None)
        if isinstance(module, str):
            found.add(module)
    return found


def imported_modules(start: set[str], local: set[str]) -> set[str]:
    """Top-level modules imported by the modules ``start`` and, recursively, by the modules of the
    ``local`` (bundled) packages they import; parsed from source, nothing is executed."""
    import ast

    seen: set[str] = set()
    found: set[str] = set()
    todo = [m for m in start if m.split(".")[0] in local]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        try:
            spec = importlib.util.find_spec(module)
            source = Path(spec.origin).read_text() if spec and spec.origin and spec.origin.endswith(".py") else None
        except Exception:
            source = None
        if source is None:
            continue
        package = module if spec is not None and spec.submodule_search_locations else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(source)):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    names = [".".join([*base, node.module] if node.module else base)]
                elif node.module:
                    names = [node.module]
            for name in names:
                top = name.split(".")[0]
                found.add(top)
                if top in local:
                    todo.append(name)
    stdlib = set(sys.stdlib_module_names)
    return {name for name in found if name not in stdlib and name not in local and not name.startswith("_")}


def _is_param_value(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, _PARAM_TYPES) for v in value)
    return isinstance(value, _PARAM_TYPES)


def code_packages(modules: set[str], package: str | None = None) -> dict[str, str]:
    """``{module: path}`` of the code to bundle: the project package, and every module the model
    references that no installed distribution provides (the project's own code)."""
    from ..io._requirements import installed_distributions

    if package is None:
        try:
            from kedro.framework.project import PACKAGE_NAME

            package = PACKAGE_NAME
        except ImportError:  # pragma: no cover
            package = None
    found: dict[str, str] = {}
    for module in sorted({*modules, *([package] if package else [])}):
        if module != package and installed_distributions(module):
            continue
        path = _source_of(module)
        if path is not None:
            found[module] = path
    return found


def _source_of(module: str) -> str | None:
    """The folder (package) or file (module) of ``module`` when it is local source code."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        path = next(iter(spec.submodule_search_locations), None)
    else:
        path = spec.origin if spec.origin and spec.origin.endswith(".py") else None
    if path is None or not os.path.exists(path):
        return None
    installed = {os.path.realpath(p) for p in sys.path if "site-packages" in p or "dist-packages" in p}
    if any(os.path.realpath(path).startswith(root + os.sep) for root in installed):
        return None
    return path
