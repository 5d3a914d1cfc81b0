"""job parts: a stage run in parts on many workers (a film's segments)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 00:19:41
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job_parts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('state', sa.Enum('PENDING', 'RUNNING', 'DONE', name='partstate', native_enum=False, length=16), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.Column('worker', sa.String(length=128), nullable=True),
    sa.Column('frames_done', sa.Integer(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id', 'stage', 'index')
    )
    with op.batch_alter_table('job_parts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_parts_job_id'), ['job_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('job_parts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_parts_job_id'))

    op.drop_table('job_parts')
