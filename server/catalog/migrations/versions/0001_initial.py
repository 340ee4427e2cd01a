"""initial catalog: base versions, custom models, versions, corpora, words, jobs

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 21:53:31.125822
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('base_versions',
    sa.Column('version', sa.String(length=200), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('locale', sa.String(length=32), nullable=False),
    sa.Column('rate_hz', sa.Integer(), nullable=False),
    sa.Column('created', sa.Date(), nullable=False),
    sa.Column('adaptation_deadline', sa.Date(), nullable=False),
    sa.Column('transcription_deadline', sa.Date(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('registered', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('version')
    )
    with op.batch_alter_table('base_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_base_versions_model'), ['model'], unique=False)

    op.create_table('custom_models',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('base_model_name', sa.String(length=200), nullable=False),
    sa.Column('language', sa.String(length=32), nullable=False),
    sa.Column('dialect', sa.String(length=32), nullable=False),
    sa.Column('base_version', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('warnings', sa.Text(), nullable=True),
    sa.Column('customization_weight', sa.Float(), nullable=True),
    sa.Column('job', sa.String(length=16), nullable=True),
    sa.Column('job_options', sa.JSON(), nullable=True),
    sa.Column('dirty', sa.Boolean(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('updated', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('owner', 'kind', 'name', name='uq_custom_models_owner_kind_name')
    )
    with op.batch_alter_table('custom_models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_custom_models_owner'), ['owner'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('updated', sa.DateTime(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('audio_path', sa.Text(), nullable=True),
    sa.Column('user_token', sa.String(length=256), nullable=True),
    sa.Column('results', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_owner'), ['owner'], unique=False)

    op.create_table('corpora',
    sa.Column('custom_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('total_words', sa.Integer(), nullable=False),
    sa.Column('out_of_vocabulary_words', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['custom_id'], ['custom_models.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('custom_id', 'name')
    )
    op.create_table('custom_versions',
    sa.Column('custom_id', sa.String(length=36), nullable=False),
    sa.Column('base_version', sa.String(length=200), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('transcription_deadline', sa.Date(), nullable=False),
    sa.Column('artifact', sa.Text(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['custom_id'], ['custom_models.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('custom_id', 'base_version')
    )
    op.create_table('words',
    sa.Column('custom_id', sa.String(length=36), nullable=False),
    sa.Column('word', sa.String(length=256), nullable=False),
    sa.Column('sounds_like', sa.JSON(), nullable=False),
    sa.Column('display_as', sa.String(length=256), nullable=True),
    sa.Column('source', sa.JSON(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['custom_id'], ['custom_models.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('custom_id', 'word')
    )


def downgrade() -> None:
    op.drop_table('words')
    op.drop_table('custom_versions')
    op.drop_table('corpora')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_owner'))

    op.drop_table('jobs')
    with op.batch_alter_table('custom_models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_custom_models_owner'))

    op.drop_table('custom_models')
    with op.batch_alter_table('base_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_base_versions_model'))

    op.drop_table('base_versions')
