"""mlflow.yml: one declarative schema (``schema.py``) that drives validation, the typed
:class:`MlflowConfig` and the ``kedro mlflow init`` template; loading it from a Kedro project.

The layout follows kedro-mlflow's where the concept is the same (``server.*``,
``tracking.experiment.*``, ``tracking.run.*``, ``tracking.params.*``, ``tracking.disable_tracking.*``),
plus our own keys for run tags, attach behaviour, lineage, timeline and system metrics. Nothing here
imports MLflow: a pipeline with tracking disabled never pays for it.
"""

from __future__ import annotations

from .build import HTTP_SETTINGS, SYSTEM_METRICS_ENV_VAR, build_config
from .loading import CONFIG_PATTERNS, config_from_project, credentials_env, load_config, random_run_name
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
from .schema import KEYS, LINEAGE_DIGESTS
from .uris import default_tracking_uri, resolve_tracking_uri

__all__ = [
    "CONFIG_PATTERNS",
    "HTTP_SETTINGS",
    "KEYS",
    "LINEAGE_DIGESTS",
    "SYSTEM_METRICS_ENV_VAR",
    "AttachedSection",
    "AutologSection",
    "DisableTrackingSection",
    "ExperimentSection",
    "HeaderProviderSpec",
    "LineageSection",
    "MlflowConfig",
    "ParamsSection",
    "RunSection",
    "ServerSection",
    "SystemMetricsSection",
    "TimelineSection",
    "TrackingSection",
    "UiSection",
    "build_config",
    "config_from_project",
    "credentials_env",
    "default_tracking_uri",
    "load_config",
    "random_run_name",
    "resolve_tracking_uri",
]
