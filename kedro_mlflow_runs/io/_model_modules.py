"""Which libraries a model is made of: the modules of the objects its pickle would hold (no MLflow import).

A pickler that writes nothing walks the model's object graph and records the module of every object
it meets (``sklearn.linear_model._logistic``, ``numpy``, ``xgboost.sklearn``, ...). It sees what the
pickled model references: a ``PythonModel`` that imports a library only inside ``predict`` should
list it in ``save_args.extra_pip_requirements``, or use full inference.
"""

from __future__ import annotations

import pickle
import sys
from types import ModuleType
from typing import Any

__all__ = ["referenced_modules"]


class _Discard:
    """A binary sink that keeps nothing."""

    def write(self, data: bytes) -> int:
        return len(data)


def referenced_modules(model: Any) -> set[str]:
    """Top-level names of the modules whose objects make up ``model`` (stdlib excluded).

    Raises:
        Exception: the model does not pickle (the caller falls back to MLflow's inference).
    """
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

    _Collector(_Discard(), protocol=pickle.HIGHEST_PROTOCOL).dump(model)
    stdlib = set(sys.stdlib_module_names) | {"builtins", "__main__", "copyreg", "_codecs"}
    return {name for name in found if name not in stdlib and not name.startswith("_")}
