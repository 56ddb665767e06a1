"""mlflow.yml: schema, defaults, environment overrides and validation.

The layout follows kedro-mlflow's where the concept is the same (``server.*``,
``tracking.experiment.*``, ``tracking.run.*``, ``tracking.params.*``,
``tracking.disable_tracking.*``), plus our own keys for run tags and attach behaviour.

Nothing here imports MLflow: a pipeline with tracking disabled never pays for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kedro.config import MissingConfigException

from .._redact import MLFLOW_AUTH_ENV_VAR, has_token_only_userinfo, redact_uri, safe_cause, split_credentials
from ._schema import Locator, OptionalOf, describe, validate
from ..errors import ConfigError
from ..params import LONG_PARAMS_STRATEGIES

__all__ = [
    "CONFIG_PATTERNS",
    "MlflowConfig",
    "build_config",
    "config_from_project",
    "credentials_env",
    "default_tracking_uri",
    "load_config",
    "redact_uri",
    "resolve_tracking_uri",
    "safe_cause",
]

logger = logging.getLogger(__name__)

#: Where Kedro's config loader looks for our file(s) in every environment.
CONFIG_PATTERNS = ["mlflow*", "mlflow*/**", "**/mlflow*"]

_OPTIONAL_INT = OptionalOf(int)

#: ``tracking.lineage.digest``: how a dataset's digest is computed (see docs/lineage-and-timeline.md).
LINEAGE_DIGESTS = ("auto", "stat", "content", "none")

#: MLflow's own switch for system metrics; it turns ``tracking.system_metrics`` on too.
SYSTEM_METRICS_ENV_VAR = "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING"

#: server.http key -> (MLflow environment variable, our default when neither mlflow.yml nor the
#: environment sets it; None leaves MLflow's own default).
HTTP_SETTINGS = {
    "max_retries": ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", 5),
    "backoff_factor": ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", 1),
    "timeout": ("MLFLOW_HTTP_REQUEST_TIMEOUT", None),
}

# key -> default value, or a nested dict. The default's type is the accepted type, except
# where _TYPES says otherwise (None defaults are strings).
_SCHEMA: dict[str, Any] = {
    "server": {
        "mlflow_tracking_uri": None,
        "mlflow_registry_uri": None,
        "credentials": None,
        "http": {"max_retries": _OPTIONAL_INT, "backoff_factor": _OPTIONAL_INT, "timeout": _OPTIONAL_INT},
        # kedro-mlflow's key: a RequestHeaderProvider subclass MLflow asks for headers on every request
        "request_header_provider": {"type": None, "pass_context": False, "init_kwargs": {}},
    },
    "tracking": {
        "disable_tracking": {"pipelines": [], "disable_autologging": True},
        "autolog": {"enabled": False, "flavors": [], "kwargs": {}},
        "lineage": {"enabled": True, "digest": "auto"},
        "timeline": {"enabled": True},
        "system_metrics": {"enabled": False, "sampling_interval": 10.0, "samples_before_logging": 1},
        "experiment": {
            "name": None,
            "restore_if_deleted": True,
            "create_experiment_kwargs": {"artifact_location": None, "tags": OptionalOf(dict)},
        },
        "run": {
            "id": None,
            "name": None,
            "description": None,
            "nested": True,
            "tags": {},
            "attached": {"end_run": False, "record_failure": False},
        },
        "params": {
            "dict_params": {"flatten": True, "recursive": True, "sep": "."},
            "long_params_strategy": "fail",
        },
    },
    "ui": {"host": "127.0.0.1", "port": 5000},
}

@dataclass(frozen=True)
class HeaderProviderSpec:
    """``server.request_header_provider``: the class MLflow asks for extra headers on each request."""

    type: str  # "package.module.Class", imported when a run starts
    pass_context: bool = False  # construct it with kedro_context=<the KedroContext>
    init_kwargs: Mapping[str, Any] = field(default_factory=dict, repr=False)  # may hold tokens


@dataclass(frozen=True)
class MlflowConfig:
    """The validated, resolved configuration of one Kedro run's tracking.

    Build it with :func:`load_config` (from a Kedro context) or :func:`build_config`
    (from a plain mapping).
    """

    tracking_uri: str
    experiment_name: str
    registry_uri: str | None = None
    credentials: str | None = None
    restore_if_deleted: bool = True
    run_id: str | None = None
    run_id_source: str | None = None
    run_name: str | None = None
    nested: bool = True
    run_tags: Mapping[str, str] = field(default_factory=dict)
    attached_end_run: bool = False
    attached_record_failure: bool = False
    flatten_dict_params: bool = True
    recursive_dict_params: bool = True
    dict_params_sep: str = "."
    long_params_strategy: str = "fail"
    disabled_pipelines: tuple[str, ...] = ()
    http_env: Mapping[str, str] = field(default_factory=dict)
    header_provider: HeaderProviderSpec | None = None
    disable_autologging: bool = True
    autolog_flavors: tuple[str, ...] | None = None  # None: off; (): every library MLflow autologs
    autolog_kwargs: Mapping[str, Any] = field(default_factory=dict)
    experiment_artifact_location: str | None = None
    experiment_tags: Mapping[str, str] = field(default_factory=dict)
    uri_credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    default_store: bool = False
    project_path: str | None = None
    run_description: str | None = None
    lineage: bool = True
    lineage_digest: str = "auto"
    timeline: bool = True
    system_metrics: bool = False
    system_metrics_sampling_interval: float = 10.0
    system_metrics_samples_before_logging: int = 1
    ui_host: str = "127.0.0.1"
    ui_port: int = 5000
    source: str = "defaults"

    def tracking_disabled_for(self, pipeline_names: list[str] | tuple[str, ...] | None) -> bool:
        """Whether every requested pipeline (``__default__`` when none) has tracking disabled."""
        names = list(pipeline_names or ["__default__"])
        return bool(self.disabled_pipelines) and all(n in self.disabled_pipelines for n in names)

    @property
    def artifact_location(self) -> str | None:
        """Where a new experiment keeps artifacts: ``tracking.experiment.create_experiment_kwargs.
        artifact_location``; else, for a local sqlite store, ``<db dir>/mlartifacts``.

        None for other stores (a server decides; a file store keeps them inside).
        """
        if self.experiment_artifact_location:
            return self.experiment_artifact_location
        if not self.tracking_uri.startswith("sqlite:///"):
            return None
        db = self.tracking_uri[len("sqlite:///") :].partition("?")[0]
        if not db or db == ":memory:":
            return None
        return (Path(db).parent / "mlartifacts").as_uri()

    @property
    def redacted_tracking_uri(self) -> str:
        """The tracking URI with any password replaced by ``***``."""
        return redact_uri(self.tracking_uri)


def default_tracking_uri(project_path: Path) -> str:
    """``sqlite:///<project root>/mlflow.db``: absolute, whatever the working directory."""
    return f"sqlite:///{(Path(project_path) / 'mlflow.db').resolve().as_posix()}"


_SCHEMELESS_URIS = ("databricks", "databricks-uc", "uc")


def resolve_tracking_uri(uri: str, project_path: Path) -> str:
    """Make a local store URI absolute against the project root; leave remote URIs alone.

    ``sqlite:///mlflow.db`` -> ``sqlite:////<project>/mlflow.db``; ``mlruns`` ->
    ``file:///<project>/mlruns``; ``http://...``, ``postgresql://...`` unchanged.
    """
    project_path = Path(project_path)
    if uri in _SCHEMELESS_URIS:
        return uri
    if uri.startswith("sqlite:///"):
        db = uri[len("sqlite:///") :]
        db_path, sep, query = db.partition("?")
        if db_path and db_path != ":memory:" and not db_path.startswith("/"):
            db_path = (project_path / db_path).resolve().as_posix()
            return f"sqlite:///{db_path}{sep}{query}"
        return uri
    scheme = urlsplit(uri).scheme
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):
        return (project_path / uri).resolve().as_uri()
    if scheme == "file" and not uri.startswith("file:/"):
        return (project_path / uri[len("file:") :]).resolve().as_uri()
    return uri


def build_config(
    raw: Mapping[str, Any] | None,
    *,
    project_path: Path | str,
    package_name: str | None = None,
    environ: Mapping[str, str] | None = None,
    files: Mapping[str, Mapping[str, Any]] | None = None,
    source: str = "mlflow.yml",
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
    where = Locator(files, source)
    raw = _numeric_port(raw, where)
    cfg = validate(raw, _SCHEMA, "", where)
    header_provider = _header_provider(cfg["server"]["request_header_provider"], where)
    server, tracking = cfg["server"], cfg["tracking"]
    run, params = tracking["run"], tracking["params"]

    strategy = params["long_params_strategy"]
    if strategy not in LONG_PARAMS_STRATEGIES:
        key = "tracking.params.long_params_strategy"
        raise ConfigError(
            f"'{key}' in {where(key)} is {strategy!r}; use one of: {', '.join(LONG_PARAMS_STRATEGIES)}.",
            key=key,
        )
    flavors = tracking["autolog"]["flavors"]
    if not all(isinstance(f, str) and f.strip() for f in flavors):
        key = "tracking.autolog.flavors"
        raise ConfigError(f"'{key}' in {where(key)} must be a list of MLflow flavor names such as sklearn, "
                          f"got {flavors!r}.", key=key)
    pipelines = tracking["disable_tracking"]["pipelines"]
    if not all(isinstance(p, str) for p in pipelines):
        key = "tracking.disable_tracking.pipelines"
        raise ConfigError(f"'{key}' in {where(key)} must be a list of pipeline names (strings).", key=key)
    tags = run["tags"]
    for tag_key, tag_value in tags.items():
        if isinstance(tag_value, (Mapping, list)):
            key = f"tracking.run.tags.{tag_key}"
            raise ConfigError(
                f"'{key}' in {where(key)} must be a plain value (string, number, boolean), "
                f"got {describe(tag_value)}.",
                key=key,
            )
    digest = tracking["lineage"]["digest"]
    if digest not in LINEAGE_DIGESTS:
        key = "tracking.lineage.digest"
        raise ConfigError(f"'{key}' in {where(key)} is {digest!r}; use one of: {', '.join(LINEAGE_DIGESTS)}.",
                          key=key)
    system = tracking["system_metrics"]
    if system["sampling_interval"] <= 0:
        key = "tracking.system_metrics.sampling_interval"
        raise ConfigError(f"'{key}' in {where(key)} must be a number of seconds above 0, got "
                          f"{system['sampling_interval']!r}.", key=key)
    if system["samples_before_logging"] < 1:
        key = "tracking.system_metrics.samples_before_logging"
        raise ConfigError(f"'{key}' in {where(key)} must be 1 or more, got {system['samples_before_logging']!r}.",
                          key=key)
    if not params["dict_params"]["sep"]:
        key = "tracking.params.dict_params.sep"
        raise ConfigError(f"'{key}' in {where(key)} must be a non-empty string.", key=key)
    http_env: dict[str, str] = {}
    for name, (env_var, ours) in HTTP_SETTINGS.items():
        value = server["http"][name]
        if value is not None:
            if value < 0:
                key = f"server.http.{name}"
                raise ConfigError(f"'{key}' in {where(key)} must be 0 or more, got {value}.", key=key)
            http_env[env_var] = str(value)
        elif env_var not in env and ours is not None:
            http_env[env_var] = str(ours)
    if not 0 < cfg["ui"]["port"] < 65536:
        raise ConfigError(f"'ui.port' in {where('ui.port')} must be between 1 and 65535.", key="ui.port")
    for key in ("tracking.run.id", "tracking.run.name", "tracking.experiment.name", "server.mlflow_tracking_uri",
                "tracking.run.description"):
        value = _get(cfg, key)
        if value is not None and not str(value).strip():
            raise ConfigError(f"'{key}' in {where(key)} is empty; remove it or give a value.", key=key)

    uri = server["mlflow_tracking_uri"] or env.get("MLFLOW_TRACKING_URI") or None
    default_store = uri is None
    tracking_uri = default_tracking_uri(project_path) if uri is None else resolve_tracking_uri(uri, project_path)
    tracking_uri, uri_credentials = _split_uri(
        tracking_uri, "server.mlflow_tracking_uri" if server["mlflow_tracking_uri"] else "MLFLOW_TRACKING_URI", env)
    registry = server["mlflow_registry_uri"] or env.get("MLFLOW_REGISTRY_URI") or None
    if registry is not None:
        registry, registry_credentials = _split_uri(
            resolve_tracking_uri(registry, project_path),
            "server.mlflow_registry_uri" if server["mlflow_registry_uri"] else "MLFLOW_REGISTRY_URI", env)
        clash = _clashing(uri_credentials, registry_credentials)
        if clash:
            key = "server.mlflow_registry_uri"
            raise ConfigError(
                f"'{key}' in {where(key)} carries other credentials than the tracking URI; MLflow reads "
                f"one set ({', '.join(sorted(clash))}). Use the same user and password, or remove them from "
                f"the URIs and set them with server.credentials.",
                key=key,
            )
        uri_credentials = {**uri_credentials, **registry_credentials}

    if run["id"]:
        run_id, run_id_source = run["id"], f"tracking.run.id in {where('tracking.run.id')}"
    elif env.get("MLFLOW_RUN_ID"):
        run_id, run_id_source = env["MLFLOW_RUN_ID"], "the MLFLOW_RUN_ID environment variable"
    else:
        run_id, run_id_source = None, None

    experiment = (
        tracking["experiment"]["name"]
        or env.get("MLFLOW_EXPERIMENT_NAME")
        or package_name
        or project_path.name
    )
    return MlflowConfig(
        tracking_uri=tracking_uri,
        registry_uri=registry,
        credentials=server["credentials"],
        http_env=http_env,
        header_provider=header_provider,
        disable_autologging=tracking["disable_tracking"]["disable_autologging"],
        autolog_flavors=tuple(tracking["autolog"]["flavors"]) if tracking["autolog"]["enabled"] else None,
        autolog_kwargs=dict(tracking["autolog"]["kwargs"]),
        experiment_artifact_location=tracking["experiment"]["create_experiment_kwargs"]["artifact_location"],
        experiment_tags={str(k): str(v) for k, v in
                         (tracking["experiment"]["create_experiment_kwargs"]["tags"] or {}).items()},
        uri_credentials=uri_credentials,
        experiment_name=experiment,
        restore_if_deleted=tracking["experiment"]["restore_if_deleted"],
        run_id=run_id,
        run_id_source=run_id_source,
        run_name=run["name"],
        nested=run["nested"],
        run_tags={str(k): str(v) for k, v in tags.items()},
        attached_end_run=run["attached"]["end_run"],
        attached_record_failure=run["attached"]["record_failure"],
        flatten_dict_params=params["dict_params"]["flatten"],
        recursive_dict_params=params["dict_params"]["recursive"],
        dict_params_sep=params["dict_params"]["sep"],
        long_params_strategy=strategy,
        disabled_pipelines=tuple(pipelines),
        default_store=default_store,
        project_path=str(project_path),
        run_description=run["description"],
        lineage=tracking["lineage"]["enabled"],
        lineage_digest=digest,
        timeline=tracking["timeline"]["enabled"],
        system_metrics=system["enabled"] or _truthy(env.get(SYSTEM_METRICS_ENV_VAR)),
        system_metrics_sampling_interval=float(system["sampling_interval"]),
        system_metrics_samples_before_logging=system["samples_before_logging"],
        ui_host=cfg["ui"]["host"],
        ui_port=cfg["ui"]["port"],
        source=source,
    )


def _split_uri(uri: str, key: str, env: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """:func:`split_credentials`, saying when a userinfo was dropped because MLflow sends nothing for
    it, and leaving a request-auth provider the environment names (``MLFLOW_TRACKING_AUTH``) in
    charge: MLflow hands it to ``requests``, which then ignores the URI's userinfo."""
    if has_token_only_userinfo(uri):
        logger.warning(
            "%s (%s) has a user or token but no ':' before '@': MLflow's HTTP client sends no credentials "
            "for it, so it is left out of the URI and nothing else changes. To authenticate, write "
            "http(s)://<user>:<password>@<host> (or <token>:@ for basic auth with an empty password), or set "
            "MLFLOW_TRACKING_TOKEN (a bearer token) through server.credentials.", key, redact_uri(uri))
    clean, credentials = split_credentials(uri)
    if env.get(MLFLOW_AUTH_ENV_VAR) and MLFLOW_AUTH_ENV_VAR in credentials:
        credentials = {}
    return clean, credentials


def _clashing(tracking: Mapping[str, str], registry: Mapping[str, str]) -> set[str]:
    """The variables the tracking and registry URIs' credentials would set differently."""
    names = {k for k, v in registry.items() if tracking.get(k, v) != v}
    basic = "MLFLOW_TRACKING_USERNAME"
    if (basic in tracking and MLFLOW_AUTH_ENV_VAR in registry) or (MLFLOW_AUTH_ENV_VAR in tracking and basic in registry):
        names |= {basic, MLFLOW_AUTH_ENV_VAR}  # the auth provider's basic auth replaces MLflow's own
    return names


def _truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("true", "1", "yes", "on")


def _numeric_port(raw: Any, where: Locator) -> Any:
    """``ui.port: "5000"`` (kedro-mlflow's template writes a string) as the integer 5000."""
    ui = raw.get("ui") if isinstance(raw, Mapping) else None
    port = ui.get("port") if isinstance(ui, Mapping) else None
    if not isinstance(port, str):
        return raw
    if not port.strip().isdigit():
        raise ConfigError(f"'ui.port' in {where('ui.port')} must be a port number, got {port!r}.", key="ui.port")
    return {**raw, "ui": {**ui, "port": int(port)}}


def _get(cfg: Mapping[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


def _raw_files(config_loader: Any, conf_source: str) -> dict[str, Mapping[str, Any]]:
    """Per-file raw content of the mlflow config files, for naming the file in errors.

    Uses the config loader's reader when it has one; returns ``{}`` otherwise.
    """
    reader = getattr(config_loader, "_read_raw_config", None)
    if reader is None:
        return {}
    try:
        from omegaconf import OmegaConf

        base, env, *_ = reader("mlflow")
        out: dict[str, Mapping[str, Any]] = {}
        for path, content in {**base, **env}.items():
            try:
                rel = Path(path).relative_to(Path(conf_source).parent)
            except ValueError:
                rel = Path(path)
            out[rel.as_posix()] = OmegaConf.to_container(content, resolve=False)  # type: ignore[assignment]
        return out
    except Exception:  # attribution is best effort; validation still runs
        return {}


_ADJECTIVES = ("amber", "brave", "calm", "deft", "eager", "fond", "glad", "hardy", "keen", "lucid", "mellow",
               "nimble", "quiet", "rapid", "sunny", "tidy", "vivid", "witty")
_NOUNS = ("otter", "heron", "maple", "comet", "falcon", "lynx", "pebble", "quartz", "raven", "spruce", "tapir",
          "willow", "yak", "zephyr", "badger", "cedar", "dune", "fjord")


def random_run_name() -> str:
    """A random readable name (``keen-otter-042``): what ``${km.random_name:}`` in mlflow.yml gives."""
    import random

    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randrange(1000):03d}"


def _ensure_resolvers() -> None:
    """Register ``km.random_name`` (kedro-mlflow's resolver, accepted for a run or experiment name)
    with OmegaConf the first time our hooks read a project's config; never at import."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("km.random_name"):
        register = getattr(OmegaConf, "register_resolver", None)  # OmegaConf 2.4 deprecates register_new_resolver
        if register is not None:
            register("km.random_name", random_run_name, use_cache=False)
        else:  # pragma: no cover - OmegaConf < 2.4
            OmegaConf.register_new_resolver("km.random_name", random_run_name, use_cache=False)


def load_config(context: Any) -> MlflowConfig:
    """Read ``conf/<env>/mlflow.yml`` through the context's config loader and validate it.

    A project without mlflow.yml gets the defaults.
    """
    _ensure_resolvers()
    loader = context.config_loader
    patterns = getattr(loader, "config_patterns", None)
    if isinstance(patterns, dict) and "mlflow" not in patterns:
        patterns["mlflow"] = list(CONFIG_PATTERNS)
    conf_source = str(getattr(loader, "conf_source", Path(context.project_path) / "conf"))
    try:
        raw = loader["mlflow"]
    except (MissingConfigException, KeyError):
        raw = {}
    except Exception as exc:  # OmegaConf's errors: a list at the top, an unknown resolver, bad YAML
        hint = (
            " Kedro's config loader resolves ${oc.env:...} only in credentials: to use it in mlflow.yml, "
            "add CONFIG_LOADER_ARGS = {\"custom_resolvers\": {\"oc.env\": oc.env}} (from omegaconf.resolvers "
            "import oc) to settings.py, or set MLFLOW_TRACKING_URI / MLFLOW_EXPERIMENT_NAME / MLFLOW_RUN_ID "
            "in the environment instead (they apply when mlflow.yml leaves the key unset)."
            if "oc.env" in str(exc) else " It must be a mapping of the keys in docs/mlflow_yml.md."
        )
        raise ConfigError(
            f"Could not read mlflow.yml under {conf_source}: {type(exc).__name__}: {redact_uri(str(exc), limit=2000)}.{hint}"
        ) from safe_cause(exc)
    files = _raw_files(loader, conf_source) if raw else {}
    source = " and ".join(files) if files else f"mlflow.yml under {conf_source}"
    return build_config(
        raw,
        project_path=Path(context.project_path),
        package_name=getattr(context, "_package_name", None),
        files=files,
        source=source,
    )


def config_from_project(project_path: str | Path, env: str | None = None) -> MlflowConfig:
    """Read ``<project>/conf`` with Kedro's default config loader (when no context is at hand)."""
    from types import SimpleNamespace

    from kedro.config import OmegaConfigLoader

    try:
        from kedro.framework.project import PACKAGE_NAME
    except ImportError:  # pragma: no cover
        PACKAGE_NAME = None  # noqa: N806
    path = Path(project_path)
    loader = OmegaConfigLoader(conf_source=str(path / "conf"), env=env, base_env="base", default_run_env="local")
    return load_config(SimpleNamespace(config_loader=loader, project_path=path, _package_name=PACKAGE_NAME))


def credentials_env(config: MlflowConfig, context: Any) -> dict[str, str]:
    """The environment variables of the credentials entry named by ``server.credentials``.

    MLflow reads ``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``, ``AWS_*`` and the like from the
    environment; the hooks set these for the duration of the run only. Values are never logged,
    nor stored on the config.

    Raises:
        ConfigError: ``server.credentials`` names an entry credentials.yml does not have.
    """
    if not config.credentials:
        return {}
    try:
        creds = context.config_loader["credentials"]
    except Exception:
        creds = {}
    entry = creds.get(config.credentials) if isinstance(creds, Mapping) else None
    if not isinstance(entry, Mapping):
        raise ConfigError(
            f"'server.credentials' in {config.source} names '{config.credentials}', but "
            f"credentials.yml has no such entry (a mapping of environment variable names to "
            f"values). Add it to conf/local/credentials.yml or remove the key.",
            key="server.credentials",
        )
    return {str(key): str(value) for key, value in entry.items() if value is not None}


def _header_provider(section: Mapping[str, Any], where: Locator) -> HeaderProviderSpec | None:
    """Check ``server.request_header_provider`` without importing the class (that waits for a run)."""
    type_path = section["type"]
    if type_path is None:
        return None
    key = "server.request_header_provider.type"
    if not isinstance(type_path, str) or "." not in type_path.strip(".") or " " in type_path:
        raise ConfigError(
            f"'{key}' in {where(key)} must be the import path of a class, such as "
            f"'my_project.auth.TokenHeaderProvider', got {type_path!r}.",
            key=key,
        )
    return HeaderProviderSpec(type_path, bool(section["pass_context"]), dict(section["init_kwargs"]))
