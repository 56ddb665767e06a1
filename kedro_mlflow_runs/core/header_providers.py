"""Building ``server.request_header_provider``'s class, in the process that runs the Kedro run and in
the spawned workers it publishes the provider to (see ``framework/header_provider.py``)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any, Final

from ..compat.mlflow import header_providers
from ..config import HeaderProviderSpec
from ..errors import ConfigError
from . import worker_env
from .process import ProcessState

__all__ = ["build_provider", "install", "install_published"]

_KEY: Final = "server.request_header_provider.type"


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


def install(process: ProcessState, spec: HeaderProviderSpec, kedro_context: Any) -> Callable[[], None]:
    """Build the provider and hand it to MLflow; returns what takes it out again."""
    return process.add_header_provider(build_provider(spec, kedro_context))


def install_published(process: ProcessState) -> None:
    """In a spawned worker: build the provider the parent's run published (``kedro_context=None``: a
    KedroContext does not cross processes), for the life of the worker; nothing when a forked worker
    inherited the parent's instance, or nothing was published."""
    published = worker_env.decode(worker_env.HEADER_PROVIDER, ("type",))
    if published is None:
        return
    if any(f"{type(p).__module__}.{type(p).__qualname__}" == published["type"] for p in header_providers()):
        return
    spec = HeaderProviderSpec(published["type"], bool(published.get("pass_context")),
                              _read_init_kwargs(published.get("init_kwargs_file")))
    install(process, spec, None)


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
