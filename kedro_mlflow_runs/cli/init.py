"""``kedro mlflow init``: write a commented mlflow.yml with every key and its default."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="init")
@click.option("--env", "-e", default="local", show_default=True, help="Kedro environment to write to.")
@click.option("--force", is_flag=True, help="Write even though the project already has an mlflow.yml.")
def init(env: str, force: bool) -> None:
    """Write a commented conf/<env>/mlflow.yml with every key and its default.

    Refuses when the project already has an mlflow configuration in any environment (any file
    Kedro's config loader reads for mlflow.yml: conf/<env>/mlflow*.yml, conf/<env>/mlflow*/**,
    conf/<env>/**/mlflow*): a full template in conf/local would override conf/base's settings
    (experiment, tags, tracking URI).

    Example: kedro mlflow init --env base
    """
    # Kedro's session machinery and the plugin's config load when the command runs, not for every
    # `kedro` command
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project

    from .._version import docs_page
    from ..config.template import render_template
    from ._project import project_root

    metadata = bootstrap_project(project_root())
    conf = Path(metadata.project_path) / settings.CONF_SOURCE
    target = conf / env / "mlflow.yml"
    existing = _mlflow_config_files(conf, settings)
    if existing and not force:
        names = ", ".join(str(p.relative_to(metadata.project_path)) for p in existing)
        raise click.ClickException(
            f"This project already has an mlflow configuration ({names}); writing the full template to "
            f"{target.relative_to(metadata.project_path)} would change where runs go. Edit that file instead "
            f"({docs_page('mlflow_yml')} lists every key), or pass --force to write the template anyway."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_template())
    click.echo(f"Wrote {target}")


def _mlflow_config_files(conf: Path, settings: object) -> list[Path]:
    """The files Kedro's config loader reads for the ``mlflow`` key, in every environment under ``conf``.

    The same patterns (the project's ``CONFIG_LOADER_ARGS["config_patterns"]["mlflow"]``, else
    ours), matched the way ``OmegaConfigLoader`` matches them (fsspec's glob, ``**`` recursive),
    hidden files and folders left out, only ``.yml``, ``.yaml`` and ``.json`` files.
    """
    from fsspec.implementations.local import LocalFileSystem

    from ..config import CONFIG_PATTERNS

    loader_args = getattr(settings, "CONFIG_LOADER_ARGS", None) or {}
    patterns = (loader_args.get("config_patterns") or {}).get("mlflow") or CONFIG_PATTERNS
    if not conf.is_dir():
        return []
    fs = LocalFileSystem()
    found: set[Path] = set()
    for env_dir in (p for p in conf.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for pattern in patterns:
            for match in fs.glob(f"{env_dir.as_posix()}/{pattern}"):
                path = Path(match)
                hidden = any(part.startswith(".") for part in path.relative_to(conf).parts)
                if not hidden and path.suffix in (".yml", ".yaml", ".json") and path.is_file():
                    found.add(path)
    return sorted(found)
