"""What registered Cedar policies cost: per-request authorization with 0, 10 and 200 tenant policies, and a dry-run.

    .venv/bin/python bench/authz.py [--database sqlite|postgresql://...] [--count 3000]

In-process, on a scratch database: three tenants, each with an admin and 50
members, holding 0, 10 and 200 enabled policies (spread over the tenant's
actions, a tenth of them on every action; none matches the benchmark's
questions, so every decision is still the built-in policies' and every policy
is evaluated). An authorization is core.authz.allowed() as a service calls it:
the live policy set looked up by the revisions read with the user, the entities
built, Cedar asked. "cold" clears the decision memo before each question (every
question new, the worst case), "memo" asks it again. The three tenants are
measured in turn, question by question, so that the load of a shared machine
falls on all three alike; times are CPU time of this process (wall time on a
busy machine counts other processes too). A request takes at most two
decisions (tests/test_totals_and_decisions.py), so a request's overhead is
two cold decisions. The dry-run is POST /api/v1/policies/dry-run with 100
requests through the Flask test client (JSON, token check, everything), as
the tenant admin of the 200-policy tenant, with a draft on one action and with
a draft on every action (each request then decided twice).
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import app_env, scratch_database  # noqa: E402

SIZES = (0, 10, 200)
PASSWORD = "bench password 2026"
ACTIONS = [("users:read", "User"), ("users:update", "User"), ("users:delete", "User"), ("profiles:read", "User"),
           ("profiles:update", "User"), ("users:reset_password", "User"), ("tenants:read", "Tenant"),
           ("users:list", "Tenant"), ("audit:list", "Tenant")]
CONDITIONS = {"User": 'resource.role == "role-{n}" && principal.status == "active"',
              "Tenant": 'resource.status == "status-{n}"'}


def policy_text(n: int) -> str:
    """A realistic policy that never matches the benchmark's questions (the decisions stay the built-in ones)."""
    if n % 10 == 0:
        return f'forbid (principal, action, resource) when {{ principal.status == "locked-{n}" }};'
    action, kind = ACTIONS[n % len(ACTIONS)]
    effect = "forbid" if n % 3 else "permit"
    return (f'{effect} (principal, action == Action::"{action}", resource is {kind})\n'
            f'when {{ {CONDITIONS[kind].format(n=n)} }};')


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.99) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="sqlite")
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    with scratch_database(args.database, "admin_api_bench_authz") as url:
        os.environ.update(app_env(url, APP_ENV="testing", PASSWORD_HASH_TIME_COST=1, PASSWORD_HASH_MEMORY_COST=1024,
                                  PASSWORD_HASH_PARALLELISM=1, LOG_LEVEL="ERROR"))
        app, tenants = build(url)
        print(f"database: {url.split(':')[0]}; {args.count} questions per tenant; CPU time of this process")
        decisions(app, tenants, args.count)
        dry_runs(app, tenants[200])


def build(url: str):
    """The three tenants (size -> ids), their users and policies, registered through the service."""
    from flask_migrate import upgrade

    from admin_api import create_app
    from admin_api.core.security import hash_password
    from admin_api.extensions import db
    from admin_api.policies import service as policies
    from admin_api.tenants.models import Tenant
    from admin_api.users.models import User, email_key

    app = create_app({"DATABASE_URL": url})
    tenants = {}
    with app.app_context():
        upgrade()
        password = hash_password(PASSWORD)

        def user(email, role, tenant_id):
            created = User(tenant_id=tenant_id, email=email, email_key=email_key(tenant_id, email), display_name=email,
                           role=role, status="active", password_hash=password)
            db.session.add(created)
            return created

        root = user("root@bench.test", "platform_admin", None)
        for size in SIZES:
            tenant = Tenant(name=f"Bench {size}", slug=f"bench-{size}")
            db.session.add(tenant)
            db.session.flush()
            admin = user(f"admin@{size}.test", "tenant_admin", tenant.id)
            members = [user(f"m{n}@{size}.test", "member", tenant.id) for n in range(50)]
            db.session.flush()
            tenants[size] = {"tenant": tenant.id, "admin": admin.id, "members": [m.id for m in members],
                             "email": admin.email}
        db.session.commit()
        for size in SIZES:
            for n in range(size):
                policies.create_policy(actor=root, name=f"bench-{n}", source=policy_text(n),
                                       tenant_id=tenants[size]["tenant"])
    return app, tenants


def decisions(app, tenants: dict, count: int) -> None:
    from admin_api.core import authz
    from admin_api.extensions import db
    from admin_api.policy import evaluator
    from admin_api.policy.live import current_revisions
    from admin_api.tenants.models import Tenant
    from admin_api.users.models import User

    rng = random.Random(7)
    with app.test_request_context():
        subjects = {}
        for size, ids in tenants.items():
            admin = db.session.get(User, ids["admin"])
            admin.policy_revisions = current_revisions(admin.tenant_id)  # as the token-user query leaves it
            tenant = db.session.get(Tenant, ids["tenant"])
            members = [db.session.get(User, member) for member in ids["members"]]
            questions = []
            for _ in range(count):
                action, kind = rng.choice(ACTIONS)
                questions.append((action, tenant if kind == "Tenant" else rng.choice(members)))
            authz.allowed(admin, *questions[0])  # the live set is parsed here, once
            subjects[size] = (admin, tenant, members, questions)
        cold, memo = {size: [] for size in SIZES}, {size: [] for size in SIZES}
        for index in range(count):
            for size in SIZES:
                admin, _, _, questions = subjects[size]
                action, resource = questions[index]
                evaluator.MEMO.clear()
                started = time.process_time_ns()
                authz.allowed(admin, action, resource)
                cold[size].append((time.process_time_ns() - started) / 1000)
                started = time.process_time_ns()
                authz.allowed(admin, action, resource)
                memo[size].append((time.process_time_ns() - started) / 1000)
    base = percentiles(cold[0])[0]
    print(f"{'policies':>8} | {'decision cold p50/p99 µs':>24} | {'memo p50 µs':>11} | "
          f"{'request (2 cold) p50 µs':>23} | {'added per request µs':>20}")
    for size in SIZES:
        (p50, p99), memo_p50 = percentiles(cold[size]), percentiles(memo[size])[0]
        print(f"{size:>8} | {p50:>11.0f} / {p99:>10.0f} | {memo_p50:>11.0f} | {2 * p50:>23.0f} | "
              f"{2 * (p50 - base):>20.0f}")


def dry_runs(app, ids: dict) -> None:
    client = app.test_client()
    token = client.post("/api/v1/auth/login", json={"email": ids["email"], "password": PASSWORD}).json["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(11)
    requests = []
    for _ in range(100):
        action, kind = rng.choice(ACTIONS)
        target = ({"type": "Tenant", "id": str(ids["tenant"])} if kind == "Tenant"
                  else {"type": "User", "id": str(rng.choice(ids["members"]))})
        requests.append({"principal": {"type": "User", "id": str(ids["admin"])}, "action": action, "resource": target})
    for label, source in (("a draft on one action", policy_text(3)), ("a draft on every action", policy_text(0))):
        client.post("/api/v1/policies/dry-run", headers=headers, json={"source": source, "requests": requests})  # warm
        cpu, wall = [], []
        for _ in range(20):
            started, started_wall = time.process_time(), time.perf_counter()
            response = client.post("/api/v1/policies/dry-run", headers=headers, json={"source": source, "requests": requests})
            cpu.append((time.process_time() - started) * 1000)
            wall.append((time.perf_counter() - started_wall) * 1000)
            assert response.status_code == 200 and response.json["valid"], response.json
        print(f"dry-run, 100 requests, 200 live policies, {label}: p50 {statistics.median(cpu):.1f} ms CPU "
              f"(max {max(cpu):.1f}); wall p50 {statistics.median(wall):.1f} ms")


if __name__ == "__main__":
    main()
