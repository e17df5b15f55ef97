"""user counts: how many users each tenant has, kept by triggers on users, for list totals without counting rows

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:05:00.000000

"""
from alembic import op
import sqlalchemy as sa

import admin_api.core.db


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

PLATFORM_UUID = "00000000-0000-0000-0000-000000000000"  # UserCount.PLATFORM: the platform admins' count
PLATFORM_HEX = "00000000000000000000000000000000"  # the same on SQLite, which stores a UUID as 32 hex digits

# PostgreSQL: one statement-level trigger per direction; a multi-row INSERT of 1,000 users updates each
# tenant's row once, not 1,000 times (but psycopg runs a plain executemany as one statement per row: see
# admin_api/users/seed.py). ORDER BY: concurrent bulk inserts lock the rows in one order.
POSTGRESQL_UP = [
    f"""
    CREATE FUNCTION user_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO user_counts (scope_id, users, created_at, updated_at)
        SELECT coalesce(tenant_id, '{PLATFORM_UUID}'::uuid), count(*), now(), now()
        FROM added GROUP BY 1 ORDER BY 1
        ON CONFLICT (scope_id) DO UPDATE SET users = user_counts.users + excluded.users, updated_at = now();
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION user_counts_take() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE user_counts SET users = user_counts.users - removed_counts.n, updated_at = now()
        FROM (SELECT coalesce(tenant_id, '{PLATFORM_UUID}'::uuid) AS scope_id, count(*) AS n
              FROM removed GROUP BY 1) AS removed_counts
        WHERE user_counts.scope_id = removed_counts.scope_id;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER users_counted_on_insert AFTER INSERT ON users REFERENCING NEW TABLE AS added "
    "FOR EACH STATEMENT EXECUTE FUNCTION user_counts_add()",
    "CREATE TRIGGER users_counted_on_delete AFTER DELETE ON users REFERENCING OLD TABLE AS removed "
    "FOR EACH STATEMENT EXECUTE FUNCTION user_counts_take()",
]
POSTGRESQL_DOWN = [
    "DROP TRIGGER users_counted_on_delete ON users",
    "DROP TRIGGER users_counted_on_insert ON users",
    "DROP FUNCTION user_counts_take()",
    "DROP FUNCTION user_counts_add()",
]

# SQLite has row-level triggers only; it updates rows in place, so one update per user costs little.
# Timestamps in the text form SQLAlchemy writes for SQLite.
SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
SQLITE_UP = [
    f"""
    CREATE TRIGGER users_counted_on_insert AFTER INSERT ON users BEGIN
        INSERT INTO user_counts (scope_id, users, created_at, updated_at)
        VALUES (coalesce(NEW.tenant_id, '{PLATFORM_HEX}'), 1, {SQLITE_NOW}, {SQLITE_NOW})
        ON CONFLICT (scope_id) DO UPDATE SET users = users + 1, updated_at = excluded.updated_at;
    END
    """,
    f"""
    CREATE TRIGGER users_counted_on_delete AFTER DELETE ON users BEGIN
        UPDATE user_counts SET users = users - 1, updated_at = {SQLITE_NOW}
        WHERE scope_id = coalesce(OLD.tenant_id, '{PLATFORM_HEX}');
    END
    """,
]
SQLITE_DOWN = ["DROP TRIGGER users_counted_on_delete", "DROP TRIGGER users_counted_on_insert"]


def upgrade():
    op.create_table('user_counts',
    sa.Column('scope_id', sa.Uuid(), nullable=False),
    sa.Column('users', sa.Integer(), nullable=False),
    sa.Column('created_at', admin_api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', admin_api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope_id', name=op.f('pk_user_counts'))
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    platform, now = (f"'{PLATFORM_UUID}'::uuid", "now()") if postgresql else (f"'{PLATFORM_HEX}'", SQLITE_NOW)
    # The users there already, counted once; the triggers keep the counts from here on.
    op.execute(f"INSERT INTO user_counts (scope_id, users, created_at, updated_at) "
               f"SELECT coalesce(tenant_id, {platform}), count(*), {now}, {now} FROM users GROUP BY 1")
    for statement in POSTGRESQL_UP if postgresql else SQLITE_UP:
        op.execute(statement)


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_DOWN if postgresql else SQLITE_DOWN:
        op.execute(statement)
    op.drop_table('user_counts')
