"""Cedar (cedarpy) evaluation. Schema and built-in policies are parsed once, at import.

Every authorization decision of the API goes through `evaluate()`; so will the
dry-run of draft policies, so that both always agree.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
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
    determining_policies: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # evaluation errors: the decision is then a deny (fail closed)


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
    # Cedar is a pure function of the policies and these inputs, so equal questions share one answer:
    # the JSON text of the inputs is the key (a policy set is keyed by identity: a new set, new entries).
    decision = _decide(policies or _BUILTIN, json.dumps(request, sort_keys=True), json.dumps(entities, sort_keys=True))
    if decision.errors:
        log.warning("policy evaluation error on %s: %s", action, decision.errors)
    return decision


@lru_cache(maxsize=8192)
def _decide(policies: cedarpy.PolicySet, request_json: str, entities_json: str) -> Decision:
    result = cedarpy.is_authorized(json.loads(request_json), policies, json.loads(entities_json), schema=_SCHEMA)
    names = result.diagnostics.id_annotations_by_reason
    determining = tuple(names.get(reason, reason) for reason in result.diagnostics.reasons)
    errors = tuple(str(error) for error in result.diagnostics.errors)
    return Decision(result.allowed and not errors, determining, errors)
