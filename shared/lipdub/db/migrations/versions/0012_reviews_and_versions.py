"""shot reviews (a reviewer's decision per shot, with its reason and severity) and job
versions (a job re-running some shots of another: its base job and version number)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 13:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('shot_reviews',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('job_id', sa.String(length=32), nullable=False),
    sa.Column('shot', sa.Integer(), nullable=False),
    sa.Column('face', sa.String(length=64), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('severity', sa.String(length=16), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('carried_from', sa.String(length=32), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('shot_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shot_reviews_job_id'), ['job_id'], unique=False)
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('base_job_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1',
                                      nullable=False))
        batch_op.create_index(batch_op.f('ix_jobs_base_job_id'), ['base_job_id'], unique=False)
        batch_op.create_foreign_key('fk_jobs_base_job_id_jobs', 'jobs', ['base_job_id'],
                                    ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint('fk_jobs_base_job_id_jobs', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_jobs_base_job_id'))
        batch_op.drop_column('version')
        batch_op.drop_column('base_job_id')
    with op.batch_alter_table('shot_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shot_reviews_job_id'))
    op.drop_table('shot_reviews')
