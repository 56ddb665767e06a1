"""Fast, model-aware pip requirements for ``log_model`` / ``save_model``.

MLflow infers a model's requirements by loading it in a subprocess and recording what it
imports: 3 to 5 seconds per save. By default we derive them in-process instead, in
milliseconds:

1. walk the model object graph with a pickler that records the module of every object it
   meets (``sklearn.linear_model._logistic``, ``numpy``, ``xgboost.sklearn``, ...);
2. map those top-level modules (and the flavor's own module) to installed distributions and
   pin their installed versions (``scikit-learn==1.5.2``);
3. add the flavor's own default requirements (``get_default_pip_requirements``); MLflow then
   adds ``mlflow==<version>`` itself.

Results are cached per (flavor, set of modules): in the process, and on disk (a small JSON file
in ``KEDRO_MLFLOW_RUNS_CACHE_DIR``, else ``$XDG_CACHE_HOME/kedro-mlflow-runs``, else
``~/.cache/kedro-mlflow-runs``), keyed by the Python environment and invalidated when a ``site-packages``
folder on ``sys.path`` changes (a package installed, upgraded or removed). So the mapping of modules to
distributions (a scan of every installed distribution, about 0.25 s) is paid once per
environment, not once per ``kedro run``. A cache that cannot be read or written is ignored. The walk sees what the pickled model references; a
``PythonModel`` that imports a library only inside ``predict`` should list it in
``save_args.extra_pip_requirements`` (kept), or use full inference.

Full inference (MLflow's own behaviour) is used when ``save_args`` has ``pip_requirements`` or
``conda_env`` (passed through untouched), when ``save_args.requirements: infer`` is set, when
the environment variable ``KEDRO_MLFLOW_RUNS_REQUIREMENTS=infer`` is set, or when the model
cannot be walked (it does not pickle).
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import inspect
import json
import logging
import os
import pickle
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import MlflowDatasetError

__all__ = ["CACHE_DIR_ENV", "MODES", "REQUIREMENTS_ENV", "apply_requirements", "fast_requirements", "installed_distributions",
           "pinned_requirements", "referenced_modules"]

logger = logging.getLogger(__name__)

#: Environment variable choosing the default mode: ``fast`` (default) or ``infer``.
REQUIREMENTS_ENV = "KEDRO_MLFLOW_RUNS_REQUIREMENTS"
MODES = ("fast", "infer")

#: Environment variable naming the folder of the on-disk requirements cache.
CACHE_DIR_ENV = "KEDRO_MLFLOW_RUNS_CACHE_DIR"

_USER_KEYS = ("pip_requirements", "conda_env")


class _RequirementsCache:
    """Pinned requirements per ``flavor|module,module``: in memory, backed by one JSON file per environment."""

    __slots__ = ("_distributions", "_entries", "_fingerprint", "_lock", "_loaded")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, list[str]] = {}
        self._loaded = False
        self._fingerprint: list[list[object]] = []
        self._distributions: Mapping[str, list[str]] | None = None

    def module_distributions(self) -> Mapping[str, list[str]]:
        """Top-level module -> installed distributions (a scan of every distribution: done once)."""
        with self._lock:
            if self._distributions is None:
                self._distributions = metadata.packages_distributions()
            return self._distributions

    def get(self, key: str) -> list[str] | None:
        with self._lock:
            if not self._loaded:
                self._load()
            found = self._entries.get(key)
            return list(found) if found is not None else None

    def put(self, key: str, requirements: list[str]) -> None:
        with self._lock:
            self._entries[key] = list(requirements)
            self._save()

    @staticmethod
    def _file() -> Path:
        home = os.path.expanduser("~")
        if home.startswith("~"):  # no HOME and no passwd entry (some containers): not the project folder
            home = tempfile.gettempdir()
        root = os.environ.get(CACHE_DIR_ENV) or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"), "kedro-mlflow-runs")
        environment = hashlib.sha1(f"{sys.prefix}|{sys.executable}|{sys.version}".encode()).hexdigest()[:16]
        return Path(root) / f"requirements-{environment}.json"

    @staticmethod
    def _environment_fingerprint() -> list[list[object]]:
        """Each folder packages are installed into (``site-packages``, ``dist-packages``, on sys.path)
        with its modification time: installing, upgrading or removing a package changes it. Other
        entries (the working directory, a project's ``src``) change all the time and are left out."""
        stamps: list[list[object]] = []
        for entry in sys.path:
            if not entry.rstrip("/\\").endswith(("site-packages", "dist-packages")):
                continue
            try:
                stamps.append([entry, os.stat(entry).st_mtime_ns])
            except OSError:
                continue
        return stamps

    def _load(self) -> None:
        self._loaded = True
        self._fingerprint = self._environment_fingerprint()
        try:
            stored = json.loads(self._file().read_text(encoding="utf-8"))
            if stored.get("fingerprint") == self._fingerprint and isinstance(stored.get("entries"), dict):
                self._entries.update(stored["entries"])
        except (OSError, ValueError, AttributeError):
            return  # no cache yet, or one we cannot read: derive afresh

    def _save(self) -> None:
        path = self._file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False,
                                             encoding="utf-8") as out:
                json.dump({"fingerprint": self._fingerprint, "entries": self._entries}, out)
            try:
                os.replace(out.name, path)
            except OSError:
                os.unlink(out.name)
                raise
        except OSError:
            logger.debug("Could not write the requirements cache %s", path, exc_info=True)

    def clear(self) -> None:
        """Forget everything (tests): the next lookup reads the file again."""
        with self._lock:
            self._entries.clear()
            self._loaded = False


#: The one cache of this process.
REQUIREMENTS_CACHE = _RequirementsCache()


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
    args["pip_requirements"] = _merge(requirements, list(extra))
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
        cached = _merge(_flavor_defaults(flavor), _pinned_distributions(modules))
        REQUIREMENTS_CACHE.put(key, cached)
    return cached


def installed_distributions(module: str) -> list[str]:
    """The installed distributions providing top-level module ``module`` (none for a project's own code)."""
    return list(_module_distributions().get(module, []))


class _Discard:
    """A binary sink that keeps nothing."""

    def write(self, data: bytes) -> int:
        return len(data)


def referenced_modules(model: Any) -> set[str]:
    """Top-level names of the modules whose objects make up ``model`` (stdlib excluded)."""
    try:
        import cloudpickle

        base: type[pickle.Pickler] = cloudpickle.CloudPickler
    except ImportError:  # pragma: no cover - cloudpickle ships with mlflow
        base = pickle.Pickler

    found: set[str] = set()

    class _Collector(base):  # type: ignore[valid-type, misc]
        def persistent_id(self, obj: Any) -> None:
            owner = obj if isinstance(obj, (type, ModuleType)) or callable(obj) else type(obj)
            name = getattr(owner, "__module__", None) if not isinstance(owner, ModuleType) else owner.__name__
            if isinstance(name, str) and name:
                found.add(name.split(".")[0])
            return None

    _Collector(_Discard(), protocol=pickle.HIGHEST_PROTOCOL).dump(model)
    stdlib = set(sys.stdlib_module_names) | {"builtins", "__main__", "copyreg", "_codecs"}
    return {name for name in found if name not in stdlib and not name.startswith("_")}


def _module_distributions() -> Mapping[str, list[str]]:
    return REQUIREMENTS_CACHE.module_distributions()


def _pinned_distributions(modules: set[str]) -> list[str]:
    """``dist==version`` for the distributions providing ``modules``, then their direct dependencies."""
    direct: list[str] = []
    distributions = _module_distributions()
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
        from packaging.requirements import Requirement

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


def _merge(first: list[str], second: list[str]) -> list[str]:
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
    text = requirement.strip()
    for i, char in enumerate(text):
        if char in "=<>!~;[ @":
            text = text[:i]
            break
    return text.lower().replace("_", "-").replace(".", "-")
