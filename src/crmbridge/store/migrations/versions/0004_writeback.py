"""Write-back state, hand-offs of sales-ready leads, and the notification outbox.

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
    op.create_table(
        "writeback_state",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("object_type", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("person_id", sa.BigInteger),
        sa.Column("values", sa.Text, nullable=False),
        sa.Column("written_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("source", "object_type", "source_id", name="pk_writeback_state"),
    )
    op.create_table(
        "handoffs",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("person_id", sa.BigInteger, nullable=False),
        sa.Column("company_id", sa.BigInteger),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("person_ref", sa.String(128)),
        sa.Column("company_ref", sa.String(128)),
        sa.Column("deal_id", sa.String(128)),
        sa.Column("reused", sa.Boolean, nullable=False),
        sa.Column("owner_id", sa.String(128)),
        sa.Column("mode", sa.String(16)),
        sa.Column("rule", sa.String(64)),
        sa.Column("reason", sa.Text),
        sa.Column("title", sa.Text),
        sa.Column("summary", sa.Text),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("lease_until_ms", sa.BigInteger),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("done_ms", sa.BigInteger),
        sa.PrimaryKeyConstraint("key", name="pk_handoffs"),
    )
    op.create_index("ix_handoffs_person_id", "handoffs", ["person_id"])
    op.create_index("ix_handoffs_status", "handoffs", ["status"])
    op.create_index("ix_handoffs_owner_id_done_ms", "handoffs", ["owner_id", "done_ms"])
    op.create_table(
        "notifications",
        sa.Column("handoff_key", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_ms", sa.BigInteger, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("sent_ms", sa.BigInteger),
        sa.PrimaryKeyConstraint("handoff_key", "channel", name="pk_notifications"),
    )
    op.create_index("ix_notifications_status_next_ms", "notifications", ["status", "next_ms"])


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("handoffs")
    op.drop_table("writeback_state")
