"""jobs (tenant_id, state) index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 11:40:00
"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_jobs_tenant_state', 'jobs', ['tenant_id', 'state'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_jobs_tenant_state', table_name='jobs')
