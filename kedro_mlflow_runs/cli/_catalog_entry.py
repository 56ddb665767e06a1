"""A catalog entry as a migration rule sees it, and the YAML node work behind its edits.

Each edit is made twice: as text at the positions PyYAML reports (so comments, quoting and layout
stay), and on PyYAML's node graph, from which ``_catalog_edit`` builds what the text must load as.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ._file_edit import FileEdit

__all__ = ["CatalogEntry", "UnsafeEditError", "find_type"]

Path_ = tuple[str, ...]
_PLAIN = re.compile(r"[A-Za-z_][\w.\-/]*")


class CatalogEntry:
    """One catalog entry as a rule sees it: its name and loaded ``config``, and the edits it may make."""

    def __init__(self, name: str, node: MappingNode, config: Mapping[str, Any], file: FileEdit) -> None:
        self.name = name
        self.config = config
        self._node = node
        self._file = file

    @property
    def is_pattern(self) -> bool:
        """A dataset factory (``"{name}_model"``): Kedro fills the name in when a pipeline uses it."""
        return "{" in self.name

    def problem(self, why: str) -> None:
        self._file.problems.append(f"{self._file.label}:{self._node.start_mark.line + 1}: {self.name}: {why}")

    def set(self, path: Path_, value: Any, why: str) -> None:
        """Set ``path`` (``("save_args", "name")``) to a scalar, creating the mappings on the way."""
        if self._inherited(path, why):
            return
        text = _scalar_text(value)
        where = self._set(self._node, path, _scalar_node(value), text, why)
        if where is not None:
            self._file.change(where, f"{self.name}: {'.'.join(path)}: {text} ({why})")

    def wrap(self, key: str, values: Mapping[str, Any], moved: tuple[str, ...], why: str) -> None:
        """Put the arguments ``moved`` (their text as written) and ``values`` into a new mapping ``key`` of the
        entry: one line in flow style when every moved value is a one-line scalar (``dataset: {type: ...,
        filepath: ...}``), else a block under ``key:`` holding the moved lines as written (comments, nested
        mappings, block scalars), two spaces further in."""
        inherited = [name for name in moved if _pair(self._node, name) is None and name in self.config]
        if inherited:  # from a YAML anchor (`<<: *base`): not in this entry's text
            self.problem(f"{', '.join(inherited)} come(s) from a YAML anchor; move them under {key}: by hand. {why}")
            return
        present = [(name, pair) for name in moved if (pair := _pair(self._node, name)) is not None]
        if any(not isinstance(node, ScalarNode) or node.start_mark.line != node.end_mark.line
               for _, (_, node) in present):
            self._wrap_block(key, values, present, why)
            return
        items = [f"{name}: {_scalar_text(value)}" for name, value in values.items()]
        for name, (_, node) in present:
            items.append(f"{name}: {self._file.text[node.start_mark.index:node.end_mark.index]}")
        text = "{" + ", ".join(items) + "}"
        for name in moved:
            self.remove((name,), why=None)
        wrapped = yaml.compose(text, Loader=yaml.SafeLoader)
        if wrapped is not None:
            self.set_node((key,), wrapped, text, why)

    def _wrap_block(self, key: str, values: Mapping[str, Any], present: list[tuple[str, tuple[Node, Node]]],
                    why: str) -> None:
        if self._node.flow_style or not self._node.value:
            self.problem(f"the entry is written in flow style; move {', '.join(n for n, _ in present)} under "
                         f"{key}: by hand. {why}")
            return
        column = self._node.value[0][0].start_mark.column
        eol, text = self._file.eol, self._file.text
        inner = " " * (column + 2)
        lines = [f"{inner}{name}: {_scalar_text(value)}{eol}" for name, value in values.items()]
        for name, (key_node, value_node) in present:
            if key_node.start_mark.column != column:
                self.problem(f"{name} is not where the entry's other keys are; move it under {key}: by hand. {why}")
                return
            chunk = text[self._line_start(key_node):self._after_line(_last_line(value_node))]
            if not chunk.endswith(("\n", "\r")):
                chunk += eol
            lines += [("  " + line) if line.strip() else line for line in chunk.splitlines(keepends=True)]
        block = "".join(lines)
        try:
            composed = yaml.compose(f"{key}:{eol}{block}", Loader=yaml.SafeLoader)
        except yaml.YAMLError:  # moved text that only parsed where it was (it never should): edit nothing
            composed = None
        if not isinstance(composed, MappingNode):
            self.problem(f"cannot move {', '.join(n for n, _ in present)} under {key}: safely; do it by hand. {why}")
            return
        for name, _ in present:
            self.remove((name,), why=None)
        shown = ", ".join([*values, *(name for name, _ in present)])
        self.set_node((key,), composed.value[0][1], eol + block.rstrip("\r\n"), why, shown=f"{{{shown}}}")

    def set_node(self, path: Path_, value: Node, text: str, why: str, *, shown: str | None = None) -> None:
        """Set ``path`` to the YAML ``value`` written as ``text`` (``shown``: how the change line shows it)."""
        where = self._set(self._node, path, value, text, why)
        if where is not None:
            self._file.change(where, f"{self.name}: {'.'.join(path)}: {shown or text} ({why})")

    def move(self, source: Path_, target: Path_, why: str) -> None:
        """Move the scalar at ``source`` to ``target``, its text as written (quotes, ``${...}``) kept."""
        found = _find(self._node, source)
        if found is None or not isinstance(found[1], ScalarNode) or found[1].start_mark.line != found[1].end_mark.line:
            self.problem(f"{'.'.join(source)} is not a one-line value; move it to {'.'.join(target)} by hand. {why}")
            return
        if self._inherited(target, why):
            return
        value = found[1]
        text = self._file.text[value.start_mark.index:value.end_mark.index]
        self.remove(source, why=None)
        if self._set(self._node, target, value, text, why) is not None:
            self._file.change(value.start_mark.index,
                              f"{self.name}: {'.'.join(source)}: {text} -> {'.'.join(target)}: {text} ({why})")

    def remove(self, path: Path_, why: str | None) -> None:
        """Remove ``path``; a mapping it leaves empty goes too."""
        found = _find(self._node, path[:-1]) if len(path) > 1 else (self._node, self._node)
        parent = found[1] if found is not None else None
        pair = _pair(parent, path[-1])
        if pair is None or not isinstance(parent, MappingNode):
            return
        if len(parent.value) == 1 and len(path) > 1:
            self.remove(path[:-1], why)
            return
        key, value = pair
        if parent.flow_style:
            text = self._file.text
            end = value.end_mark.index
            after = re.compile(r"\s*,\s*").match(text, end)
            start = key.start_mark.index
            if after:
                end = after.end()
            else:
                before = re.search(r",\s*\Z", text[:start])
                start = before.start() if before else start
            self._file.edits.append((start, end, ""))
        else:
            start = self._line_start(key)
            self._file.edits.append((start, self._after_line(_last_line(value)), ""))
        parent.value.remove(pair)
        if why:
            self._file.change(key.start_mark.index, f"{self.name}: {'.'.join(path)} removed ({why})")

    # -- helpers ------------------------------------------------------------------------------

    def _inherited(self, path: Path_, why: str) -> bool:
        """Whether ``path`` lies in a mapping this entry inherits (``<<: *base``): reported, not edited."""
        if len(path) > 1 and _pair(self._node, path[0]) is None and path[0] in self.config:
            self.problem(f"{path[0]} comes from a YAML anchor; set {'.'.join(path)} by hand. {why}")
            return True
        return False

    def _set(self, node: MappingNode, path: Path_, value: Node, text: str, why: str) -> int | None:
        """Edit ``node`` so that ``path`` holds ``value``; the index to report the change at (None: reported)."""
        pair = _pair(node, path[0])
        if pair is None:
            return self._insert(node, path, value, text)
        key, current = pair
        if len(path) > 1 and isinstance(current, MappingNode):
            return self._set(current, path[1:], value, text, why)
        if len(path) > 1 and not (isinstance(current, ScalarNode) and current.tag.endswith(":null")):
            self.problem(f"{path[0]} is not a mapping; set {'.'.join(path)} by hand. {why}")
            return None
        new, new_text = _nest(path[1:], value, text)
        start, end = current.start_mark.index, current.end_mark.index
        if start == end and self._file.text[start - 1:start] == ":":
            new_text = " " + new_text
        self._file.edits.append((start, end, new_text))
        node.value[node.value.index(pair)] = (key, new)
        return start

    def _insert(self, node: MappingNode, path: Path_, value: Node, text: str) -> int:
        new, _ = _nest(path[1:], value, text)
        key_node = ScalarNode("tag:yaml.org,2002:str", path[0])
        if node.flow_style:
            close = node.end_mark.index - 1
            body = f"{path[0]}: {_flow(path[1:], text)}"
            self._file.edits.append((close, close, (", " if node.value else "") + body))
        else:
            first_key, first_value = node.value[0]
            indent = " " * first_key.start_mark.column
            if isinstance(first_value, ScalarNode) and first_value.start_mark.line == first_value.end_mark.line:
                where = self._after_line(first_value.end_mark.line)
            else:
                where = self._line_start(first_key)
            eol = self._file.eol
            lines = [f"{indent}{'  ' * depth}{key}:" for depth, key in enumerate(path[:-1])]
            separator = "" if text.startswith(("\n", "\r")) else " "  # a block: the key ends its line
            lines.append(f"{indent}{'  ' * (len(path) - 1)}{path[-1]}:{separator}{text}")
            block = eol.join(lines) + eol
            if where == len(self._file.text) and not self._file.text.endswith(("\n", "\r")):
                block = eol + block
            self._file.edits.append((where, where, block))
        node.value.append((key_node, new))
        return node.start_mark.index

    def _line_start(self, node: Node) -> int:
        text = self._file.text
        start = max(text.rfind("\n", 0, node.start_mark.index), text.rfind("\r", 0, node.start_mark.index)) + 1
        if text[start:node.start_mark.index].strip():
            raise UnsafeEditError(f"{self.name}: a key that does not start its line")
        return start

    def _after_line(self, line: int) -> int:
        return self._file.after_line(line)


class UnsafeEditError(Exception):
    """A rewrite that the text edits cannot make safely."""


def _pair(node: Node | None, key: str) -> tuple[Node, Node] | None:
    if not isinstance(node, MappingNode):
        return None
    for pair in node.value:
        if isinstance(pair[0], ScalarNode) and pair[0].value == key:
            return (pair[0], pair[1])
    return None


def _find(node: MappingNode, path: Path_) -> tuple[Node, Node] | None:
    pair: tuple[Node, Node] | None = (node, node)
    for key in path:
        pair = _pair(pair[1], key) if pair else None
    return pair


def _last_line(node: Node) -> int:
    """The last line (0-based) that holds part of ``node``."""
    if isinstance(node, ScalarNode) or getattr(node, "flow_style", False):
        end = node.end_mark
        return end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line
    if isinstance(node, MappingNode) and node.value:
        return _last_line(node.value[-1][1])
    if isinstance(node, SequenceNode) and node.value:
        return _last_line(node.value[-1])
    return node.end_mark.line


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        plain = _PLAIN.fullmatch(value) and yaml.safe_load(value) == value
        return value if plain else json.dumps(value)
    return json.dumps(value)


def _scalar_node(value: Any) -> Node:
    return yaml.representer.SafeRepresenter().represent_data(value)


def _nest(path: Path_, value: Node, text: str) -> tuple[Node, str]:
    """``value`` under the keys ``path`` (a node and its flow text)."""
    for key in reversed(path):
        value = MappingNode("tag:yaml.org,2002:map", [(ScalarNode("tag:yaml.org,2002:str", key), value)])
    return value, _flow(path, text)


def _flow(path: Path_, text: str) -> str:
    for key in reversed(path):
        text = f"{{{key}: {text}}}"
    return text


def find_type(node: MappingNode) -> ScalarNode | None:
    """The ``type:`` value of an entry, also one merged in from an anchor (``<<: *base``)."""
    pair = _pair(node, "type")
    if pair is not None:
        return pair[1] if isinstance(pair[1], ScalarNode) else None
    merge = next((v for k, v in node.value if isinstance(k, ScalarNode) and k.tag.endswith(":merge")), None)
    bases = merge.value if isinstance(merge, SequenceNode) else [merge] if merge is not None else []
    for base in bases:
        found = find_type(base) if isinstance(base, MappingNode) else None
        if found is not None:
            return found
    return None


