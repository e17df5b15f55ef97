"""Evaluating every feature flag for one user, timed inside the service (the budget: under 2 ms for 200 flags).

    .venv/bin/python bench/flags.py [--database sqlite|postgresql://...] [--flags 200] [--count 2000]

A scratch database migrated to head; 20 tenants with a tenant admin and a member each; `--flags` flags
created through the service: a third disabled, half with a rollout (0.01 % steps), and every tenant
forcing about one flag in four. Then `service.evaluate_flags` is called as a request calls it: a fresh
transaction and the signed-in user loaded with its tenant (outside the timing), the call timed alone.
Prints p50/p99 in ms for a member evaluating for itself, a tenant admin for one of its users, and a
platform admin naming the tenant and the user.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import scratch_database  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import joinedload  # noqa: E402

from admin_api import create_app  # noqa: E402
from admin_api.extensions import db  # noqa: E402
from admin_api.feature_flags import service  # noqa: E402
from admin_api.policy.live import current_revisions  # noqa: E402
from admin_api.tenants.models import Tenant  # noqa: E402
from admin_api.users.models import User, email_key  # noqa: E402

TENANTS = 20


def build_app(url: str):
    return create_app({
        "APP_ENV": "development", "DATABASE_URL": url, "LOG_LEVEL": "ERROR",
        "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
        "JWT_SECRET_KEY": "bench-jwt-secret-key-that-is-long-enough-0123456789",
        "UPLOAD_FOLDER": tempfile.mkdtemp(prefix="bench-uploads-"),
    })


def person(email: str, role: str, tenant: Tenant | None) -> User:
    tenant_id = tenant.id if tenant else None
    user = User(tenant_id=tenant_id, email=email, email_key=email_key(tenant_id, email), display_name=email,
                role=role, status="active")
    db.session.add(user)
    return user


def seed(flag_count: int) -> dict:
    """Tenants, people and flags; the ids of the people the timings use."""
    rng = random.Random(7)
    root = person("root@example.test", "platform_admin", None)
    tenants = [Tenant(name=f"Tenant {n}", slug=f"tenant-{n}", status="active") for n in range(TENANTS)]
    db.session.add_all(tenants)
    db.session.flush()
    admins = [person(f"admin{n}@example.test", "tenant_admin", t) for n, t in enumerate(tenants)]
    members = [person(f"member{n}@example.test", "member", t) for n, t in enumerate(tenants)]
    db.session.commit()
    for n in range(flag_count):
        service.create_flag(
            actor=root, key=f"flag.{n:04d}", description=f"Flag number {n}", enabled=rng.random() > 1 / 3,
            rollout_basis_points=rng.randrange(0, 10_001) if rng.random() < 0.5 else None,
            tenant_overrides={t.id: rng.random() < 0.5 for t in tenants if rng.random() < 0.25})
    return {"root": root.id, "admin": admins[0].id, "member": members[0].id, "tenant": tenants[0].id}


def signed_in(user_id):
    """The actor as the token check loads it for a request: one query, tenant joined, in a fresh transaction,
    with the revisions of its policies (core.security reads them in that same query)."""
    db.session.rollback()
    db.session.expunge_all()
    user = db.session.scalar(select(User).options(joinedload(User.tenant)).where(User.id == user_id))
    user.policy_revisions = current_revisions(user.tenant_id)
    return user


def timed(count: int, actor_id, **kwargs) -> tuple[list[float], dict]:
    times, result = [], {}
    for n in range(count + 50):  # the first 50 warm the statement caches
        actor = signed_in(actor_id)
        started = time.perf_counter()
        result = service.evaluate_flags(actor=actor, **kwargs)
        elapsed = (time.perf_counter() - started) * 1000
        if n >= 50:
            times.append(elapsed)
    return sorted(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="sqlite")
    parser.add_argument("--flags", type=int, default=200)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    with scratch_database(args.database, "admin_api_bench_flags") as url:
        app = build_app(url)
        with app.app_context():
            upgrade()
            ids = seed(args.flags)
            cases = {
                "member, for itself": (ids["member"], {"user_id": ids["member"]}),
                "tenant admin, for one of its users": (ids["admin"], {"user_id": ids["member"]}),
                "platform admin, tenant and user named": (ids["root"], {"tenant_id": ids["tenant"],
                                                                        "user_id": ids["member"]}),
            }
            print(f"{args.flags} flags, {TENANTS} tenants, {db.engine.dialect.name}; "
                  f"service.evaluate_flags timed {args.count} times each")
            for label, (actor_id, kwargs) in cases.items():
                times, result = timed(args.count, actor_id, **kwargs)
                reasons = Counter(evaluation.reason for evaluation in result.values())
                p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
                print(f"{label:<40} p50 {statistics.median(times):6.3f} ms  p99 {p99:6.3f} ms  "
                      f"({len(result)} flags: {dict(sorted(reasons.items()))})")
            db.session.remove()
            db.engine.dispose()


if __name__ == "__main__":
    main()
