"""job phase: the finer step within the running stage (fetch, crops, train, upload), apart
from the stage itself, which names plan stages only

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 00:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phase', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('phase')
