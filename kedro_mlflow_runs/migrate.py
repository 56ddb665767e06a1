"""``kedro mlflow migrate``: move a kedro-mlflow project over, as text edits that keep comments.

What is rewritten:

* ``conf/**/catalog*.yml``: ``kedro_mlflow.io.*`` dataset types become ours (``MlflowModelTrackingDataset``
  becomes ``MlflowModelLoggerDataset``, ``MlflowModelLocalFileSystemDataset`` becomes
  ``MlflowModelSaverDataset``, the others keep their names). Their arguments are accepted as they are.
* ``src/<package>/settings.py``: kedro-mlflow's hook import and ``MlflowHook()`` in ``HOOKS`` are
  removed (this plugin registers its hooks itself).
* the package's other Python files (``src/<package>/**/*.py``): imports from ``kedro_mlflow.pipeline``
  (``pipeline_ml_factory``) and ``kedro_mlflow.io.*`` become ours; a hand-built
  ``KedroPipelineModel(...)`` is reported (its constructor differs here).
* ``conf/**/mlflow*.yml``: kedro-mlflow's keys are accepted as they are; nothing to rewrite.

What cannot be migrated is reported with the file, the line and why; nothing is guessed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Migration", "plan_migration"]

_TYPES = {
    "kedro_mlflow.io.artifacts.MlflowArtifactDataset": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset",
    "kedro_mlflow.io.metrics.MlflowMetricDataset": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset",
    "kedro_mlflow.io.metrics.MlflowMetricHistoryDataset": "kedro_mlflow_runs.io.metrics.MlflowMetricHistoryDataset",
    "kedro_mlflow.io.metrics.MlflowMetricsHistoryDataset": "kedro_mlflow_runs.io.metrics.MlflowMetricsHistoryDataset",
    "kedro_mlflow.io.models.MlflowModelTrackingDataset": "kedro_mlflow_runs.io.models.MlflowModelLoggerDataset",
    "kedro_mlflow.io.models.MlflowModelLocalFileSystemDataset": "kedro_mlflow_runs.io.models.MlflowModelSaverDataset",
    "kedro_mlflow.io.models.MlflowModelRegistryDataset": "kedro_mlflow_runs.io.models.MlflowModelRegistryDataset",
}
_KEDRO_MLFLOW_TYPE = re.compile(r"kedro_mlflow\.io(?:\.[A-Za-z_]\w*)+")
_HOOK_IMPORT = re.compile(r"^\s*from\s+kedro_mlflow\.framework\.hooks\s+import\s+MlflowHook\s*(#.*)?$")
_HOOKS_LINE = re.compile(r"^\s*HOOKS\s*=\s*\(.*\bMlflowHook\(\).*\)\s*(#.*)?$")
_HOOK_CALL = re.compile(r"\bMlflowHook\(\)\s*,?\s*")


@dataclass
class Migration:
    """The planned edits: ``{path: new text}``, and what needs a person, as ``file:line: why``."""

    edits: dict[Path, tuple[str, str]] = field(default_factory=dict)  # path -> (old, new)
    problems: list[str] = field(default_factory=list)

    def diff(self, root: Path) -> str:
        chunks = []
        for path, (old, new) in sorted(self.edits.items()):
            name = path.relative_to(root).as_posix()
            chunks.append("".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       f"a/{name}", f"b/{name}")))
        return "".join(chunks)

    def write(self) -> list[Path]:
        """Write every edit, keeping the original beside it as ``<file>.bak``; return the files written."""
        for path, (old, new) in self.edits.items():
            path.with_name(path.name + ".bak").write_text(old)
            path.write_text(new)
        return sorted(self.edits)


def plan_migration(project: Path, package: str, env: str | None = None) -> Migration:
    """What ``kedro mlflow migrate`` would change in ``project`` (in ``conf/<env>`` only, when given)."""
    plan = Migration()
    conf = project / "conf"
    envs = [conf / env] if env else sorted(p for p in conf.iterdir() if p.is_dir()) if conf.is_dir() else []
    for folder in envs:
        for path in sorted({*folder.glob("**/catalog*.yml"), *folder.glob("**/catalog*.yaml"),
                            *folder.glob("**/catalog*/**/*.yml")}):
            _catalog(path, plan, project)
    settings = project / "src" / package / "settings.py"
    if settings.is_file():
        _settings(settings, plan, project)
    for path in sorted((project / "src" / package).glob("**/*.py")):
        if path != settings:
            _source(path, plan, project)
    return plan


def _where(path: Path, project: Path, number: int) -> str:
    return f"{path.relative_to(project).as_posix()}:{number}"


def _catalog(path: Path, plan: Migration, project: Path) -> None:
    old = path.read_text()
    lines = old.splitlines(True)
    for number, line in enumerate(lines, 1):
        for found in _KEDRO_MLFLOW_TYPE.findall(line):
            if found in _TYPES:
                lines[number - 1] = lines[number - 1].replace(found, _TYPES[found])
            else:
                plan.problems.append(f"{_where(path, project, number)}: '{found}' has no counterpart in "
                                     f"kedro-mlflow-runs; replace it by hand (see docs/migrating-from-kedro-mlflow.md).")
    new = "".join(lines)
    if new != old:
        plan.edits[path] = (old, new)


_SOURCE_MODULES = re.compile(r"\bkedro_mlflow\.(pipeline|io(?:\.(?:artifacts|metrics|models))?)\b(?!\.)")
_OTHER_USE = re.compile(r"\bkedro_mlflow\b(?!_runs)")


def _source(path: Path, plan: Migration, project: Path) -> None:
    """Imports of kedro-mlflow's pipeline and io modules in the project's code become ours."""
    text = path.read_text()
    if "kedro_mlflow" not in text and "KedroPipelineModel(" not in text:
        return

    def edit(where: str, line: str) -> str | None:
        line = _SOURCE_MODULES.sub(lambda m: f"kedro_mlflow_runs.{m.group(1)}", line)
        if _OTHER_USE.search(line):
            plan.problems.append(f"{where}: '{line.strip()}' uses kedro-mlflow in a way this command does not "
                                 f"rewrite; replace it by hand (see docs/migrating-from-kedro-mlflow.md).")
        if "KedroPipelineModel(" in line:
            plan.problems.append(f"{where}: a KedroPipelineModel built by hand: its constructor differs here (no "
                                 f"catalog; artifacts are bundled when the model is logged). Use pipeline_ml_factory "
                                 f"or `kedro mlflow modelify` (see docs/pipeline-models.md).")
        return line

    _edit_lines(path, plan, project, edit)


def _settings(path: Path, plan: Migration, project: Path) -> None:
    def edit(where: str, line: str) -> str | None:
        if _HOOK_IMPORT.match(line):
            return None
        if _HOOKS_LINE.match(line):  # HOOKS = (..., MlflowHook(), ...) on one line
            line = _HOOK_CALL.sub("", line)
        if ("kedro_mlflow" in line and "kedro_mlflow_runs" not in line) or "MlflowHook" in line:
            plan.problems.append(f"{where}: '{line.strip()}' uses kedro-mlflow in a way this command does not "
                                 f"rewrite; remove it by hand (this plugin registers its hooks itself).")
        return line

    _edit_lines(path, plan, project, edit)


def _edit_lines(path: Path, plan: Migration, project: Path, edit: Callable[[str, str], str | None]) -> None:
    """Plan ``path`` rewritten line by line: ``edit(file:line, line)`` returns the new line, or None to drop it."""
    old = path.read_text()
    out = []
    for number, line in enumerate(old.splitlines(True), 1):
        changed = edit(_where(path, project, number), line)
        if changed is not None:
            out.append(changed)
    new = "".join(out)
    if new != old:
        plan.edits[path] = (old, new)
