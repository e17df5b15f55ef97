"""user and tenant lifecycle: one-time password reset tokens (one per user, stored as a digest)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 06:47:45.614265

"""
from alembic import op
import sqlalchemy as sa

import admin_api.core.db


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('password_reset_tokens',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('token_digest', sa.String(length=64), nullable=False),
    sa.Column('expires_at', admin_api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', admin_api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', admin_api.core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_password_reset_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_password_reset_tokens')),
    sa.UniqueConstraint('token_digest', name=op.f('uq_password_reset_tokens_token_digest'))
    )


def downgrade():
    op.drop_table('password_reset_tokens')
