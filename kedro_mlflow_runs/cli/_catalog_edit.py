"""Catalog rewrites for ``kedro mlflow migrate``: rules per dataset type, applied as text edits.

A :class:`RuleSet` owns a family of dataset types (kedro-mlflow's, say): ``key_of`` tells which
``type:`` values are its own, ``rules`` says what each becomes. A :class:`CatalogRule` gives the new
type and, optionally, an ``edit`` that changes the entry's arguments through :class:`CatalogEntry`
(``set``, ``move``, ``remove``, ``problem``). A type a rule set owns but has no rule for is reported.

The file is edited as text at the positions PyYAML reports, so comments, quoting and layout stay.
Every operation is applied twice: to the text and to PyYAML's node graph. The rewritten text is
then loaded and must equal what the edited graph builds; otherwise the file is reported and left
alone. Anchors and merge keys (``<<: *base``) are followed: a type inherited from an anchor is
rewritten in the anchor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode

from ._catalog_entry import CatalogEntry, UnsafeEditError, find_type
from ._file_edit import FileEdit

__all__ = ["CatalogEntry", "CatalogRule", "FileEdit", "RuleSet", "rewrite_catalog"]

_Migrated = dict[str, tuple[str, MappingNode]]  # entry name -> (its new type, its node)


@dataclass(frozen=True)
class CatalogRule:
    """What a dataset type becomes: ``new_type``, and ``edit(entry)`` for its arguments; an entry for
    which ``when(config)`` is false is left as it is."""

    new_type: str
    edit: Callable[[CatalogEntry], None] | None = None
    when: Callable[[Mapping[str, Any]], bool] | None = None


@dataclass(frozen=True)
class RuleSet:
    """The rules of one family of dataset types.

    Attributes:
        name: the family as messages name it (``kedro-mlflow``).
        key_of: a ``type:`` value -> the key of its rule in ``rules``; None when not of this family.
        rules: the rules by key.
        hint: what to do with a type of this family that has no rule (appended to the report).
    """

    name: str
    key_of: Callable[[str], str | None]
    rules: Mapping[str, CatalogRule]
    hint: str = ""


def rewrite_catalog(text: str, label: str, rulesets: tuple[RuleSet, ...]) -> FileEdit:
    """Plan the rewrite of one catalog file (``label`` names it in messages)."""
    file = FileEdit(text, label)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        if any(rs.name.replace("-", "_") in text for rs in rulesets):
            file.problems.append(f"{label}: not valid YAML, so it cannot be rewritten ({exc}). Fix it, then run again.")
        return file
    if not isinstance(root, MappingNode) or not isinstance(data, dict):
        return file
    retyped: set[int] = set()
    migrated: _Migrated = {}
    try:
        entries = []
        for key, node in root.value:
            type_node = find_type(node) if isinstance(node, MappingNode) else None
            if isinstance(key, ScalarNode) and type_node is not None and isinstance(type_node.value, str):
                entries.append((key.value, node, type_node, type_node.value))
        for name, node, type_node, old_type in entries:  # the types as written (an anchor's changes once)
            _apply(file, rulesets, name, node, (type_node, old_type), data.get(name), retyped, migrated)
        new = file.applied()
        expected = yaml.SafeLoader("").construct_document(root)
        loaded = yaml.safe_load(new)
        if loaded != expected:
            raise UnsafeEditError("the rewritten file would not load as intended")
    except (UnsafeEditError, ValueError, yaml.YAMLError) as exc:
        file.problems.append(f"{label}: cannot be rewritten safely ({exc}); rewrite its entries by hand.")
        file.edits.clear()
        file.changes.clear()
        return file
    for name, (new_type, node) in migrated.items():
        _check_arguments(file, name, node, new_type, loaded.get(name))
    return file


def _check_arguments(file: FileEdit, name: str, node: MappingNode, new_type: str, config: Any) -> None:
    """Report the arguments of a rewritten entry that its new dataset class does not take."""
    import importlib
    import inspect

    module, _, cls_name = new_type.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), cls_name)
        params = inspect.signature(cls).parameters
    except (ImportError, AttributeError, TypeError, ValueError):
        return
    if not isinstance(config, Mapping) or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(str(k) for k in config if k not in params and k not in ("type", "versioned"))
    if unknown:
        keys = [k for k, _ in node.value if isinstance(k, ScalarNode) and k.value in unknown]
        line = (keys[0] if keys else node).start_mark.line + 1
        file.problems.append(f"{file.label}:{line}: {name}: {cls_name} takes no argument {', '.join(unknown)}; "
                             f"remove or rename it by hand (see the migration guide's table of arguments).")


def _apply(file: FileEdit, rulesets: tuple[RuleSet, ...], name: str, node: MappingNode,
           typed: tuple[ScalarNode, str], config: Any, retyped: set[int], migrated: _Migrated) -> None:
    type_node, old_type = typed
    for rules in rulesets:
        rule_key = rules.key_of(old_type)
        if rule_key is None:
            continue
        rule = rules.rules.get(rule_key)
        if rule is not None and rule.when is not None and not rule.when(config if isinstance(config, Mapping) else {}):
            return
        if rule is None:
            file.problems.append(f"{file.label}:{file.line_of(type_node.start_mark.index)}: {name}: "
                                 f"'{old_type}' has no counterpart in kedro-mlflow-runs. {rules.hint}")
            return
        if id(type_node) not in retyped:
            retyped.add(id(type_node))
            file.edits.append((type_node.start_mark.index, type_node.end_mark.index, rule.new_type))
            file.change(type_node.start_mark.index, f"{name}: type {old_type} -> {rule.new_type}")
            type_node.value = rule.new_type
        if name.startswith("_"):  # a template for anchors: Kedro never builds it, its users are edited
            return
        migrated[name] = (rule.new_type, node)
        if rule.edit is not None:
            rule.edit(CatalogEntry(name, node, config if isinstance(config, Mapping) else {}, file))
        return
