"""Cedar (cedarpy) evaluation. The schema and the built-in role policies are parsed once, at import.

Every authorization decision of the API goes through `evaluate()`, and so does
the dry-run of a draft policy, so that both always agree. The policies come as
a `Bundle`: the built-in role policies plus registered ones. Cedar gets them one
action at a time: a policy whose scope names other actions can neither match
nor fail, so leaving it out changes no answer and saves evaluating it (what
keeps hundreds of registered policies cheap). A bundle whose policies mostly name
no action would be copied into every per-action set: past SPLIT_BY_ACTION_UP_TO
it is handed to Cedar whole instead.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cedarpy
from cedarpy import pst

from admin_api.policy.catalog import ACTION_GROUPS, ACTIONS, SCHEMA, SCHEMA_TEXT  # noqa: F401 (SCHEMA_TEXT re-exported)
from admin_api.policy.source import registered_id, statements

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


# Cedar holds each policy set it is given in full, so sets per action cost a copy of a policy per action it
# may apply to: about 44 bytes per character per copy (a 61 KB policy naming no action: 100 MB over the 37
# actions). Past this many characters-times-copies, one set serves every action instead (slower to evaluate,
# one copy). Parsed statements cost about 110 bytes per character more in Python: `cost` counts both, in
# characters-times-copies, what the live cache (policy/live.py) budgets.
SPLIT_BY_ACTION_UP_TO = 150_000
_BUNDLE_KEYS = itertools.count()


class Bundle:
    """The built-in role policies plus registered ones, handed to Cedar per action (built once per action)."""

    memoize = True  # its sets live as long as the bundle: their answers may be memoized (under its key)

    def __init__(self, registered: Sequence[Registered] = ()):
        self.registered = tuple(registered)
        self.key = next(_BUNDLE_KEYS)  # names this bundle in the decision memo, which must not keep it alive
        self.names = {policy.id: policy.name for policy in self.registered}
        self.size = sum(len(policy.source) for policy in self.registered)
        self._templates = list(_BUILTIN_TEMPLATES)
        copies = 0  # characters times the per-action sets they would be copied into
        for policy in self.registered:
            parsed = statements(policy.source, policy.id)
            self._templates.extend(parsed)
            share = len(policy.source) / max(len(parsed), 1)
            copies += sum(share * sum(_may_apply(template, action) for action in ACTIONS) for template in parsed)
        self._split = copies <= SPLIT_BY_ACTION_UP_TO
        self.cost = int(copies if self._split else self.size) + 2 * self.size
        self._by_action: dict[str, cedarpy.PolicySet] = {}

    def for_action(self, action: str) -> cedarpy.PolicySet:
        if not self._split:
            return self.whole()
        found = self._by_action.get(action)
        if found is None:
            templates = {t.id: t for t in self._templates if _may_apply(t, action)}
            found = cedarpy.PolicySet.from_pst(pst.PolicySet(
                templates=pst.FrozenMap(), static_policies=pst.FrozenMap(templates), template_links=()))
            found = self._by_action.setdefault(action, found)
        return found

    def memo_key(self, action: str) -> Hashable:
        return self.key, action if self._split else "*"

    def whole(self) -> cedarpy.PolicySet:
        """Every policy of the bundle in one set (what serves every action once the bundle is large)."""
        found = self._by_action.get("*")
        if found is None:
            found = cedarpy.PolicySet.from_pst(pst.PolicySet(templates=pst.FrozenMap(), template_links=(),
                                                             static_policies=pst.FrozenMap({t.id: t for t in self._templates})))
            found = self._by_action.setdefault("*", found)
        return found

    def policy_of(self, cedar_id: str) -> str:
        """The policy a Cedar id belongs to: a built-in policy's @id, or a registered policy's id."""
        return registered_id(cedar_id)

    def with_draft(self, draft: Registered) -> Candidate:
        return Candidate(self, draft)


class Candidate:
    """A bundle plus a draft policy (a dry-run): the bundle's per-action sets with the draft's text added.

    Only the draft is parsed; its statements take the Cedar ids Cedar gives added text. Throw-away: its answers
    stay out of the decision memo.
    """

    memoize = False

    def __init__(self, base: Bundle, draft: Registered):
        self.base = base
        self.draft = draft
        self.names = {**base.names, draft.id: draft.name}
        self._known = {template.id for template in base._templates}
        self._scopes = statements(draft.source, draft.id)
        self._whole = len(draft.source) * len(ACTIONS) > SPLIT_BY_ACTION_UP_TO  # one copy of a large draft, not 37
        self._by_action: dict[str, cedarpy.PolicySet] = {}

    def adds_to(self, action: str) -> bool:
        """Whether the draft can take part in decisions on `action` (else they are the base's, exactly)."""
        return any(_may_apply(template, action) for template in self._scopes)

    def for_action(self, action: str) -> cedarpy.PolicySet:
        if not self.adds_to(action):
            return self.base.for_action(action)
        if self._whole:
            action = "*"
        found = self._by_action.get(action)
        if found is None:
            base = self.base.for_action(action) if action != "*" else self.base.whole()
            found = self._by_action.setdefault(action, base.with_added_str(self.draft.source))
        return found

    def policy_of(self, cedar_id: str) -> str:
        return self.base.policy_of(cedar_id) if cedar_id in self._known else self.draft.id


_BUILTIN_TEMPLATES = _builtin_templates()
BUILTIN_IDS = frozenset(template.id for template in _BUILTIN_TEMPLATES)
BUILTIN = Bundle()


class Entities:
    """The entities of one question: their JSON (what the memo compares) and Cedar's parsed handle, made once."""

    def __init__(self, entities: list[dict]):
        self.json = json.dumps(entities, sort_keys=True)
        self._parsed: cedarpy.Entities | None = None

    def parsed(self) -> cedarpy.Entities:
        """Parsed and checked against the schema (a ValueError when they do not conform)."""
        if self._parsed is None:
            self._parsed = cedarpy.Entities.from_json_str(self.json, SCHEMA)
        return self._parsed

    def __eq__(self, other) -> bool:
        return isinstance(other, Entities) and other.json == self.json

    def __hash__(self) -> int:
        return hash(self.json)


def evaluate(*, principal: dict, action: str, resource: dict, entities: list[dict] | Entities,
             context: dict | None = None, policies: cedarpy.PolicySet | None = None,
             memo_key: Hashable | None = None) -> Decision:
    """Decide one request. Any evaluation error denies (fail closed).

    `memo_key` names `policies` for the decision memo (a bundle's `memo_key(action)`); None: not memoized.
    The built-in policies are used, and memoized, when no policies are given.
    """
    if policies is None:
        policies, memo_key = BUILTIN.for_action(action), BUILTIN.memo_key(action)
    request = {
        "principal": principal,
        "action": {"type": "Action", "id": action},
        "resource": resource,
        "context": context or {},
    }
    entities = entities if isinstance(entities, Entities) else Entities(entities)
    request_json = json.dumps(request, sort_keys=True)
    if memo_key is None:
        decision = _decide(policies, request_json, entities)
    else:
        # Cedar is a pure function of the policies and these inputs, so equal questions share one answer.
        decision = MEMO.get_or_compute((memo_key, request_json, entities.json),
                                       lambda: _decide(policies, request_json, entities))
    if decision.errors:
        log.warning("policy evaluation error on %s: %s", action, _brief(decision.errors))
    return decision


LOGGED_ERRORS, LOGGED_ERROR_LENGTH = 3, 300


def _brief(errors: tuple[str, ...]) -> str:
    """Evaluation errors quote the values involved, which a dry-run's caller chooses: a bounded log line."""
    shown = [error if len(error) <= LOGGED_ERROR_LENGTH else error[:LOGGED_ERROR_LENGTH] + "..."
             for error in errors[:LOGGED_ERRORS]]
    more = f" (and {len(errors) - LOGGED_ERRORS} more)" if len(errors) > LOGGED_ERRORS else ""
    return "; ".join(shown) + more


class DecisionMemo:
    """The last `size` answers, keyed by text only: a bundle's key, never its policy sets, so that a replaced
    bundle is freed at once (an entry holding its sets once kept every old version of a tenant's policies)."""

    def __init__(self, size: int = 8192):
        self.size = size
        self._answers: OrderedDict[tuple, Decision] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get_or_compute(self, key: tuple, compute) -> Decision:
        with self._lock:
            found = self._answers.get(key)
            if found is not None:
                self._answers.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        decision = compute()
        with self._lock:
            self._answers[key] = decision
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)
        return decision

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._answers)


MEMO = DecisionMemo()


def _decide(policies: cedarpy.PolicySet, request_json: str, entities: Entities) -> Decision:
    try:
        result = cedarpy.is_authorized(json.loads(request_json), policies, entities.parsed(), schema=SCHEMA)
    except ValueError as exc:  # entities that do not conform to the schema: no decision, so a deny
        return Decision(False, (), (f"invalid entities: {exc}",))
    determining = tuple(result.diagnostics.reasons)
    errors = tuple(str(error) for error in result.diagnostics.errors)
    return Decision(result.allowed and not errors, determining, errors,
                    builtin=any(reason in BUILTIN_IDS for reason in determining))
