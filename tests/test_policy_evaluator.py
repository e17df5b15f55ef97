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
