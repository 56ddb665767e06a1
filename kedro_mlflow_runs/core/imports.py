"""Code that waits for a module to be imported: a one-shot import hook.

A tracked run prepares what MLflow or ``dask.distributed`` need only once the process imports them,
so that a run whose code never uses them pays nothing (``bindings.py``, ``framework/clusters.py``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["AfterImport", "after_import"]


class AfterImport:
    """A one-shot import hook: runs ``callback`` in the importing thread right after module ``name``
    has been executed (then leaves ``sys.meta_path``). A failing callback is logged (``what`` it was
    doing), never raised into the user's ``import``."""

    def __init__(self, name: str, callback: Callable[[], None], what: str) -> None:
        self.name = name
        self.callback = callback
        self.what = what

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        self.remove()
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        execute, callback, what = loader.exec_module, self.callback, self.what

        def exec_module(module: Any) -> None:
            execute(module)
            try:
                callback()
            except Exception:
                logging.getLogger(__name__).warning("Could not %s after importing %s", what, fullname,
                                                    exc_info=True)

        loader.exec_module = exec_module
        return spec

    def remove(self) -> None:
        """Leave ``sys.meta_path`` (a no-op once gone)."""
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)


def after_import(name: str, callback: Callable[[], None], what: str) -> Callable[[], None]:
    """Call ``callback`` once module ``name`` is imported: now when it is already, else right after the
    process imports it. Returns what cancels a callback that has not run yet."""
    if name in sys.modules:
        callback()
        return lambda: None
    hook = AfterImport(name, callback, what)
    sys.meta_path.insert(0, hook)
    return hook.remove
