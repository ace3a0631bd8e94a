"""job claims: how often a worker took an answer job

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("answer_jobs") as batch:
        batch.add_column(sa.Column("claims", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("answer_jobs") as batch:
        batch.drop_column("claims")
