"""``server.request_header_provider``: a project's class that adds headers to every MLflow request.

For a server behind a gateway that wants a token MLflow cannot send by itself (one that expires,
say: MLflow asks the provider on every request, so a provider that refreshes its token keeps a
long run working). The class, a subclass of MLflow's ``RequestHeaderProvider``, is imported and
built when a tracked run starts (``pass_context: true`` adds ``kedro_context=<KedroContext>`` to
``init_kwargs``) and given to MLflow until the run ends. ``kedro mlflow`` commands that talk to the
store build it too.

Forked workers inherit it; spawned workers build their own (with ``kedro_context=None``: a
KedroContext does not cross processes) from what a tracked run publishes, and only a tracked run:

* ``KEDRO_MLFLOW_RUNS_HEADER_PROVIDER`` in the environment holds the class, ``pass_context`` and,
  when there are ``init_kwargs``, the path of the file holding them; never their values, which
  may be tokens and which every node and its child processes would otherwise see;
* the ``init_kwargs`` themselves are in that file, mode 0600, in a private folder (mode 0700, a
  spool folder of ``recording/spool.py``) that the run holds while it lasts and removes when it ends,
  whatever way it ends; a folder left by a ``kill -9`` is removed by the next run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, Final

from ..config import HeaderProviderSpec
from ..core import worker_env
from ..core.header_providers import install as install_provider
from ..core.registry import REGISTRY
from ..recording.spool import Spool

__all__ = ["install", "publish"]

_INIT_KWARGS_FILE: Final = "header_provider_init_kwargs.json"


def publish(spec: HeaderProviderSpec) -> tuple[dict[str, str], Callable[[], None]]:
    """What a tracked run publishes so that spawned workers can build the provider themselves, and
    what takes it away again (call it when the run ends).

    Returns:
        ``({KEDRO_MLFLOW_RUNS_HEADER_PROVIDER: json}, remove)``: the JSON names the class,
        ``pass_context`` and the 0600 file holding ``init_kwargs`` (none when they are empty).
    """
    published: dict[str, Any] = {"type": spec.type, "pass_context": spec.pass_context}
    if not spec.init_kwargs:
        return worker_env.encode(worker_env.HEADER_PROVIDER, published), _nothing
    spool = Spool.create()  # mode 0700, held by this process until removed
    try:
        path = os.path.join(spool.path, _INIT_KWARGS_FILE)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(dict(spec.init_kwargs), out)
    except BaseException:
        spool.remove()
        raise
    published["init_kwargs_file"] = path
    return worker_env.encode(worker_env.HEADER_PROVIDER, published), spool.remove


def _nothing() -> None:
    """Nothing to take away."""


def install(spec: HeaderProviderSpec, kedro_context: Any) -> Callable[[], None]:
    """Build the provider and hand it to MLflow; returns what takes it out again."""
    return install_provider(REGISTRY.process, spec, kedro_context)
