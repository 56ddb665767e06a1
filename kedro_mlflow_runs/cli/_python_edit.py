"""Python rewrites for ``kedro mlflow migrate``: found with ``ast``, applied as text edits.

Only code is looked at: comments and strings never count. Three kinds of edit:

* an import from a module of :attr:`PythonRules.modules` points at our module instead, when every
  name it imports exists there;
* in ``settings.py``, a :class:`SettingsRule` removes a plugin's imports, takes its hook instances
  out of ``HOOKS`` (a tuple stays a tuple: ``(MyHooks(),)``), and removes the top-level assignments
  it names (``SESSION_STORE_CLASS = SQLiteStore`` and their companions);
* anything else that uses an owned module, or a call of :attr:`PythonRules.by_hand`, is reported.

The result must parse, and its syntax tree must equal the original's with exactly these edits made;
otherwise the file is reported and left alone.
"""

from __future__ import annotations

import ast
import copy
import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._file_edit import FileEdit

__all__ = ["PythonRules", "SettingsRule", "rewrite_python"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FROM_MODULE = re.compile(r"from\s+([A-Za-z_][\w]*(?:\s*\.\s*[A-Za-z_]\w*)*)")


@dataclass(frozen=True)
class SettingsRule:
    """What ``settings.py`` loses for one plugin.

    Attributes:
        modules: imports from these modules (or their submodules) are removed.
        hooks: names imported from them whose instances are taken out of ``HOOKS``.
        assignments: ``NAME -> companions``: a top-level ``NAME = <a name imported from modules>`` is
            removed, with the top-level assignments of its companions.
        why: said in each change line.
    """

    modules: tuple[str, ...]
    hooks: frozenset[str] = frozenset()
    assignments: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    why: str = ""


@dataclass(frozen=True)
class PythonRules:
    """Module renames (``old -> new``, submodules of old included), owned prefixes, calls to report."""

    modules: Mapping[str, str]
    owned: tuple[str, ...]
    settings: tuple[SettingsRule, ...] = ()
    by_hand: Mapping[str, str] = field(default_factory=dict)  # a called name -> why it is reported
    hint: str = ""


def _owned(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _rename(module: str, modules: Mapping[str, str]) -> str | None:
    best = max((old for old in modules if module == old or module.startswith(old + ".")), key=len, default=None)
    return modules[best] if best is not None else None


def _exists(module: str, name: str) -> bool:
    try:
        return hasattr(importlib.import_module(module), name)
    except ImportError:
        return False


class _Plan:
    def __init__(self, text: str, label: str, tree: ast.Module, rules: PythonRules, settings: bool) -> None:
        self.file = FileEdit(text, label)
        self.tree, self.rules, self.settings = tree, rules, settings
        starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]
        self.starts = starts
        self.drop_statements: set[tuple[int, int]] = set()
        self.drop_elements: set[tuple[int, int]] = set()
        self.renames: dict[tuple[int, int], str] = {}
        self.bound: dict[str, SettingsRule] = {}

    def index(self, line: int, col: int) -> int:
        start = self.starts[line - 1]
        end = self.starts[line] if line < len(self.starts) else len(self.file.text)
        return start + len(self.file.text[start:end].encode("utf-8")[:col].decode("utf-8", "ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (self.index(node.lineno, node.col_offset),  # type: ignore[attr-defined]
                self.index(node.end_lineno, node.end_col_offset))  # type: ignore[attr-defined]

    def source(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return " ".join(self.file.text[start:end].split())

    def problem(self, node: ast.AST, why: str) -> None:
        line: int = node.lineno  # type: ignore[attr-defined]
        end = self.starts[line] if line < len(self.starts) else len(self.file.text)
        code = self.file.text[self.starts[line - 1]:end].strip()
        self.file.problems.append(f"{self.file.label}:{line}: '{code}' {why}")

    # -- finding --------------------------------------------------------------------------------

    def imports(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if _owned(alias.name, self.rules.owned):
                        self.problem(node, f"imports {alias.name}, which this command does not rewrite; "
                                           f"{self.rules.hint}")
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                self._import_from(node, node.module)

    def _import_from(self, node: ast.ImportFrom, module: str) -> None:
        names = [alias.name for alias in node.names]
        rule = next((r for r in self.rules.settings if _owned(module, r.modules)), None) if self.settings else None
        if rule is not None:
            self.drop_statements.add((node.lineno, node.col_offset))
            self.bound.update({alias.asname or alias.name: rule for alias in node.names})
            self.file.change(self.index(node.lineno, 0), f"import removed: {self.source(node)} ({rule.why})")
            return
        target = _rename(module, self.rules.modules)
        if target is not None and "*" not in names and all(_exists(target, name) for name in names):
            self.renames[(node.lineno, node.col_offset)] = target
            self.file.change(self.index(node.lineno, 0), f"from {module} import ... -> from {target} import ...")
        elif target is not None or _owned(module, self.rules.owned):
            missing = [n for n in names if target is None or not _exists(target, n)]
            self.problem(node, f"imports {', '.join(missing)} from {module}, which has no counterpart in "
                               f"kedro-mlflow-runs; {self.rules.hint}")

    def uses(self) -> None:
        hooks = self._hooks_value()
        elements = {id(e) for e in hooks.elts} if hooks is not None else set()
        handled = self._rule_assignments()
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name in self.rules.by_hand:
                self.problem(node, self.rules.by_hand[name])
            rule = self.bound.get(name) if isinstance(node.func, ast.Name) else None
            if id(node) in elements and rule is not None and name in rule.hooks and not node.args and not node.keywords:
                self.drop_elements.add((node.lineno, node.col_offset))
                handled.add(id(node.func))
                self.file.change(self.span(node)[0], f"{self.source(node)} removed from HOOKS ({rule.why})")
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name) and node.id in self.bound and id(node) not in handled:
                self.problem(node, f"is used in a way this command does not rewrite: remove it by hand "
                                   f"({self.bound[node.id].why})")

    def _hooks_value(self) -> ast.Tuple | ast.List | None:
        for stmt in self.tree.body if self.settings else []:
            if isinstance(stmt, ast.Assign) and [getattr(t, "id", None) for t in stmt.targets] == ["HOOKS"] \
                    and isinstance(stmt.value, (ast.Tuple, ast.List)):
                self.hooks_stmt = stmt
                return stmt.value
        return None

    def _rule_assignments(self) -> set[int]:
        """Drop the assignments rules name; the ids of the Name nodes they hold."""
        held: set[int] = set()
        by_target = {s.targets[0].id: s for s in self.tree.body
                     if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)}
        for target, stmt in by_target.items():
            value = stmt.value
            rule = self.bound.get(value.id) if isinstance(value, ast.Name) else None
            if rule is None or target not in rule.assignments:
                continue
            for name in (target, *rule.assignments[target]):
                dropped = by_target.get(name)
                if dropped is not None:
                    self.drop_statements.add((dropped.lineno, dropped.col_offset))
                    self.file.change(self.index(dropped.lineno, 0), f"{name} removed ({rule.why})")
            held.add(id(value))
        return held

    # -- editing --------------------------------------------------------------------------------

    def edits(self) -> None:
        for node in ast.walk(self.tree):
            where = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
            if isinstance(node, ast.stmt) and where in self.drop_statements:
                self._drop_lines(node)
            elif isinstance(node, ast.ImportFrom) and where in self.renames:
                start, end = self.span(node)
                found = _FROM_MODULE.match(self.file.text, start, end)
                if found is None:
                    raise ValueError("an import spelled in a way this command cannot edit")
                self.file.edits.append((found.start(1), found.end(1), self.renames[where]))
        hooks = getattr(self, "hooks_stmt", None)
        if hooks is not None and self.drop_elements:
            self._drop_hooks(hooks.value)

    def _drop_lines(self, stmt: ast.stmt) -> None:
        """Remove the lines of ``stmt`` (its own line comment too); it must be alone on them."""
        start, end = self.span(stmt)
        text = self.file.text
        line_start = self.starts[stmt.lineno - 1]
        last = stmt.end_lineno or stmt.lineno
        line_end = self.starts[last] if last < len(self.starts) else len(text)
        rest = text[end:line_end].strip()
        if text[line_start:start].strip() or (rest and not rest.startswith("#")):
            raise ValueError(f"line {stmt.lineno} holds more than the statement to remove")
        self.file.edits.append((line_start, line_end, ""))

    def _drop_hooks(self, value: ast.Tuple | ast.List) -> None:
        """Take the dropped elements out of ``HOOKS``; one element left in a tuple keeps a comma."""
        text = self.file.text
        kept = [e for e in value.elts if (e.lineno, e.col_offset) not in self.drop_elements]
        if not kept:
            start, end = self.span(value)
            self.file.edits.append((start, end, "()" if isinstance(value, ast.Tuple) else "[]"))
            return
        for element in value.elts:
            if element in kept:
                continue
            start, end = self.span(element)
            comma = re.compile(r"[ \t]*,[ \t]*").match(text, end)
            end = comma.end() if comma else end
            if not comma:  # the last element, no trailing comma: keep the comma before it
                start = len(text[:start].rstrip(" \t"))
            line_start = max(text.rfind("\n", 0, start), text.rfind("\r", 0, start)) + 1
            after = _LINE_BREAK.search(text, end)
            line_end = after.end() if after else len(text)
            if not text[line_start:start].strip() and (not text[end:line_end].strip()
                                                        or text[end:line_end].strip().startswith("#")):
                start, end = line_start, line_end  # the element had the line to itself
            self.file.edits.append((start, end, ""))
        if isinstance(value, ast.Tuple) and len(kept) == 1:
            _, end = self.span(kept[0])
            if not re.compile(r"\s*,").match(text, end):
                self.file.edits.append((end, end, ","))

    def expected(self) -> str:
        """The original syntax tree with exactly the planned edits made."""
        tree = copy.deepcopy(self.tree)
        drop_statements, drop_elements, renames = self.drop_statements, self.drop_elements, self.renames

        class Edit(ast.NodeTransformer):
            def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | None:
                where = (node.lineno, node.col_offset)
                if where in drop_statements:
                    return None
                node.module = renames.get(where, node.module)
                return node

            def visit_Assign(self, node: ast.Assign) -> ast.AST | None:
                if (node.lineno, node.col_offset) in drop_statements:
                    return None
                if isinstance(node.value, (ast.Tuple, ast.List)):
                    node.value.elts = [e for e in node.value.elts if (e.lineno, e.col_offset) not in drop_elements]
                return node

        return ast.dump(Edit().visit(tree))


def rewrite_python(text: str, label: str, rules: PythonRules, *, settings: bool = False) -> FileEdit:
    """Plan the rewrite of one Python file (``settings``: it is the project's settings.py)."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        file = FileEdit(text, label)
        if any(owned in text for owned in rules.owned):
            file.problems.append(f"{label}:{exc.lineno}: not valid Python ({exc.msg}), so it cannot be checked.")
        return file
    plan = _Plan(text, label, tree, rules, settings)
    plan.imports()
    plan.uses()
    try:
        plan.edits()
        new = plan.file.applied()
        if ast.dump(ast.parse(new)) != plan.expected():
            raise ValueError("the rewritten code would differ from the intended edit")
    except (ValueError, SyntaxError) as exc:
        plan.file.problems.append(f"{label}: cannot be rewritten safely ({exc}); edit it by hand.")
        plan.file.edits.clear()
        plan.file.changes.clear()
    return plan.file
