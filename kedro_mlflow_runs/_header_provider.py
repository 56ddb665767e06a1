"""``server.request_header_provider``: a project's class that adds headers to every MLflow request.

For a server behind a gateway that wants a token MLflow cannot send by itself (one that expires,
say: MLflow asks the provider on every request, so a provider that refreshes its token keeps a
long run working). The class, a subclass of MLflow's ``RequestHeaderProvider``, is imported and
built when a tracked run starts (``pass_context: true`` adds ``kedro_context=<KedroContext>`` to
``init_kwargs``) and given to MLflow until the run ends. Forked workers inherit it; spawned workers
build their own from ``KEDRO_MLFLOW_RUNS_HEADER_PROVIDER``, which the run publishes (with
``kedro_context=None``: a KedroContext does not cross processes). ``kedro mlflow`` commands that
talk to the store build it too.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from typing import Any

from .config import HeaderProviderSpec
from .errors import ConfigError

__all__ = ["HEADER_PROVIDER_ENV_VAR", "build_provider", "header_provider_env", "install", "worker_install"]

HEADER_PROVIDER_ENV_VAR = "KEDRO_MLFLOW_RUNS_HEADER_PROVIDER"
_KEY = "server.request_header_provider.type"


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


def header_provider_env(spec: HeaderProviderSpec) -> dict[str, str]:
    """What a run publishes so that spawned workers can build the provider themselves."""
    text = json.dumps({"type": spec.type, "pass_context": spec.pass_context, "init_kwargs": dict(spec.init_kwargs)})
    return {HEADER_PROVIDER_ENV_VAR: text}


def install(spec: HeaderProviderSpec, kedro_context: Any) -> Callable[[], None]:
    """Build the provider and hand it to MLflow; returns what takes it out again."""
    from .registry import registry

    return registry().process.add_header_provider(build_provider(spec, kedro_context))


def worker_install() -> None:
    """In a spawned worker: build what the parent's run published, once per process."""
    from .registry import registry

    text = os.environ.get(HEADER_PROVIDER_ENV_VAR)
    if not text or not registry().first_in_process("header_provider"):
        return
    published = json.loads(text)
    from .tracking._compat import header_providers

    if any(f"{type(p).__module__}.{type(p).__qualname__}" == published["type"] for p in header_providers()):
        return  # a forked worker inherited the parent's instance
    spec = HeaderProviderSpec(published["type"], bool(published.get("pass_context")),
                              published.get("init_kwargs") or {})
    install(spec, None)  # for the life of the worker process
