"""Cedar (cedarpy) evaluation. Schema and built-in policies are parsed once, at import.

Every authorization decision of the API goes through `evaluate()`; so will the
dry-run of draft policies, so that both always agree.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cedarpy

log = logging.getLogger("admin_api.policy")

HERE = Path(__file__).parent
SCHEMA_TEXT = (HERE / "schema.cedarschema").read_text()
BUILTIN_POLICY_TEXT = (HERE / "roles.cedar").read_text()

_SCHEMA = cedarpy.Schema.from_str(SCHEMA_TEXT)
_BUILTIN = cedarpy.PolicySet.from_str(BUILTIN_POLICY_TEXT)


def schema() -> cedarpy.Schema:
    return _SCHEMA


@dataclass(frozen=True)
class Decision:
    allowed: bool
    determining_policies: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def validate(source: str) -> list[str]:
    """Problems of Cedar text against the platform schema (empty when valid)."""
    try:
        cedarpy.PolicySet.from_str(source)
    except ValueError as exc:
        return [str(exc)]
    result = cedarpy.validate_policies(source, _SCHEMA)
    return [str(error) for error in result.errors]


def evaluate(*, principal: dict, action: str, resource: dict, entities: list[dict],
             context: dict | None = None, policies: cedarpy.PolicySet | None = None) -> Decision:
    """Decide one request. Any evaluation error denies (fail closed)."""
    request = {
        "principal": principal,
        "action": {"type": "Action", "id": action},
        "resource": resource,
        "context": context or {},
    }
    result = cedarpy.is_authorized(request, policies or _BUILTIN, entities, schema=_SCHEMA)
    names = result.diagnostics.id_annotations_by_reason
    determining = [names.get(reason, reason) for reason in result.diagnostics.reasons]
    errors = list(result.diagnostics.errors)
    if errors:
        log.warning("policy evaluation error on %s: %s", action, errors)
        return Decision(False, determining, errors)
    return Decision(result.allowed, determining, errors)
