"""The Cedar evaluator: equal questions share one answer, and any change in the inputs is a new question."""
from admin_api.policy import evaluator


def _ask(role: str, status: str = "active", action: str = "users:list"):
    principal = {"type": "User", "id": "u1"}
    resource = {"type": "Platform", "id": "platform"}
    entities = [{"uid": resource, "attrs": {}, "parents": []},
                {"uid": principal, "attrs": {"role": role, "status": status}, "parents": []}]
    return evaluator.evaluate(principal=principal, action=action, resource=resource, entities=entities)


def test_a_repeated_question_is_answered_from_memory():
    evaluator.MEMO.clear()
    assert _ask("platform_admin").allowed
    assert _ask("platform_admin").allowed
    assert (evaluator.MEMO.hits, evaluator.MEMO.misses) == (1, 1)


def test_changed_attributes_or_action_are_decided_afresh():
    assert _ask("platform_admin").allowed
    assert not _ask("platform_admin", status="disabled").allowed
    assert not _ask("member").allowed
    assert _ask("platform_admin", action="tenants:list").allowed
    assert _ask("platform_admin").determining_policies == ("platform_admin.all",)


def test_an_evaluation_error_denies_and_is_reported(caplog):
    """A policy whose condition errors at run time never allows (fail closed); the log line stays short even
    when the error quotes a value of 100,000 characters, but the decision keeps the whole message."""
    import cedarpy

    broken = cedarpy.PolicySet.from_str("\n".join(
        f'@id("broken{n}") permit (principal, action, resource) when {{ principal.nope{n} == 1 }};' for n in range(5)))
    principal = {"type": "User", "id": "u1" + "x" * 100_000}
    resource = {"type": "Platform", "id": "platform"}
    entities = [{"uid": resource, "attrs": {}, "parents": []},
                {"uid": principal, "attrs": {"role": "platform_admin", "status": "active"}, "parents": []}]
    decision = evaluator.evaluate(principal=principal, action="users:list", resource=resource, entities=entities,
                                  policies=broken)
    assert not decision.allowed and len(decision.errors) == 5 and len(decision.errors[0]) > 100_000
    [line] = [record.getMessage() for record in caplog.records if "evaluation error" in record.getMessage()]
    assert len(line) < 2000 and "(and 2 more)" in line and "u1xxx" in line


def test_the_memo_holds_no_policy_set_so_a_replaced_bundle_is_freed():
    """Found by a hostile review: the memo once kept every policy set it had answered for, so each change of a
    tenant's (large) policies left another copy in every worker, never freed."""
    import gc
    import sys
    import weakref

    bundle = evaluator.Bundle([evaluator.Registered("p1", "p1", 'forbid (principal, action, resource) when { false };')])
    policies = bundle.for_action("users:list")
    references = sys.getrefcount(policies)
    principal = {"type": "User", "id": "u1"}
    resource = {"type": "Platform", "id": "platform"}
    entities = [{"uid": resource, "attrs": {}, "parents": []},
                {"uid": principal, "attrs": {"role": "platform_admin", "status": "active"}, "parents": []}]
    for _ in range(2):
        evaluator.evaluate(principal=principal, action="users:list", resource=resource, entities=entities,
                           policies=policies, memo_key=bundle.memo_key("users:list"))
    assert evaluator.MEMO.hits >= 1 and sys.getrefcount(policies) == references
    alive = weakref.ref(bundle)
    del bundle, policies
    gc.collect()
    assert alive() is None


def test_a_large_bundle_shares_one_policy_set_between_actions():
    """Cedar keeps a full copy per set: past SPLIT_BY_ACTION_UP_TO characters, one set serves every action."""
    small = evaluator.Bundle([evaluator.Registered("s", "s", "forbid (principal, action, resource) when { false };")])
    assert small.for_action("users:list") is not small.for_action("users:delete")
    copied_everywhere = "// " + "x" * 5_000 + "\nforbid (principal, action, resource) when { false };"
    big = evaluator.Bundle([evaluator.Registered("b", "b", copied_everywhere)])
    assert big.for_action("users:list") is big.for_action("users:delete")
    assert big.memo_key("users:list") == big.memo_key("users:delete") != small.memo_key("users:list")
    # as much text naming one action each would be copied once: still split (fewer policies to evaluate per action)
    scoped = [evaluator.Registered(f"s{n}", f"s{n}", "// " + "x" * 500 + f'\nforbid (principal, action == '
                                   f'Action::"{action}", resource) when {{ false }};')
              for n, action in enumerate(list(evaluator.ACTIONS)[:10])]
    split = evaluator.Bundle(scoped)
    assert split.size > 5_000 and split.for_action("users:list") is not split.for_action("users:delete")


def test_the_live_cache_drops_bundles_beyond_its_cost(monkeypatch):
    """Parsed policies a worker keeps are bounded by their size, not only by the number of tenants."""
    import uuid

    from admin_api.policy import live

    monkeypatch.setattr(live, "_bundles", type(live._bundles)())
    sources = {}

    def enabled_policies(tenant_id):
        return [evaluator.Registered(str(tenant_id), "p", sources[tenant_id])]

    monkeypatch.setattr(live, "_enabled_policies", enabled_policies)
    big = "// " + "x" * 20_000 + "\nforbid (principal, action, resource) when { false };"
    tenants = [uuid.uuid4() for _ in range(4)]
    for tenant in tenants:
        sources[tenant] = big
    one_cost = evaluator.Bundle([evaluator.Registered("x", "p", big)]).cost
    monkeypatch.setattr(live, "MAX_CACHED_COST", int(one_cost * 2.5))
    for tenant in tenants:
        live.bundle_for(tenant, live.Revisions(tenant=uuid.uuid4()))
    assert list(live._bundles) == tenants[2:]  # the two least recently used went
