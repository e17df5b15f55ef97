"""invitations: an address invited into a tenant with a role; token stored as a digest; one pending per address

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 07:37:05.241980

"""
from alembic import op
import sqlalchemy as sa

import admin_api.core.db


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('invitations',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('pending_key', sa.String(length=400), nullable=True),
    sa.Column('token_digest', sa.String(length=64), nullable=False),
    sa.Column('expires_at', admin_api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('invited_by', sa.Uuid(), nullable=True),
    sa.Column('accepted_at', admin_api.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('accepted_user_id', sa.Uuid(), nullable=True),
    sa.Column('revoked_at', admin_api.core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', admin_api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', admin_api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('tenant_admin', 'member')", name=op.f('ck_invitations_role')),
    sa.CheckConstraint("status = 'pending' OR pending_key IS NULL", name=op.f('ck_invitations_pending_key_only_while_pending')),
    sa.CheckConstraint("status IN ('pending', 'accepted', 'revoked')", name=op.f('ck_invitations_status')),
    sa.ForeignKeyConstraint(['accepted_user_id'], ['users.id'], name=op.f('fk_invitations_accepted_user_id_users')),
    sa.ForeignKeyConstraint(['invited_by'], ['users.id'], name=op.f('fk_invitations_invited_by_users')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_invitations_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    sa.UniqueConstraint('pending_key', name=op.f('uq_invitations_pending_key')),
    sa.UniqueConstraint('token_digest', name=op.f('uq_invitations_token_digest'))
    )
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index('ix_invitations_created', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invitations_email'), ['email'], unique=False)
        batch_op.create_index('ix_invitations_tenant_created', ['tenant_id', 'created_at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index('ix_invitations_tenant_created')
        batch_op.drop_index(batch_op.f('ix_invitations_email'))
        batch_op.drop_index('ix_invitations_created')

    op.drop_table('invitations')
