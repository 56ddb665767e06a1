"""``kedro mlflow migrate``: move a kedro-mlflow project over, as text edits that keep comments.

What is rewritten (see docs/migrating-from-kedro-mlflow.md for the full table):

* ``conf/**/catalog*.yml``: dataset types of the rule sets in :data:`RULESETS` become ours, and
  their arguments are rewritten to mean here what they meant there (``_kedro_mlflow_rules.py``).
* ``src/<package>/settings.py``: what the rules of :data:`SETTINGS_RULES` remove (kedro-mlflow's
  hook import and ``MlflowHook()`` in ``HOOKS``: this plugin registers its hooks itself).
* the package's other Python files: imports from ``kedro_mlflow.pipeline`` and ``kedro_mlflow.io.*``
  become ours; a hand-built ``KedroPipelineModel(...)`` is reported.

Another tool's catalog types plug in as one more :class:`RuleSet` in :data:`RULESETS`, its
``settings.py`` edits as one more :class:`SettingsRule` in :data:`SETTINGS_RULES`.

Code is read with ``ast`` and YAML with PyYAML's node positions: comments and strings never count.
Every rewritten file must parse, and mean what was intended, before anything is written. What
cannot be migrated is reported with the file, the line and why; nothing is guessed.

Files are read and written as bytes in their own encoding (UTF-8 for YAML, as Kedro reads it; a
Python file's PEP 263 coding line, else UTF-8), so line endings and everything not rewritten stay as
they were; a file that is not valid text in that encoding stops the command, naming the file. With
``--write``, the original is kept as ``<file>.bak`` (an existing ``.bak``, the original of an
earlier migration, is never overwritten: a different original goes to ``<file>.bak.2``, ...), and
the rewritten file replaces the original atomically with its permission bits.
"""

from __future__ import annotations

import codecs
import dataclasses
import difflib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ..errors import KedroMlflowRunsError
from ._catalog_edit import FileEdit, RuleSet, rewrite_catalog
from ._kedro_mlflow_rules import KEDRO_MLFLOW, KEDRO_MLFLOW_PYTHON, KEDRO_MLFLOW_SETTINGS
from ._python_edit import SettingsRule, rewrite_python
from ._viz_rules import KEDRO_VIZ, KEDRO_VIZ_SETTINGS

__all__ = ["RULESETS", "SETTINGS_RULES", "Migration", "plan_migration"]

#: The catalog rule sets, one per tool a project moves over from.
RULESETS: Final[tuple[RuleSet, ...]] = (KEDRO_MLFLOW, KEDRO_VIZ)
#: What settings.py loses, one rule per tool.
SETTINGS_RULES: Final[tuple[SettingsRule, ...]] = (KEDRO_MLFLOW_SETTINGS, KEDRO_VIZ_SETTINGS)


@dataclass
class Migration:
    """The planned edits, a line per change (``file:line: what``), and what needs a person (``file:line: why``)."""

    edits: dict[Path, tuple[str, str]] = field(default_factory=dict)  # path -> (old, new)
    changes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    encodings: dict[Path, str] = field(default_factory=dict)  # path -> its encoding, when not UTF-8
    originals: dict[Path, bytes] = field(default_factory=dict)  # path -> its bytes as read

    def diff(self, root: Path) -> str:
        chunks = []
        for path, (old, new) in sorted(self.edits.items()):
            name = path.relative_to(root).as_posix()
            chunks.append("".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                       f"a/{name}", f"b/{name}")))
        return "".join(chunks)

    def add(self, path: Path, edit: FileEdit) -> None:
        self.changes.extend(edit.changes)
        self.problems.extend(edit.problems)
        new = edit.applied() if edit.edits else edit.text
        if new != edit.text:
            try:
                new.encode(self.encodings.get(path, "utf-8"))
            except UnicodeEncodeError:
                self.problems.append(f"{edit.label}: the rewritten text cannot be written in "
                                     f"{self.encodings[path]}; edit it by hand.")
                return
            self.edits[path] = (edit.text, new)

    def write(self) -> list[tuple[Path, Path | None]]:
        """Write every edit; return ``(file, backup)`` pairs (backup None: the original was already kept).

        The original is kept beside the file, with its permission bits: ``<file>.bak``, unless a
        ``.bak`` exists (the original of an earlier migration, never overwritten): then in the next
        free ``<file>.bak.N``, unless one of them holds the same bytes. The new text replaces the
        file atomically (a temporary file in its folder, renamed over it), with the same bits.
        """
        written: list[tuple[Path, Path | None]] = []
        for path, (_, new) in sorted(self.edits.items()):
            target = path.resolve()  # a symlinked catalog stays a symlink
            temporary = target.with_name(f".{target.name}.migrate-tmp")
            try:
                mode = stat.S_IMODE(target.stat().st_mode)
                backup = _backup(path, self.originals[path], mode)
                _write(temporary, new.encode(self.encodings.get(path, "utf-8")), mode)
                os.replace(temporary, target)
            except OSError as exc:
                temporary.unlink(missing_ok=True)
                done = ", ".join(p.name for p, _ in written) or "none"
                raise KedroMlflowRunsError(
                    f"kedro mlflow migrate could not write {path}: {exc.strerror or exc}. Files already rewritten: "
                    f"{done} (their originals are in .bak files); {path.name} is unchanged. Fix the cause (disk "
                    f"space, permissions), then run `kedro mlflow migrate --write` again.") from None
            written.append((path, backup))
        return written


def _backup(path: Path, original: bytes, mode: int) -> Path | None:
    for number in range(1, 1000):
        backup = path.with_name(path.name + (".bak" if number == 1 else f".bak.{number}"))
        if not backup.exists():
            _write(backup, original, mode)
            return backup
        if backup.read_bytes() == original:
            return None
    raise KedroMlflowRunsError(f"kedro mlflow migrate: {path.name}.bak.* are all taken; move them away.")


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a new file ``path`` with permission bits ``mode``, set before any byte is written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.chmod(path, mode)
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
    plan.originals[path] = data
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
                            *folder.glob("**/catalog*/**/*.yml"), *folder.glob("**/catalog*/**/*.yaml")}):
            text = _read(path, project, plan)
            plan.add(path, rewrite_catalog(text, _label(path, project), RULESETS))
    python = dataclasses.replace(KEDRO_MLFLOW_PYTHON, settings=SETTINGS_RULES)
    settings = project / "src" / package / "settings.py"
    for path in sorted((project / "src" / package).glob("**/*.py")):
        text = _read(path, project, plan)
        plan.add(path, rewrite_python(text, _label(path, project), python, settings=path == settings))
    return plan


def _label(path: Path, project: Path) -> str:
    return path.relative_to(project).as_posix()
