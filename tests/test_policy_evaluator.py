"""The Cedar evaluator: equal questions share one answer, and any change in the inputs is a new question."""
from admin_api.policy import evaluator


def _ask(role: str, status: str = "active", action: str = "users:list"):
    principal = {"type": "User", "id": "u1"}
    resource = {"type": "Platform", "id": "platform"}
    entities = [{"uid": resource, "attrs": {}, "parents": []},
                {"uid": principal, "attrs": {"role": role, "status": status}, "parents": []}]
    return evaluator.evaluate(principal=principal, action=action, resource=resource, entities=entities)


def test_a_repeated_question_is_answered_from_memory():
    evaluator._decide.cache_clear()
    assert _ask("platform_admin").allowed
    assert _ask("platform_admin").allowed
    info = evaluator._decide.cache_info()
    assert (info.hits, info.misses) == (1, 1)


def test_changed_attributes_or_action_are_decided_afresh():
    assert _ask("platform_admin").allowed
    assert not _ask("platform_admin", status="disabled").allowed
    assert not _ask("member").allowed
    assert _ask("platform_admin", action="tenants:list").allowed
    assert _ask("platform_admin").determining_policies == ("platform_admin.all",)


def test_an_evaluation_error_denies_and_is_reported():
    """A policy whose condition errors at run time never allows (fail closed)."""
    import cedarpy

    broken = cedarpy.PolicySet.from_str('@id("broken") permit (principal, action, resource) when { principal.nope == 1 };')
    principal = {"type": "User", "id": "u1"}
    resource = {"type": "Platform", "id": "platform"}
    entities = [{"uid": resource, "attrs": {}, "parents": []},
                {"uid": principal, "attrs": {"role": "platform_admin", "status": "active"}, "parents": []}]
    decision = evaluator.evaluate(principal=principal, action="users:list", resource=resource, entities=entities,
                                  policies=broken)
    assert not decision.allowed and decision.errors
