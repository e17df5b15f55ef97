"""Cedar (cedarpy) evaluation. The schema and the built-in role policies are parsed once, at import.

Every authorization decision of the API goes through `evaluate()`, and so does
the dry-run of a draft policy, so that both always agree. The policies come as
a `Bundle`: the built-in role policies plus registered ones. Cedar gets them one
action at a time: a policy whose scope names other actions can neither match
nor fail, so leaving it out changes no answer and saves evaluating it (what
keeps hundreds of registered policies cheap).
"""
from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cedarpy
from cedarpy import pst

from admin_api.policy.catalog import ACTION_GROUPS, SCHEMA, SCHEMA_TEXT  # noqa: F401 (SCHEMA_TEXT re-exported)
from admin_api.policy.source import statements

log = logging.getLogger("admin_api.policy")

BUILTIN_POLICY_TEXT = (Path(__file__).parent / "roles.cedar").read_text()


def schema() -> cedarpy.Schema:
    return SCHEMA


@dataclass(frozen=True)
class Decision:
    allowed: bool
    determining_policies: tuple[str, ...] = ()  # Cedar ids: a built-in policy's @id, a registered policy's id
    errors: tuple[str, ...] = ()  # evaluation errors: the decision is then a deny (fail closed)
    builtin: bool = False  # a built-in role policy permits it (registered ones did not widen anything)


@dataclass(frozen=True)
class Registered:
    """A registered (or draft) policy as the engine sees it."""

    id: str
    name: str
    source: str


def _builtin_templates() -> list[pst.Template]:
    """The built-in policies, each with its @id as its Cedar id (answers and errors then name it)."""
    tree = cedarpy.policies_to_pst(BUILTIN_POLICY_TEXT)
    return [dataclasses.replace(template, id=template.annotations["id"]) for template in tree.static_policies.values()]


def _may_apply(template: pst.Template, action: str) -> bool:
    """Whether a policy's action scope can match `action` (a scope naming an action group: always kept)."""
    scope = template.action
    if isinstance(scope, pst.ActionEq):
        return scope.entity.id == action
    if isinstance(scope, pst.ActionIn):
        return any(uid.id == action or uid.id in ACTION_GROUPS for uid in scope.entities)
    return True


class Bundle:
    """The built-in role policies plus registered ones, handed to Cedar per action (built once per action)."""

    def __init__(self, registered: Sequence[Registered] = (), *, memoize: bool = True):
        self.registered = tuple(registered)
        self.names = {policy.id: policy.name for policy in self.registered}
        self.memoize = memoize  # False for throw-away bundles (a dry-run's draft): they stay out of the memo
        self._templates = [*_BUILTIN_TEMPLATES, *(t for policy in self.registered for t in statements(policy.source, policy.id))]
        self._by_action: dict[str, cedarpy.PolicySet] = {}

    def for_action(self, action: str) -> cedarpy.PolicySet:
        found = self._by_action.get(action)
        if found is None:
            templates = {t.id: t for t in self._templates if _may_apply(t, action)}
            found = cedarpy.PolicySet.from_pst(pst.PolicySet(
                templates=pst.FrozenMap(), static_policies=pst.FrozenMap(templates), template_links=()))
            found = self._by_action.setdefault(action, found)
        return found

    def with_policies(self, more: Iterable[Registered]) -> Bundle:
        """This bundle plus `more` (a draft), kept out of the decision memo."""
        return Bundle([*self.registered, *more], memoize=False)


_BUILTIN_TEMPLATES = _builtin_templates()
BUILTIN_IDS = frozenset(template.id for template in _BUILTIN_TEMPLATES)
BUILTIN = Bundle()


def evaluate(*, principal: dict, action: str, resource: dict, entities: list[dict],
             context: dict | None = None, policies: cedarpy.PolicySet | None = None,
             memoize: bool = True) -> Decision:
    """Decide one request. Any evaluation error denies (fail closed)."""
    request = {
        "principal": principal,
        "action": {"type": "Action", "id": action},
        "resource": resource,
        "context": context or {},
    }
    # Cedar is a pure function of the policies and these inputs, so equal questions share one answer:
    # the JSON text of the inputs is the key (a policy set is keyed by identity: a new set, new entries).
    decide = _decide if memoize else _decide.__wrapped__
    decision = decide(policies or BUILTIN.for_action(action), json.dumps(request, sort_keys=True),
                      json.dumps(entities, sort_keys=True))
    if decision.errors:
        log.warning("policy evaluation error on %s: %s", action, decision.errors)
    return decision


@lru_cache(maxsize=8192)
def _decide(policies: cedarpy.PolicySet, request_json: str, entities_json: str) -> Decision:
    result = cedarpy.is_authorized(json.loads(request_json), policies, json.loads(entities_json), schema=SCHEMA)
    determining = tuple(result.diagnostics.reasons)
    errors = tuple(str(error) for error in result.diagnostics.errors)
    return Decision(result.allowed and not errors, determining, errors,
                    builtin=any(reason in BUILTIN_IDS for reason in determining))
