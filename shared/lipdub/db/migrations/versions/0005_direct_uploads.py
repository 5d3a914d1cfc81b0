"""direct (presigned multipart) uploads; 64-bit upload sizes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 12:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=16), server_default='ready',
                                      nullable=False))
        batch_op.add_column(sa.Column('multipart_id', sa.Text(), nullable=True))
        batch_op.alter_column('size_bytes', existing_type=sa.Integer(),
                              type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.alter_column('size_bytes', existing_type=sa.BigInteger(),
                              type_=sa.Integer(), existing_nullable=False)
        batch_op.drop_column('multipart_id')
        batch_op.drop_column('state')
