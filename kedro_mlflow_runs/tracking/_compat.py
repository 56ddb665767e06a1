"""Every use of an MLflow private name, in one place.

MLflow offers no public way to (a) make an existing run the active run of a thread without
restarting it, or (b) read back the process-wide tracking and registry URIs exactly as set
(``mlflow.get_tracking_uri()`` resolves defaults, so it cannot be used to restore "unset").
What we touch, and why:

* ``mlflow.tracking.fluent._active_run_stack``: the per-thread stack behind
  ``mlflow.active_run()``; we push our run so ``mlflow.log_metric`` in node code lands in it.
* ``mlflow.tracking._tracking_service.utils._tracking_uri`` and ``set_tracking_uri``: the
  process-wide tracking URI as set (None when unset).
* ``mlflow.tracking._model_registry.utils._registry_uri``: the same for the registry URI.
* ``mlflow.tracking.request_header.registry._request_header_provider_registry``: the providers
  MLflow asks for headers on every request; a run adds ``server.request_header_provider`` there
  and takes it out again when it ends (MLflow only offers registration through entry points).

``tests/test_architecture.py::test_the_mlflow_private_names_we_use_still_exist`` fails loudly when a future MLflow moves any of them. Nothing else in
the package may name an MLflow private attribute.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ActiveRun", "fluent_stack", "global_uris", "header_providers", "set_global_uris", "verify"]


def fluent_stack() -> list[Any]:
    """The calling thread's MLflow active-run stack (a list of ``ActiveRun``; empty in a fresh thread)."""
    from mlflow.tracking import fluent

    return fluent._active_run_stack.get()


def ActiveRun(run: Any) -> Any:  # noqa: N802 - mirrors the class it builds
    """MLflow's ``ActiveRun`` wrapper of a ``Run`` entity, as stored on the fluent stack."""
    import mlflow

    return mlflow.ActiveRun(run)


def global_uris() -> tuple[str | None, str | None]:
    """MLflow's process-wide ``(tracking_uri, registry_uri)`` exactly as set (None: not set)."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    return tracking_utils._tracking_uri, getattr(registry_utils, "_registry_uri", None)


def set_global_uris(tracking_uri: str | None, registry_uri: str | None) -> None:
    """Set MLflow's process-wide URIs exactly (None unsets). MLflow also sets (or unsets)
    ``MLFLOW_TRACKING_URI`` here; the caller restores the environment it wants."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    if tracking_utils._tracking_uri != tracking_uri:
        tracking_utils.set_tracking_uri(tracking_uri)
    registry_utils._registry_uri = registry_uri


def header_providers() -> list[Any]:
    """The list of provider instances MLflow iterates for each request's headers (mutable)."""
    from mlflow.tracking.request_header import registry

    return registry._request_header_provider_registry._registry


def verify() -> list[str]:
    """The private names above that this MLflow no longer has (empty when all are there)."""
    missing = []
    try:
        from mlflow.tracking import fluent

        stack = fluent._active_run_stack.get()
        if not isinstance(stack, list):
            missing.append("mlflow.tracking.fluent._active_run_stack.get() is not a list")
    except Exception as exc:  # pragma: no cover - only on an incompatible MLflow
        missing.append(f"mlflow.tracking.fluent._active_run_stack ({exc})")
    try:
        from mlflow.tracking._tracking_service import utils as tracking_utils

        tracking_utils._tracking_uri  # noqa: B018
        if not callable(tracking_utils.set_tracking_uri):
            missing.append("mlflow.tracking._tracking_service.utils.set_tracking_uri")
    except Exception as exc:  # pragma: no cover
        missing.append(f"mlflow.tracking._tracking_service.utils._tracking_uri ({exc})")
    try:
        from mlflow.tracking._model_registry import utils as registry_utils

        if not hasattr(registry_utils, "_registry_uri"):
            missing.append("mlflow.tracking._model_registry.utils._registry_uri")
    except Exception as exc:  # pragma: no cover
        missing.append(f"mlflow.tracking._model_registry.utils ({exc})")
    try:
        if not isinstance(header_providers(), list):
            missing.append("mlflow.tracking.request_header.registry._request_header_provider_registry._registry")
    except Exception as exc:  # pragma: no cover
        missing.append(f"mlflow.tracking.request_header.registry._request_header_provider_registry ({exc})")
    return missing
