"""operator console: console-side conversation ids and resolved gap groups

Revision ID: 0006
Revises: 0005
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("console_id", sa.String(length=32), nullable=True))
    # Existing conversations get their console id now, so the index can be unique at once.
    sessions = sa.table("sessions", sa.column("id", sa.String), sa.column("console_id", sa.String))
    conn = op.get_bind()
    for (sid,) in conn.execute(sa.select(sessions.c.id)).all():
        conn.execute(
            sessions.update().where(sessions.c.id == sid).values(console_id=secrets.token_hex(8))
        )
    with op.batch_alter_table("sessions") as batch:
        batch.create_index("ix_sessions_console_id", ["console_id"], unique=True)
    op.create_table(
        "resolved_gaps",
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_id"),
    )


def downgrade() -> None:
    op.drop_table("resolved_gaps")
    # Not in batch mode: on SQLite that rebuilds `sessions` (copy, drop, rename), and dropping
    # the table with foreign keys on would cascade to every message. SQLite 3.35 and later drop
    # a column in place.
    op.drop_index("ix_sessions_console_id", table_name="sessions")
    op.drop_column("sessions", "console_id")
