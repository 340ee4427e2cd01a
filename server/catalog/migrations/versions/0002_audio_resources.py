"""audio resources of custom acoustic models

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 22:06:01.778946
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audio_resources',
    sa.Column('custom_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('content_type', sa.String(length=128), nullable=False),
    sa.Column('contained_content_type', sa.String(length=128), nullable=True),
    sa.Column('transcript', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.Column('items', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['custom_id'], ['custom_models.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('custom_id', 'name')
    )


def downgrade() -> None:
    op.drop_table('audio_resources')
