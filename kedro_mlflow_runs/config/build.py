"""From a raw mlflow.yml mapping to an :class:`MlflowConfig`: validation, then the environment's
precedence, then the typed sections."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from ..errors import ConfigError
from .model import (
    AttachedSection,
    AutologSection,
    DisableTrackingSection,
    ExperimentSection,
    HeaderProviderSpec,
    LineageSection,
    MlflowConfig,
    ParamsSection,
    RunSection,
    ServerSection,
    SystemMetricsSection,
    TimelineSection,
    TrackingSection,
    UiSection,
)
from .uris import clashing_credentials, default_tracking_uri, resolve_tracking_uri, split_uri
from .validation import Locator, validate

__all__ = ["HTTP_SETTINGS", "SYSTEM_METRICS_ENV_VAR", "build_config"]

#: MLflow's own switch for system metrics; it turns ``tracking.system_metrics`` on too.
SYSTEM_METRICS_ENV_VAR: Final = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"

#: server.http key -> (MLflow environment variable, our default when neither mlflow.yml nor the
#: environment sets it; None leaves MLflow's own default).
HTTP_SETTINGS: Final = MappingProxyType({
    "max_retries": ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", 5),
    "backoff_factor": ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", 1),
    "timeout": ("MLFLOW_HTTP_REQUEST_TIMEOUT", None),
})


def build_config(
    raw: Mapping[str, Any] | None,
    *,
    project_path: Path | str,
    package_name: str | None = None,
    environ: Mapping[str, str] | None = None,
    files: Mapping[str, Mapping[str, Any]] | None = None,
    source: str = "mlflow.yml",
    lines: Mapping[str, Mapping[str, int]] | None = None,
) -> MlflowConfig:
    """Validate a raw mlflow.yml mapping and resolve it with environment variables and defaults.

    Precedence for the tracking URI, experiment and run id: the value set in mlflow.yml, else
    MLflow's environment variable (``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME``,
    ``MLFLOW_RUN_ID``), else the default (``sqlite:///<project>/mlflow.db``, the package name, a
    new run).

    Raises:
        ConfigError: an unknown key, a wrong type or a bad value, naming the key and the file.
    """
    env = os.environ if environ is None else environ
    project_path = Path(project_path)
    where = Locator(files, source, lines)
    values = validate(raw, where)
    run_id, run_id_source = values["tracking.run.id"], None
    if run_id:
        run_id_source = f"tracking.run.id in {where('tracking.run.id')}"
    elif env.get("MLFLOW_RUN_ID"):
        run_id, run_id_source = env["MLFLOW_RUN_ID"], "the MLFLOW_RUN_ID environment variable"
    run = RunSection(
        id=run_id, id_source=run_id_source, name=values["tracking.run.name"],
        description=values["tracking.run.description"], nested=values["tracking.run.nested"],
        tags=_strings(values["tracking.run.tags"]),
        attached=AttachedSection(values["tracking.run.attached.end_run"],
                                 values["tracking.run.attached.record_failure"]),
    )
    experiment = ExperimentSection(
        name=values["tracking.experiment.name"] or env.get("MLFLOW_EXPERIMENT_NAME") or package_name
        or project_path.name,
        restore_if_deleted=values["tracking.experiment.restore_if_deleted"],
        artifact_location=values["tracking.experiment.create_experiment_kwargs.artifact_location"],
        tags=_strings(values["tracking.experiment.create_experiment_kwargs.tags"] or {}),
    )
    tracking = TrackingSection(
        child_runs=values["tracking.child_runs.by"],
        disable_tracking=DisableTrackingSection(tuple(values["tracking.disable_tracking.pipelines"]),
                                                values["tracking.disable_tracking.disable_autologging"]),
        autolog=AutologSection(values["tracking.autolog.enabled"], tuple(values["tracking.autolog.flavors"]),
                               dict(values["tracking.autolog.kwargs"])),
        lineage=LineageSection(values["tracking.lineage.enabled"], values["tracking.lineage.digest"]),
        timeline=TimelineSection(values["tracking.timeline.enabled"], values["tracking.timeline.trace"]),
        system_metrics=SystemMetricsSection(
            values["tracking.system_metrics.enabled"] or _truthy(env.get(SYSTEM_METRICS_ENV_VAR)),
            float(values["tracking.system_metrics.sampling_interval"]),
            values["tracking.system_metrics.samples_before_logging"]),
        experiment=experiment,
        run=run,
        params=ParamsSection(values["tracking.params.dict_params.flatten"],
                             values["tracking.params.dict_params.recursive"],
                             values["tracking.params.dict_params.sep"],
                             values["tracking.params.long_params_strategy"]),
    )
    return MlflowConfig(
        server=_server(values, env, project_path, where),
        tracking=tracking,
        ui=UiSection(values["ui.host"], values["ui.port"]),
        project_path=str(project_path),
        source=source,
    )


#: The store the pytest fixtures (``kedro_mlflow_runs.testing``) give a test: the tracking and registry
#: URI of every run, over ``server.*`` of mlflow.yml and MLflow's variables.
TEST_STORE: Final = "KEDRO_MLFLOW_RUNS_TEST_STORE"


def _server(values: Mapping[str, Any], env: Mapping[str, str], project_path: Path, where: Locator) -> ServerSection:
    """``server.*`` resolved: the URIs (made absolute, credentials taken out), HTTP settings, provider."""
    forced = env.get(TEST_STORE) or None  # the pytest fixtures' store, over what mlflow.yml pins
    configured = None if forced else values["server.mlflow_tracking_uri"]
    uri = forced or configured or env.get("MLFLOW_TRACKING_URI") or None
    tracking_uri = default_tracking_uri(project_path) if uri is None else resolve_tracking_uri(uri, project_path)
    tracking_uri, uri_credentials = split_uri(
        tracking_uri, TEST_STORE if forced else "server.mlflow_tracking_uri" if configured else "MLFLOW_TRACKING_URI",
        env)
    registry_configured = None if forced else values["server.mlflow_registry_uri"]
    registry = forced or registry_configured or env.get("MLFLOW_REGISTRY_URI") or None
    if registry is not None:
        registry, registry_credentials = split_uri(
            resolve_tracking_uri(registry, project_path),
            TEST_STORE if forced else "server.mlflow_registry_uri" if registry_configured else "MLFLOW_REGISTRY_URI",
            env)
        clash = clashing_credentials(uri_credentials, registry_credentials)
        if clash:
            key = "server.mlflow_registry_uri"
            raise ConfigError(
                f"'{key}' in {where(key)} carries other credentials than the tracking URI; MLflow reads "
                f"one set ({', '.join(sorted(clash))}). Use the same user and password, or remove them from "
                f"the URIs and set them with server.credentials.",
                key=key,
            )
        uri_credentials = {**uri_credentials, **registry_credentials}
    http_env: dict[str, str] = {}
    for name, (env_var, ours) in HTTP_SETTINGS.items():
        value = values[f"server.http.{name}"]
        if value is not None:
            http_env[env_var] = str(value)
        elif env_var not in env and ours is not None:
            http_env[env_var] = str(ours)
    return ServerSection(
        tracking_uri=tracking_uri, registry_uri=registry, credentials=values["server.credentials"],
        http_env=http_env, header_provider=_header_provider(values, where),
        uri_credentials=uri_credentials, default_store=uri is None,
    )


def _header_provider(values: Mapping[str, Any], where: Locator) -> HeaderProviderSpec | None:
    """``server.request_header_provider`` checked, without importing the class (that waits for a run)."""
    type_path = values["server.request_header_provider.type"]
    if type_path is None:
        return None
    key = "server.request_header_provider.type"
    if "." not in type_path.strip(".") or " " in type_path:
        raise ConfigError(
            f"'{key}' in {where(key)} must be the import path of a class, such as "
            f"'my_project.auth.TokenHeaderProvider', got {type_path!r}.",
            key=key,
        )
    return HeaderProviderSpec(type_path, values["server.request_header_provider.pass_context"],
                              dict(values["server.request_header_provider.init_kwargs"]))


def _strings(mapping: Mapping[Any, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in mapping.items()}


def _truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("true", "1", "yes", "on")
