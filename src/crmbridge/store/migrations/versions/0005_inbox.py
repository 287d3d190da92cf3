"""The webhook inbox, and run heartbeats (so a killed run shows as interrupted).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("occurred_ms", sa.BigInteger, nullable=False),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_ms", sa.BigInteger, nullable=False),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("lease_until_ms", sa.BigInteger),
        sa.Column("error", sa.Text),
        sa.Column("done_ms", sa.BigInteger),
        sa.PrimaryKeyConstraint("id", name="pk_inbox"),
        sa.UniqueConstraint("source", "event_id", name="uq_inbox_source_event_id"),
    )
    op.create_index("ix_inbox_status_next_ms", "inbox", ["status", "next_ms"])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("holder", sa.String(128)))
        batch.add_column(sa.Column("heartbeat_ms", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_ms")
        batch.drop_column("holder")
    op.drop_index("ix_inbox_status_next_ms", table_name="inbox")
    op.drop_table("inbox")
