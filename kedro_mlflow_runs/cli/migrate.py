"""``kedro mlflow migrate``: move a kedro-mlflow project over (the edits are planned in ``migration.py``)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="migrate")
@click.option("--env", "-e", default=None, help="Only this Kedro environment's conf/ folder (default: all).")
@click.option("--write", is_flag=True, help="Apply the changes (each file kept as <file>.bak); default: show them.")
def migrate(env: str | None, write: bool) -> None:
    """Move a kedro-mlflow project over: rewrite its catalog, imports and hooks.

    Prints each change (file:line: what) and a unified diff; --write applies them. Exits non-zero,
    saying what and why, when something cannot be migrated automatically; then nothing is written.

    Example: kedro mlflow migrate, then kedro mlflow migrate --write
    """
    # Kedro's session machinery and the migration planner load when the command runs, not for every `kedro` command
    from kedro.framework.startup import bootstrap_project

    from ..errors import KedroMlflowRunsError
    from ._project import project_root
    from .migration import RULESETS, plan_migration

    metadata = bootstrap_project(project_root())
    root = Path(metadata.project_path)
    try:
        plan = plan_migration(root, metadata.package_name, env)
    except KedroMlflowRunsError as exc:
        raise click.ClickException(str(exc)) from None
    if not plan.edits and not plan.problems:
        tools = " or ".join(rules.name for rules in RULESETS)
        click.echo(f"Nothing to rewrite: no dataset type, import or hook of {tools} found.")
        return
    if plan.changes:
        click.echo("Changes:\n  " + "\n  ".join(plan.changes))
        click.echo(plan.diff(root), nl=False)
    if write and plan.edits and plan.problems:
        click.echo("Nothing was written: fix what is listed below first (or by hand), then run again.")
    elif write and plan.edits:
        try:
            written = plan.write()
        except KedroMlflowRunsError as exc:
            raise click.ClickException(str(exc)) from None
        for path, backup in written:
            kept = f"the original is in {backup.name}" if backup else "its original was kept by an earlier run"
            click.echo(f"Wrote {path.relative_to(root).as_posix()} ({kept})")
    elif plan.edits:
        click.echo("Dry run: nothing was written. Run with --write to apply.")
    if plan.problems:
        raise click.ClickException("Some of the project cannot be migrated automatically:\n  "
                                   + "\n  ".join(plan.problems))
