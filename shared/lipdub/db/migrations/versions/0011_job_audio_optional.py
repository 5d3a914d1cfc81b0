"""jobs.audio_uri optional: a cast's job may give each character's line and no mix (the
lines are mixed into the output's sound)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 10:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.alter_column('audio_uri', existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.alter_column('audio_uri', existing_type=sa.Text(), nullable=False)
