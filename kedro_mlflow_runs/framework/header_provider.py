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
  spool folder of ``_spool.py``) that the run holds while it lasts and removes when it ends,
  whatever way it ends; a folder left by a ``kill -9`` is removed by the next run.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from typing import Any

from ..config import HeaderProviderSpec
from ..errors import ConfigError

__all__ = ["HEADER_PROVIDER_ENV_VAR", "build_provider", "install", "publish", "worker_install"]

HEADER_PROVIDER_ENV_VAR = "KEDRO_MLFLOW_RUNS_HEADER_PROVIDER"
_KEY = "server.request_header_provider.type"
_INIT_KWARGS_FILE = "header_provider_init_kwargs.json"


def build_provider(spec: HeaderProviderSpec, kedro_context: Any) -> Any:
    """Import the class and build it.

    Raises:
        ConfigError: the class cannot be imported, is not a ``RequestHeaderProvider``, or its
            constructor refuses ``init_kwargs``; naming the key.
    """
    from mlflow.tracking.request_header.abstract_request_header_provider import RequestHeaderProvider

    module_name, _, class_name = spec.type.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"'{_KEY}' names {spec.type!r}, which cannot be imported ({type(exc).__name__}: {exc}). Check the "
            f"module path, and that the module is importable from the project (e.g. under src/<package>/).",
            key=_KEY,
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, RequestHeaderProvider)):
        raise ConfigError(
            f"'{_KEY}' names {spec.type!r}, which is not a subclass of "
            f"mlflow.tracking.request_header.abstract_request_header_provider.RequestHeaderProvider. "
            f"Subclass it and implement in_context() and request_headers().",
            key=_KEY,
        )
    kwargs = dict(spec.init_kwargs)
    if spec.pass_context:
        kwargs["kedro_context"] = kedro_context
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"'{_KEY}': {spec.type}({', '.join(sorted(kwargs))}) failed: {exc}. Make "
            f"'server.request_header_provider.init_kwargs' match its constructor"
            + (" (pass_context: true also passes kedro_context)." if spec.pass_context else "."),
            key=_KEY,
        ) from exc


def publish(spec: HeaderProviderSpec) -> tuple[dict[str, str], Callable[[], None]]:
    """What a tracked run publishes so that spawned workers can build the provider themselves, and
    what takes it away again (call it when the run ends).

    Returns:
        ``({KEDRO_MLFLOW_RUNS_HEADER_PROVIDER: json}, remove)``: the JSON names the class,
        ``pass_context`` and the 0600 file holding ``init_kwargs`` (none when they are empty).
    """
    published: dict[str, Any] = {"type": spec.type, "pass_context": spec.pass_context}
    if not spec.init_kwargs:
        return {HEADER_PROVIDER_ENV_VAR: json.dumps(published)}, _nothing
    from ..recording.spool import Spool

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
    return {HEADER_PROVIDER_ENV_VAR: json.dumps(published)}, spool.remove


def _nothing() -> None:
    """Nothing to take away."""


def install(spec: HeaderProviderSpec, kedro_context: Any) -> Callable[[], None]:
    """Build the provider and hand it to MLflow; returns what takes it out again."""
    from ..core.registry import registry

    return registry().process.add_header_provider(build_provider(spec, kedro_context))


def worker_install() -> None:
    """In a spawned worker: build what the parent's run published, once per process."""
    from ..core.registry import registry

    text = os.environ.get(HEADER_PROVIDER_ENV_VAR)
    if not text or not registry().first_in_process("header_provider"):
        return
    published = json.loads(text)
    from ..tracking._compat import header_providers

    if any(f"{type(p).__module__}.{type(p).__qualname__}" == published["type"] for p in header_providers()):
        return  # a forked worker inherited the parent's instance
    spec = HeaderProviderSpec(published["type"], bool(published.get("pass_context")),
                              _read_init_kwargs(published.get("init_kwargs_file")))
    install(spec, None)  # for the life of the worker process


def _read_init_kwargs(path: str | None) -> dict[str, Any]:
    """The ``init_kwargs`` the run wrote to ``path`` (none without a path).

    Raises:
        ConfigError: the file is gone or unreadable (the run that wrote it has ended).
    """
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as source:
            return dict(json.load(source))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"'server.request_header_provider.init_kwargs' cannot be read from {path}, where the Kedro run "
            f"that started this worker wrote them ({type(exc).__name__}). That run has probably ended: start "
            f"this worker from a running `kedro run`.",
            key="server.request_header_provider.init_kwargs",
        ) from None
