"""Every private name of Kedro and MLflow the plugin uses, one module per library, each with a
``verify()`` that a test runs against the installed version. Nothing else in the package may name
a private attribute of either."""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["run_checks"]


def run_checks(checks: Iterable[Callable[[], str | None]]) -> list[str]:
    """What each check says is gone (None: all there); a check that raises names itself and why."""
    missing = []
    for check in checks:
        try:
            problem = check()
        except Exception as exc:  # an incompatible version: say which name, and why
            problem = f"{check.__name__.removeprefix('_check_')} ({type(exc).__name__}: {exc})"
        if problem:
            missing.append(problem)
    return missing
