"""Reading a project's mlflow.yml through Kedro's config loader, and the credentials it names."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml
from kedro.config import MissingConfigException, OmegaConfigLoader
from omegaconf import OmegaConf
from yaml.nodes import MappingNode, Node, ScalarNode

from .._redact import redact_uri, safe_cause
from .._version import docs_page
from ..compat.kedro import package_name, raw_config_files, register_resolver
from ..errors import ConfigError
from .build import build_config
from .model import MlflowConfig

__all__ = ["CONFIG_PATTERNS", "config_from_project", "credentials_env", "load_config", "random_run_name"]

#: Where Kedro's config loader looks for our file(s) in every environment.
CONFIG_PATTERNS: Final = ("mlflow*", "mlflow*/**", "**/mlflow*")

_ADJECTIVES: Final = ("amber", "brave", "calm", "deft", "eager", "fond", "glad", "hardy", "keen", "lucid", "mellow",
                      "nimble", "quiet", "rapid", "sunny", "tidy", "vivid", "witty")
_NOUNS: Final = ("otter", "heron", "maple", "comet", "falcon", "lynx", "pebble", "quartz", "raven", "spruce", "tapir",
                 "willow", "yak", "zephyr", "badger", "cedar", "dune", "fjord")


def random_run_name() -> str:
    """A random readable name (``keen-otter-042``): what ``${km.random_name:}`` in mlflow.yml gives."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randrange(1000):03d}"


def ensure_resolvers() -> None:
    """Register ``km.random_name`` (kedro-mlflow's resolver, accepted for a run or experiment name)
    with OmegaConf the first time our hooks read a project's config; never at import."""
    register_resolver("km.random_name", random_run_name)


def load_config(context: Any) -> MlflowConfig:
    """Read ``conf/<env>/mlflow.yml`` through the context's config loader and validate it.

    A project without mlflow.yml gets the defaults.

    Raises:
        ConfigError: the file cannot be read (a list at the top, an unknown resolver, bad YAML), or it
            holds a bad key or value; naming the key and the file.
    """
    return _read(context.config_loader, Path(context.project_path), package_name(context))


def _read(loader: Any, project_path: Path, package: str | None) -> MlflowConfig:
    """:func:`load_config` with a config loader, the project root and its package name."""
    ensure_resolvers()
    patterns = getattr(loader, "config_patterns", None)
    if isinstance(patterns, dict) and "mlflow" not in patterns:
        patterns["mlflow"] = list(CONFIG_PATTERNS)
    conf_source = str(getattr(loader, "conf_source", project_path / "conf"))
    try:
        raw = loader["mlflow"]
    except (MissingConfigException, KeyError):
        raw = {}
    except Exception as exc:  # OmegaConf's errors: a list at the top, an unknown resolver, bad YAML
        syntax = _yaml_error(loader, Path(conf_source))
        if syntax is not None:  # Kedro's message gives a 0-based line: say where, as an editor counts
            raise ConfigError(f"mlflow.yml is not valid YAML: {syntax}. Fix the YAML syntax there (indentation, a "
                              f"missing ':', an unclosed bracket or quote).") from None
        hint = (
            " Kedro's config loader resolves ${oc.env:...} only in credentials: to use it in mlflow.yml, "
            "add CONFIG_LOADER_ARGS = {\"custom_resolvers\": {\"oc.env\": oc.env}} (from omegaconf.resolvers "
            "import oc) to settings.py, or set MLFLOW_TRACKING_URI / MLFLOW_EXPERIMENT_NAME / MLFLOW_RUN_ID "
            "in the environment instead (they apply when mlflow.yml leaves the key unset)."
            if "oc.env" in str(exc) else f" It must be a mapping of the keys listed at {docs_page('mlflow_yml')}."
        )
        raise ConfigError(
            f"Could not read mlflow.yml under {conf_source}: {type(exc).__name__}: "
            f"{redact_uri(str(exc), limit=2000)}.{hint}"
        ) from safe_cause(exc)
    files, lines = _raw_files(loader, conf_source) if raw else ({}, {})
    source = " and ".join(files) if files else f"mlflow.yml under {conf_source}"
    return build_config(raw, project_path=project_path, package_name=package, files=files, source=source,
                        lines=lines)


def _yaml_error(loader: Any, conf_source: Path) -> str | None:
    """Where the first mlflow config file of the loader's environments that is not valid YAML breaks
    (file, 1-based line and column, what), or None."""
    envs = [getattr(loader, "base_env", None) or "base",
            getattr(loader, "env", None) or getattr(loader, "default_run_env", None) or "local"]
    for env in dict.fromkeys(envs):
        folder = conf_source / env
        paths = sorted({p for pattern in ("mlflow*.yml", "mlflow*.yaml", "mlflow*/**/*.yml", "**/mlflow*.yml")
                        for p in folder.glob(pattern) if p.is_file()})
        for path in paths:
            try:
                yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.MarkedYAMLError as err:
                mark = err.problem_mark or err.context_mark
                where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
                opened = err.context_mark
                context = f"{err.context} (from line {opened.line + 1})" if err.context and opened else err.context
                what = ": ".join(str(part) for part in (context, err.problem) if part)
                return f"{path.relative_to(conf_source.parent).as_posix()}{where}: {what}"
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue
    return None


def _key_lines(text: str) -> dict[str, int]:
    """``{dotted key: 1-based line}`` of a YAML text (best effort: {} when it does not parse)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    found: dict[str, int] = {}

    def walk(node: Node | None, prefix: str) -> None:
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if isinstance(key, ScalarNode):
                    dotted = f"{prefix}.{key.value}" if prefix else str(key.value)
                    found.setdefault(dotted, key.start_mark.line + 1)
                    walk(value, dotted)

    walk(root, "")
    return found


def _raw_files(config_loader: Any, conf_source: str) -> tuple[dict[str, Mapping[str, Any]], dict[str, dict[str, int]]]:
    """Per-file raw content of the mlflow config files and the line of each key, for naming the file
    and line in errors (best effort)."""
    out: dict[str, Mapping[str, Any]] = {}
    lines: dict[str, dict[str, int]] = {}
    try:
        found = raw_config_files(config_loader, "mlflow")
        for path, content in (found or {}).items():
            try:
                rel = Path(path).relative_to(Path(conf_source).parent)
            except ValueError:
                rel = Path(path)
            container = OmegaConf.to_container(content, resolve=False)
            if isinstance(container, Mapping):
                out[rel.as_posix()] = {str(k): v for k, v in container.items()}
                try:
                    lines[rel.as_posix()] = _key_lines(Path(path).read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError):
                    pass
    except Exception:  # attribution is best effort; validation still runs
        return out, lines
    return out, lines


def config_from_project(project_path: str | Path, env: str | None = None) -> MlflowConfig:
    """Read ``<project>/conf`` with Kedro's default config loader (when no context is at hand)."""
    # here, not at import: importing kedro.framework.project configures (and prints) Kedro's logging
    from kedro.framework import project as kedro_project

    path = Path(project_path)
    loader = OmegaConfigLoader(conf_source=str(path / "conf"), env=env, base_env="base", default_run_env="local")
    return _read(loader, path, kedro_project.PACKAGE_NAME)


def credentials_env(config: MlflowConfig, context: Any) -> dict[str, str]:
    """The environment variables of the credentials entry named by ``server.credentials``.

    MLflow reads ``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``, ``AWS_*`` and the like from the
    environment; the hooks set these for the duration of the run only. Values are never logged,
    nor stored on the config.

    Raises:
        ConfigError: ``server.credentials`` names an entry credentials.yml does not have.
    """
    name = config.server.credentials
    if not name:
        return {}
    try:
        creds = context.config_loader["credentials"]
    except Exception:
        creds = {}
    entry = creds.get(name) if isinstance(creds, Mapping) else None
    if not isinstance(entry, Mapping):
        raise ConfigError(
            f"'server.credentials' in {config.source} names '{name}', but "
            f"credentials.yml has no such entry (a mapping of environment variable names to "
            f"values). Add it to conf/local/credentials.yml or remove the key.",
            key="server.credentials",
        )
    return {str(key): str(value) for key, value in entry.items() if value is not None}
