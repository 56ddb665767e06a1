"""What a run says about itself: its tags (Kedro run, pipelines, runner, git commit, ...) and where it is."""

from __future__ import annotations

import getpass
import os
import re
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._redact import redact_uri
from .._version import __version__
from ..config import MlflowConfig
from ..core.liveness import process_alive
from ..handle import RunHandle
from ..params import MAX_TAG_VALUE_LENGTH

__all__ = ["command_line", "current_user", "git_commit", "opened_by_a_live_process", "run_tags", "run_tags_of_opener",
           "where"]


def runner_name(run_params: Mapping[str, Any]) -> str:
    runner = str(run_params.get("runner") or "")
    match = re.search(r"([A-Za-z_][\w]*)(?: object at 0x[0-9a-fA-F]+)?>?$", runner)
    if not runner or runner == "None" or not match:
        return "SequentialRunner"
    return match.group(1)


def command_line() -> str | None:
    try:
        import click

        ctx = click.get_current_context(silent=True)
    except Exception:  # pragma: no cover
        ctx = None
    if ctx is None:
        return None
    return redact_uri(" ".join(["kedro", *sys.argv[1:]]), limit=MAX_TAG_VALUE_LENGTH)


def run_tags(run_params: Mapping[str, Any], config: MlflowConfig) -> dict[str, str]:
    """The tags every run gets (user tags from mlflow.yml are added by the RunContext)."""
    names = run_params.get("pipeline_names") or ["__default__"]
    tags = {
        "kedro.run_id": str(run_params.get("run_id")),
        "kedro.pipeline_names": ",".join(names),
        "kedro.env": str(run_params.get("env") or "local"),
        "kedro.version": str(run_params.get("kedro_version")),
        "kedro_mlflow_runs.version": __version__,
        "kedro.runner": runner_name(run_params),
        # which process opened the run: `kedro mlflow close-run --stale` leaves a live one alone
        "kedro.host": socket.gethostname(),
        "kedro.pid": str(os.getpid()),
        "mlflow.source.name": "kedro run",
        "mlflow.source.type": "LOCAL",
    }
    if config.tracking.run.description:  # what the MLflow UI shows as the run's description
        tags["mlflow.note.content"] = config.tracking.run.description
    project_path = run_params.get("project_path") or config.project_path
    if project_path:  # kedro-mlflow's `project_path` tag
        tags["kedro.project_path"] = str(project_path)
    command = command_line()
    if command:
        tags["kedro.command"] = command
    user = current_user()
    if user:
        tags["mlflow.user"] = user
    commit = git_commit(run_params.get("project_path") or config.project_path or ".")
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def run_tags_of_opener(config: MlflowConfig) -> dict[str, str]:
    """The tags of a run ``kedro mlflow open-run`` opens for an orchestrator: no process owns it (each step
    attaches; ``close-run`` ends it), so it has no ``kedro.host`` / ``kedro.pid``."""
    tags = {
        "kedro.opened_by": "kedro mlflow open-run",
        "kedro_mlflow_runs.version": __version__,
        "mlflow.source.name": "kedro mlflow open-run",
        "mlflow.source.type": "LOCAL",
    }
    if config.tracking.run.description:
        tags["mlflow.note.content"] = config.tracking.run.description
    commit = git_commit(config.project_path or ".")
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def opened_by_a_live_process(tags: Mapping[str, str]) -> bool | None:
    """Whether the process that opened a run (its ``kedro.host`` / ``kedro.pid`` tags) is alive:
    None when that cannot be told (another host, or a run without the tags)."""
    return process_alive(tags.get("kedro.host"), tags.get("kedro.pid"))


def where(handle: RunHandle) -> str:
    """Where to see the run: its page on a server, or the ``mlflow ui`` command for a local store."""
    uri = redact_uri(handle.tracking_uri)
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/experiments/{handle.experiment_id}/runs/{handle.run_id}"
    return f"{uri} (open it with: mlflow ui --backend-store-uri {uri})"


def git_commit(project_path: str | Path) -> str | None:
    """The full commit sha checked out at ``project_path`` (or a folder above it), read from ``.git``
    without running git; None when it is not in a git checkout or the checkout cannot be read."""
    try:
        start = Path(project_path).resolve()
        for folder in (start, *start.parents):
            dot_git = folder / ".git"
            if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
                text = dot_git.read_text(encoding="utf-8").strip()
                if not text.startswith("gitdir:"):
                    return None
                git_dir = (folder / text[len("gitdir:"):].strip()).resolve()
            elif dot_git.is_dir():
                git_dir = dot_git
            else:
                continue
            return _resolve_head(git_dir)
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _resolve_head(git_dir: Path) -> str | None:
    head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    if not head.startswith("ref:"):
        return head if _is_sha(head) else None  # a detached HEAD
    ref = head[len("ref:"):].strip()
    common = git_dir
    commondir = git_dir / "commondir"  # a worktree keeps its branches in the main repository
    if commondir.is_file():
        common = (git_dir / commondir.read_text(encoding="utf-8").strip()).resolve()
    for base in (git_dir, common):
        loose = base / ref
        if loose.is_file():
            sha = loose.read_text(encoding="utf-8").strip()
            return sha if _is_sha(sha) else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            sha, _, name = line.partition(" ")
            if name.strip() == ref and _is_sha(sha):
                return sha
    return None  # an unborn branch (no commit yet)


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def current_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None
