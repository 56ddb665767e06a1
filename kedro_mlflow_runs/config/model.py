"""The validated, resolved configuration of one Kedro run's tracking, as typed sections that follow
mlflow.yml's own layout (``config.tracking.run.id`` is ``tracking.run.id``). Values are resolved
(environment variables, URIs made absolute, credentials taken out of URIs) by ``build.py``.

Where a name differs from the file (docs/mlflow_yml.md, "In Python", says the same):
``tracking.params.dict_params.*`` are ``ParamsSection.flatten``/``recursive``/``sep``;
``tracking.experiment.create_experiment_kwargs.*`` are ``ExperimentSection.artifact_location``/``tags``;
``server.mlflow_tracking_uri``/``mlflow_registry_uri`` are ``ServerSection.tracking_uri``/``registry_uri``
(resolved); ``server.request_header_provider`` is ``ServerSection.header_provider``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .._redact import redact_uri

__all__ = [
    "AttachedSection", "AutologSection", "DisableTrackingSection", "ExperimentSection", "HeaderProviderSpec",
    "LineageSection", "MlflowConfig", "ParamsSection", "RunSection", "ServerSection", "SystemMetricsSection",
    "TimelineSection", "TrackingSection", "UiSection",
]


def _empty() -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class HeaderProviderSpec:
    """``server.request_header_provider``: the class MLflow asks for extra headers on each request."""

    type: str  # "package.module.Class", imported when a run starts
    pass_context: bool = False  # construct it with kedro_context=<the KedroContext>
    init_kwargs: Mapping[str, Any] = field(default_factory=_empty, repr=False)  # may hold tokens


@dataclass(frozen=True)
class ServerSection:
    """``server``: where runs go, and how to reach it."""

    tracking_uri: str = "sqlite:///mlflow.db"  # resolved: absolute, without userinfo
    registry_uri: str | None = None
    credentials: str | None = None  # the credentials.yml entry named by server.credentials
    http_env: Mapping[str, str] = field(default_factory=_empty)  # MLflow's HTTP settings for the run
    header_provider: HeaderProviderSpec | None = None
    uri_credentials: Mapping[str, str] = field(default_factory=_empty, repr=False)  # taken out of the URIs
    default_store: bool = False  # no URI was configured anywhere: the project's sqlite store

    @property
    def redacted_tracking_uri(self) -> str:
        """The tracking URI with any password replaced by ``***``."""
        return redact_uri(self.tracking_uri)

    def __repr__(self) -> str:  # a database URI may keep its password (mysql://, pg8000): never shown
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        shown["tracking_uri"] = self.redacted_tracking_uri
        shown["registry_uri"] = redact_uri(self.registry_uri) if self.registry_uri else None
        return f"ServerSection({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


@dataclass(frozen=True)
class DisableTrackingSection:
    pipelines: tuple[str, ...] = ()
    disable_autologging: bool = True


@dataclass(frozen=True)
class AutologSection:
    enabled: bool = False
    flavors: tuple[str, ...] = ()  # () with enabled: every library MLflow autologs
    kwargs: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True)
class LineageSection:
    enabled: bool = True
    digest: str = "auto"


@dataclass(frozen=True)
class TimelineSection:
    enabled: bool = True
    trace: bool = True  # also as an MLflow trace linked to the run


@dataclass(frozen=True)
class SystemMetricsSection:
    enabled: bool = False  # also turned on by MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING
    sampling_interval: float = 10.0
    samples_before_logging: int = 1


@dataclass(frozen=True)
class ExperimentSection:
    name: str = ""  # resolved: the key, else MLFLOW_EXPERIMENT_NAME, else the package name
    restore_if_deleted: bool = True
    artifact_location: str | None = None  # create_experiment_kwargs.artifact_location as configured
    tags: Mapping[str, str] = field(default_factory=_empty)  # create_experiment_kwargs.tags


@dataclass(frozen=True)
class AttachedSection:
    end_run: bool = False
    record_failure: bool = False


@dataclass(frozen=True)
class RunSection:
    id: str | None = None  # resolved: the key, else MLFLOW_RUN_ID
    id_source: str | None = None  # where the id came from, for error messages
    name: str | None = None
    description: str | None = None
    nested: bool = True
    tags: Mapping[str, str] = field(default_factory=_empty)
    attached: AttachedSection = field(default_factory=AttachedSection)


@dataclass(frozen=True)
class ParamsSection:
    """``tracking.params`` (``dict_params.flatten``, ``.recursive``, ``.sep`` and ``long_params_strategy``)."""

    flatten: bool = True
    recursive: bool = True
    sep: str = "."
    long_params_strategy: str = "fail"


@dataclass(frozen=True)
class TrackingSection:
    child_runs: str = "none"  # tracking.child_runs.by: none | pipeline | namespace
    disable_tracking: DisableTrackingSection = field(default_factory=DisableTrackingSection)
    autolog: AutologSection = field(default_factory=AutologSection)
    lineage: LineageSection = field(default_factory=LineageSection)
    timeline: TimelineSection = field(default_factory=TimelineSection)
    system_metrics: SystemMetricsSection = field(default_factory=SystemMetricsSection)
    experiment: ExperimentSection = field(default_factory=ExperimentSection)
    run: RunSection = field(default_factory=RunSection)
    params: ParamsSection = field(default_factory=ParamsSection)


@dataclass(frozen=True)
class UiSection:
    host: str = "127.0.0.1"
    port: int = 5000


@dataclass(frozen=True)
class MlflowConfig:
    """The validated, resolved configuration of one Kedro run's tracking.

    Build it with :func:`~kedro_mlflow_runs.config.load_config` (from a Kedro context) or
    :func:`~kedro_mlflow_runs.config.build_config` (from a plain mapping).

    Attributes:
        server: ``server.*``: the resolved tracking and registry URIs, credentials, HTTP settings.
        tracking: ``tracking.*``: experiment, run, parameters, autologging, lineage, timeline, ...
        ui: ``ui.*``.
        project_path: the Kedro project the config belongs to.
        source: the file(s) the config came from, for error messages.
    """

    server: ServerSection = field(default_factory=ServerSection)
    tracking: TrackingSection = field(default_factory=TrackingSection)
    ui: UiSection = field(default_factory=UiSection)
    project_path: str | None = None
    source: str = "defaults"

    @classmethod
    def for_store(cls, tracking_uri: str, registry_uri: str | None = None) -> MlflowConfig:
        """The defaults, for a run in the store ``tracking_uri`` (a worker attaching to a handle)."""
        return cls(server=ServerSection(tracking_uri=tracking_uri, registry_uri=registry_uri))

    def tracking_disabled_for(self, pipeline_names: Sequence[str] | None) -> bool:
        """Whether every requested pipeline (``__default__`` when none) has tracking disabled."""
        disabled = self.tracking.disable_tracking.pipelines
        names = list(pipeline_names or ["__default__"])
        return bool(disabled) and all(n in disabled for n in names)

    @property
    def artifact_location(self) -> str | None:
        """Where a new experiment keeps artifacts: ``tracking.experiment.create_experiment_kwargs.
        artifact_location``; else, for a local sqlite store, ``<db dir>/mlartifacts``.

        None for other stores (a server decides; a file store keeps them inside).
        """
        configured = self.tracking.experiment.artifact_location
        if configured:
            return configured
        uri = self.server.tracking_uri
        if not uri.startswith("sqlite:///"):
            return None
        db = uri[len("sqlite:///") :].partition("?")[0]
        if not db or db == ":memory:":
            return None
        return (Path(db).parent / "mlartifacts").as_uri()
