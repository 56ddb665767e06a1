"""Fast, model-aware pip requirements for ``log_model`` / ``save_model``: the policy and the pins.

MLflow infers a model's requirements by loading it in a subprocess and recording what it
imports: 3 to 5 seconds per save. By default we derive them in-process instead, in
milliseconds:

1. walk the model object graph for the modules it references (``_model_modules.py``);
2. map those top-level modules (and the flavor's own module) to installed distributions and
   pin their installed versions (``scikit-learn==1.5.2``), with their direct dependencies;
3. add the flavor's own default requirements (``get_default_pip_requirements``); MLflow then
   adds ``mlflow==<version>`` itself.

Results are cached per (flavor, set of modules), in the process and on disk
(``_requirements_cache.py``).

Full inference (MLflow's own behaviour) is used when ``save_args`` has ``pip_requirements`` or
``conda_env`` (passed through untouched), when ``save_args.requirements: infer`` is set, when
the environment variable ``KEDRO_MLFLOW_RUNS_REQUIREMENTS=infer`` is set, or when the model
cannot be walked (it does not pickle).
"""

from __future__ import annotations

import importlib.metadata as metadata
import inspect
import logging
import os
from types import ModuleType
from typing import Any, Final

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..errors import MlflowDatasetError
from ._model_modules import referenced_modules
from ._requirements_cache import CACHE_DIR_ENV, REQUIREMENTS_CACHE

__all__ = ["CACHE_DIR_ENV", "MODES", "REQUIREMENTS_CACHE", "REQUIREMENTS_ENV", "apply_requirements",
           "fast_requirements", "installed_distributions", "merge_requirements", "pinned_requirements",
           "referenced_modules"]

logger = logging.getLogger(__name__)

#: Environment variable choosing the default mode: ``fast`` (default) or ``infer``.
REQUIREMENTS_ENV: Final = "KEDRO_MLFLOW_RUNS_REQUIREMENTS"
MODES: Final = ("fast", "infer")

#: ``save_args`` keys that mean "the user chose the requirements": passed through untouched.
_USER_KEYS: Final = ("pip_requirements", "conda_env")
#: The characters that end the distribution name of a requirement line (``name==1``, ``name[extra]``, ...).
_NAME_ENDS: Final = frozenset("=<>!~;[ @")


def apply_requirements(
    save_args: dict[str, Any], flavor: ModuleType, model: Any, dataset: str
) -> dict[str, Any]:
    """``save_args`` with ``pip_requirements`` filled in when the fast mode applies.

    Pops our own ``requirements`` key; never changes what the user set explicitly.

    Raises:
        MlflowDatasetError: ``requirements`` (or the environment variable) is not a known mode.
    """
    args = dict(save_args)
    mode = args.pop("requirements", None) or os.environ.get(REQUIREMENTS_ENV) or "fast"
    if mode not in MODES:
        raise MlflowDatasetError(
            f"{dataset}: requirements mode must be one of {', '.join(MODES)} (save_args.requirements "
            f"or {REQUIREMENTS_ENV}), got {mode!r}.", dataset=dataset)
    if mode == "infer" or any(args.get(key) is not None for key in _USER_KEYS):
        return args
    requirements = fast_requirements(flavor, model)
    if requirements is None:
        return args
    extra = args.pop("extra_pip_requirements", None) or []
    args["pip_requirements"] = merge_requirements(requirements, list(extra))
    return args


def fast_requirements(flavor: ModuleType, model: Any) -> list[str] | None:
    """Pinned requirements of ``model`` saved with ``flavor``, or None when they cannot be derived."""
    try:
        modules = referenced_modules(model)
    except Exception as exc:  # the model does not pickle: MLflow will infer
        logger.info(
            "Could not derive requirements of a %s model in-process (%s); MLflow will infer them.",
            type(model).__name__,
            exc,
        )
        return None
    return pinned_requirements(flavor, modules)


def pinned_requirements(flavor: ModuleType, modules: set[str]) -> list[str]:
    """The flavor's defaults, then ``dist==version`` for the distributions of ``modules`` (cached)."""
    modules = {*modules, flavor.__name__.split(".")[0]}
    modules.discard("mlflow")  # MLflow pins itself
    key = f"{flavor.__name__}|{','.join(sorted(modules))}"
    cached = REQUIREMENTS_CACHE.get(key)
    if cached is None:
        cached = merge_requirements(_flavor_defaults(flavor), _pinned_distributions(modules))
        REQUIREMENTS_CACHE.put(key, cached)
    return cached


def installed_distributions(module: str) -> list[str]:
    """The installed distributions providing top-level module ``module`` (none for a project's own code)."""
    return list(REQUIREMENTS_CACHE.module_distributions().get(module, []))


def merge_requirements(first: list[str], second: list[str]) -> list[str]:
    """``first`` then ``second``, one entry per distribution name (the first one wins)."""
    seen: set[str] = set()
    merged: list[str] = []
    for requirement in [*first, *second]:
        name = _requirement_name(requirement)
        if name in seen:
            continue
        seen.add(name)
        merged.append(requirement)
    return merged


def _requirement_name(requirement: str) -> str:
    """The normalized distribution name of a requirement line (``Scikit_Learn>=1`` -> ``scikit-learn``)."""
    text = requirement.strip()
    end = next((i for i, char in enumerate(text) if char in _NAME_ENDS), len(text))
    return canonicalize_name(text[:end])


def _pinned_distributions(modules: set[str]) -> list[str]:
    """``dist==version`` for the distributions providing ``modules``, then their direct dependencies."""
    direct: list[str] = []
    distributions = REQUIREMENTS_CACHE.module_distributions()
    for module in sorted(modules):
        direct.extend(distributions.get(module, []))
    pins = [pin for pin in (_pin(dist) for dist in direct) if pin]
    for dist in direct:
        pins.extend(pin for pin in (_pin(dep) for dep in _runtime_dependencies(dist)) if pin)
    return pins


def _pin(dist: str) -> str | None:
    try:
        return f"{dist}=={metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return None


def _runtime_dependencies(dist: str) -> list[str]:
    """Names of the dependencies ``dist`` always needs here (no extras, markers evaluated)."""
    try:
        names = []
        for text in metadata.requires(dist) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                names.append(requirement.name)
        return names
    except Exception:  # unparsable metadata: the direct pin is enough
        return []


def _flavor_defaults(flavor: ModuleType) -> list[str]:
    getter = getattr(flavor, "get_default_pip_requirements", None)
    if not callable(getter):
        return []
    try:
        # ``include_cloudpickle`` / ``include_skops`` ... depend on save options (the
        # serialization format): include them all, a superset is always installable.
        params = inspect.signature(getter).parameters
        flags = {name: True for name in params if name.startswith("include_")}
        return list(getter(**flags))
    except Exception:  # a flavor whose defaults need arguments we cannot guess
        logger.debug("No default requirements from %s", flavor.__name__, exc_info=True)
        return []
