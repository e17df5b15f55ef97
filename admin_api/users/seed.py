"""Demo data in bulk: multi-row INSERT statements, one password hash for everyone."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from admin_api.core import audit
from admin_api.core.db import utcnow
from admin_api.core.errors import Conflict, Invalid
from admin_api.core.security import hash_password, password_problems
from admin_api.extensions import db
from admin_api.tenants.models import Tenant
from admin_api.users.models import User, email_key

# Users per INSERT statement. psycopg 3 runs a plain executemany as one statement per row, and each statement
# fires users' count trigger (user_counts): a 1,000,000-user seed rewrote the count rows a million times and left
# as many dead row versions for every list total to read past. With RETURNING, SQLAlchemy sends the batch as
# multi-row VALUES statements ("insertmanyvalues", up to 1,000 rows each): one trigger run per statement.
BATCH = 1000


def check_demo_password(password: str) -> None:
    if problems := password_problems(password):
        raise Invalid("Password refused.", errors={"password": problems})


def seed_demo(*, tenant_count: int, user_count: int, prefix: str, password: str,
              progress: Callable[[int], None] = lambda n: None) -> dict:
    check_demo_password(password)
    slugs = [f"{prefix}-{i}" for i in range(1, tenant_count + 1)]
    for start in range(0, len(slugs), 1000):  # a friendly message; the unique slug index is the guarantee
        if taken := db.session.scalars(select(Tenant.slug).where(Tenant.slug.in_(slugs[start:start + 1000]))).first():
            raise Conflict(f"tenant slug {taken} exists; choose another --prefix")
    now = utcnow()
    tenants = [{"id": uuid.uuid4(), "name": f"Demo {slug}", "slug": slug, "status": "active", "version": 1,
                "created_at": now, "updated_at": now} for slug in slugs]
    try:
        db.session.execute(insert(Tenant), tenants)
    except IntegrityError:  # another seed with this prefix got there first
        db.session.rollback()
        raise Conflict(f"tenant slugs {prefix}-N were taken meanwhile; choose another --prefix")
    password_hash = hash_password(password)
    logins = []
    # Tenant by tenant: each INSERT statement then adds to one tenant's count row (user_counts), not to all of
    # them; a row rewritten many times in one PostgreSQL transaction is slower to find each time. Creation times
    # still interleave across tenants.
    for t, tenant in enumerate(tenants):
        rows = []
        for n in range(t, user_count, tenant_count):
            index = n // tenant_count
            role = "tenant_admin" if index == 0 else "member"
            email = f"{'admin' if index == 0 else f'user{index}'}@{tenant['slug']}.example.test"
            created = now - timedelta(microseconds=user_count - n)  # distinct, increasing creation times
            rows.append({"id": uuid.uuid4(), "tenant_id": tenant["id"], "email": email,
                         "email_key": email_key(tenant["id"], email), "display_name": f"Demo user {index}",
                         "role": role, "status": "active", "password_hash": password_hash,
                         "must_change_password": False, "version": 1, "created_at": created, "updated_at": created})
            if index == 0 and len(logins) < 5:
                logins.append({"email": email, "tenant": tenant["slug"], "role": role})
        for start in range(0, len(rows), BATCH):
            batch = rows[start:start + BATCH]
            db.session.execute(insert(User).returning(User.id), batch)
            progress(len(batch))
    audit.record("demo.seed", actor_email="cli", changes={"after": {"tenants": tenant_count, "users": user_count}})
    db.session.commit()
    return {"tenants": tenant_count, "users": user_count, "logins": logins}

