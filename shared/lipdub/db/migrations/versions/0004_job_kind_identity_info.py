"""job kind; identity training record

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 12:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=32), server_default='dub',
                                      nullable=False))
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('info', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE identities SET updated_at = created_at")
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.alter_column('updated_at', nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_column('updated_at')
        batch_op.drop_column('info')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('kind')
