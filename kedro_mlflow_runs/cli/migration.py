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

Files are read and written as bytes in their own encoding (UTF-8 for YAML, as Kedro reads it; a
Python file's PEP 263 coding line, else UTF-8), so line endings and everything not rewritten stay as
they were; a file that is not valid text in that encoding stops the command, naming the file. With
``--write``, the original is kept as ``<file>.bak`` and both it and the rewritten file keep the
original's permission bits (a 0600 catalog gives a 0600 backup).
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .._version import docs_page
from ..errors import KedroMlflowRunsError

__all__ = ["Migration", "plan_migration"]

_TYPES = MappingProxyType({
    "kedro_mlflow.io.artifacts.MlflowArtifactDataset": "kedro_mlflow_runs.io.artifacts.MlflowArtifactDataset",
    "kedro_mlflow.io.metrics.MlflowMetricDataset": "kedro_mlflow_runs.io.metrics.MlflowMetricDataset",
    "kedro_mlflow.io.metrics.MlflowMetricHistoryDataset": "kedro_mlflow_runs.io.metrics.MlflowMetricHistoryDataset",
    "kedro_mlflow.io.metrics.MlflowMetricsHistoryDataset": "kedro_mlflow_runs.io.metrics.MlflowMetricsHistoryDataset",
    "kedro_mlflow.io.models.MlflowModelTrackingDataset": "kedro_mlflow_runs.io.models.MlflowModelLoggerDataset",
    "kedro_mlflow.io.models.MlflowModelLocalFileSystemDataset": "kedro_mlflow_runs.io.models.MlflowModelSaverDataset",
    "kedro_mlflow.io.models.MlflowModelRegistryDataset": "kedro_mlflow_runs.io.models.MlflowModelRegistryDataset",
})
_KEDRO_MLFLOW_TYPE = re.compile(r"kedro_mlflow\.io(?:\.[A-Za-z_]\w*)+")
_HOOK_IMPORT = re.compile(r"^\s*from\s+kedro_mlflow\.framework\.hooks\s+import\s+MlflowHook\s*(#.*)?$")
_HOOKS_LINE = re.compile(r"^\s*HOOKS\s*=\s*\(.*\bMlflowHook\(\).*\)\s*(#.*)?$")
_HOOK_CALL = re.compile(r"\bMlflowHook\(\)\s*,?\s*")


@dataclass
class Migration:
    """The planned edits: ``{path: new text}``, and what needs a person, as ``file:line: why``."""

    edits: dict[Path, tuple[str, str]] = field(default_factory=dict)  # path -> (old, new)
    problems: list[str] = field(default_factory=list)
    encodings: dict[Path, str] = field(default_factory=dict)  # path -> its encoding, when not UTF-8

    def diff(self, root: Path) -> str:
        chunks = []
        for path, (old, new) in sorted(self.edits.items()):
            name = path.relative_to(root).as_posix()
            chunks.append("".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       f"a/{name}", f"b/{name}")))
        return "".join(chunks)

    def write(self) -> list[Path]:
        """Write every edit, keeping the original beside it as ``<file>.bak``, both with the original's
        permission bits; return the files written."""
        for path, (old, new) in self.edits.items():
            mode = stat.S_IMODE(path.stat().st_mode)
            encoding = self.encodings.get(path, "utf-8")
            _write(path.with_name(path.name + ".bak"), old, encoding, mode)
            _write(path, new, encoding, mode)
        return sorted(self.edits)


def _write(path: Path, text: str, encoding: str, mode: int) -> None:
    """Write ``text`` to ``path`` with permission bits ``mode``, set before any byte is written
    (a ``.bak`` left by an earlier run may have wider ones)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.chmod(path, mode)
        data = text.encode(encoding)
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def _read(path: Path, project: Path, plan: Migration) -> str:
    """The text of ``path``, decoded as Kedro (YAML) or Python (a ``.py`` file) would decode it.

    Raises:
        KedroMlflowRunsError: the file cannot be read, or is not valid text in its encoding; naming it.
    """
    name = path.relative_to(project).as_posix()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KedroMlflowRunsError(f"kedro mlflow migrate cannot read {name}: {exc.strerror or exc}. "
                                   f"Check that the file is readable, then run again.") from None
    encoding = _python_encoding(data, name) if path.suffix == ".py" else "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise KedroMlflowRunsError(
            f"kedro mlflow migrate cannot read {name}: it is not {encoding} text (byte "
            f"{exc.object[exc.start]:#04x} at offset {exc.start})"
            + (", and Kedro reads configuration files as UTF-8 too" if path.suffix != ".py" else "")
            + f". Convert it (e.g. iconv -f latin1 -t utf-8 {name} -o {name}.utf8, then move that over "
            f"{name}), then run again. Nothing was changed.") from None
    if encoding != "utf-8":
        plan.encodings[path] = encoding
    return text


_CODING_LINE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


def _python_encoding(data: bytes, name: str) -> str:
    """The encoding a Python file declares on one of its first two lines (PEP 263), else UTF-8."""
    for line in data.splitlines()[:2]:
        found = _CODING_LINE.match(line)
        if found:
            declared = found.group(1).decode("ascii", "replace")
            try:
                return codecs.lookup(declared).name
            except LookupError:
                raise KedroMlflowRunsError(
                    f"kedro mlflow migrate cannot read {name}: its coding line names the unknown encoding "
                    f"{declared!r}. Fix that line (or remove it: Python reads UTF-8), then run again.") from None
        if not line.lstrip().startswith(b"#"):
            break
    return "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"


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
    old = _read(path, project, plan)
    lines = old.splitlines(True)
    for number, line in enumerate(lines, 1):
        for found in _KEDRO_MLFLOW_TYPE.findall(line):
            if found in _TYPES:
                lines[number - 1] = lines[number - 1].replace(found, _TYPES[found])
            else:
                where = _where(path, project, number)
                plan.problems.append(f"{where}: '{found}' has no counterpart in kedro-mlflow-runs; replace it "
                                     f"by hand (see {docs_page('migrating-from-kedro-mlflow')}).")
    new = "".join(lines)
    if new != old:
        plan.edits[path] = (old, new)


_SOURCE_MODULES = re.compile(r"\bkedro_mlflow\.(pipeline|io(?:\.(?:artifacts|metrics|models))?)\b(?!\.)")
_OTHER_USE = re.compile(r"\bkedro_mlflow\b(?!_runs)")


def _source(path: Path, plan: Migration, project: Path) -> None:
    """Imports of kedro-mlflow's pipeline and io modules in the project's code become ours."""
    text = _read(path, project, plan)
    if "kedro_mlflow" not in text and "KedroPipelineModel(" not in text:
        return

    def edit(where: str, line: str) -> str | None:
        line = _SOURCE_MODULES.sub(lambda m: f"kedro_mlflow_runs.{m.group(1)}", line)
        if _OTHER_USE.search(line):
            plan.problems.append(f"{where}: '{line.strip()}' uses kedro-mlflow in a way this command does not "
                                 f"rewrite; replace it by hand (see {docs_page('migrating-from-kedro-mlflow')}).")
        if "KedroPipelineModel(" in line:
            plan.problems.append(f"{where}: a KedroPipelineModel built by hand: its constructor differs here (no "
                                 f"catalog; artifacts are bundled when the model is logged). Use pipeline_ml_factory "
                                 f"or `kedro mlflow modelify` (see {docs_page('pipeline-models')}).")
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
    old = _read(path, project, plan)
    out = []
    for number, line in enumerate(old.splitlines(True), 1):
        changed = edit(_where(path, project, number), line)
        if changed is not None:
            out.append(changed)
    new = "".join(out)
    if new != old:
        plan.edits[path] = (old, new)
