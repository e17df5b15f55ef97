"""The platform's Cedar schema, parsed once, and what it declares: entity types and actions.

The declarations are read from cedarpy's own rendering of the parsed schema
(one sorted, normalised declaration per statement), so that the lists agree
with what Cedar validates against, whatever the layout of schema.cedarschema.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cedarpy

SCHEMA_TEXT = (Path(__file__).parent / "schema.cedarschema").read_text()
SCHEMA = cedarpy.Schema.from_str(SCHEMA_TEXT)


@dataclass(frozen=True)
class EntityType:
    name: str
    parents: tuple[str, ...]
    attributes: dict[str, dict]  # name -> {"type": Cedar type, "required": bool}


@dataclass(frozen=True)
class Action:
    name: str
    groups: tuple[str, ...]  # the action groups it is `in`
    principal_types: tuple[str, ...]
    resource_types: tuple[str, ...]
    context: dict[str, dict]  # as attributes


_ENTITY = re.compile(r'^entity\s+(\w+)(?:\s+in\s+\[([^\]]*)\])?(?:\s*=\s*\{(.*)\})?$', re.DOTALL)
_ACTION = re.compile(r'^action\s+"((?:[^"\\]|\\.)*)"(?:\s+in\s+\[([^\]]*)\])?(?:\s+appliesTo\s*\{(.*)\})?$', re.DOTALL)


def _split_top(text: str, separator: str) -> list[str]:
    """Parts of `text` between separators that are outside quotes, braces and brackets."""
    parts, depth, in_string, current = [], 0, False, []
    for index, char in enumerate(text):
        if in_string:
            in_string = not (char == '"' and text[index - 1] != "\\")
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _names(listing: str | None) -> tuple[str, ...]:
    return tuple(name.strip().removeprefix("Action::").strip('"') for name in _split_top(listing or "", ","))


def _fields(record: str | None) -> dict[str, str]:
    """`name: Type` pairs of a record (or of an appliesTo block) -> {name: Type}; `?` stays on optional names."""
    fields = {}
    for part in _split_top(record or "", ","):
        name, _, type_ = part.partition(":")
        fields[name.strip().strip('"')] = " ".join(type_.split())
    return fields


def _attributes(record: str | None) -> dict[str, dict]:
    return {name.removesuffix("?").strip('"'): {"type": type_, "required": not name.endswith("?")}
            for name, type_ in _fields(record).items()}


def _catalog() -> tuple[dict[str, EntityType], dict[str, Action]]:
    entity_types, actions = {}, {}
    for declaration in _split_top(str(SCHEMA), ";"):
        if match := _ENTITY.match(declaration):
            name, parents, attributes = match.groups()
            entity_types[name] = EntityType(name, _names(parents), _attributes(attributes))
        elif match := _ACTION.match(declaration):
            name, groups, applies = match.groups()
            scope = _fields(applies)
            actions[name] = Action(name, _names(groups), _names(scope.get("principal", "").strip("[]")),
                                   _names(scope.get("resource", "").strip("[]")),
                                   _attributes(scope.get("context", "").strip()[1:-1]))
    return entity_types, actions


ENTITY_TYPES, ACTIONS = _catalog()
ACTION_GROUPS = frozenset(group for action in ACTIONS.values() for group in action.groups)
