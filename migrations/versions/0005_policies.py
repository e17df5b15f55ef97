"""policies: registered Cedar policies (per tenant or platform-wide) and the versions of the live policy sets

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 07:44:49.639253

"""
from alembic import op
import sqlalchemy as sa

import admin_api.core.db


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('policy_set_versions',
    sa.Column('scope_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Uuid(), nullable=False),
    sa.Column('created_at', admin_api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', admin_api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope_id', name=op.f('pk_policy_set_versions'))
    )
    op.create_table('policies',
    sa.Column('tenant_id', sa.Uuid(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('name_key', sa.String(length=300), nullable=False),
    sa.Column('description', sa.String(length=2000), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', admin_api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', admin_api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_policies_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policies')),
    sa.UniqueConstraint('name_key', name=op.f('uq_policies_name_key'))
    )
    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.create_index('ix_policies_tenant_created', ['tenant_id', 'created_at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.drop_index('ix_policies_tenant_created')

    op.drop_table('policies')
    op.drop_table('policy_set_versions')
