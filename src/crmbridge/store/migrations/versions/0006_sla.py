"""Response-time SLA clocks and their ladder steps, hand-off outcomes, account surges, hand-off generations.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sla_clocks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("handoff_key", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("measure", sa.String(32), nullable=False),
        sa.Column("person_id", sa.BigInteger, nullable=False),
        sa.Column("company_id", sa.BigInteger),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("deal_id", sa.String(128)),
        sa.Column("owner_id", sa.String(128)),
        sa.Column("owner_label", sa.Text),
        sa.Column("owner_email", sa.String(320)),
        sa.Column("team", sa.String(64)),
        sa.Column("source", sa.String(64)),
        sa.Column("calendar", sa.String(64)),
        sa.Column("started_ms", sa.BigInteger, nullable=False),
        sa.Column("risk_ms", sa.BigInteger, nullable=False),
        sa.Column("due_ms", sa.BigInteger, nullable=False),
        sa.Column("budget_minutes", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("breached", sa.Boolean, nullable=False),
        sa.Column("settled_ms", sa.BigInteger),
        sa.Column("settled_by", sa.String(32)),
        sa.Column("business_minutes", sa.Float),
        sa.Column("wall_minutes", sa.Float),
        sa.Column("reassignments", sa.Integer, nullable=False),
        sa.Column("crm_status", sa.String(16)),
        sa.Column("next_step", sa.Integer, nullable=False),
        sa.Column("next_ms", sa.BigInteger),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("lease_until_ms", sa.BigInteger),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sla_clocks"),
        sa.UniqueConstraint("handoff_key", "generation", "policy", "reassignments",
                            name="uq_sla_clocks_handoff_key_generation_policy_reassignments"),
    )
    op.create_index("ix_sla_clocks_status_next_ms", "sla_clocks", ["status", "next_ms"])
    op.create_index("ix_sla_clocks_person_id", "sla_clocks", ["person_id"])
    op.create_index("ix_sla_clocks_started_ms", "sla_clocks", ["started_ms"])
    op.create_index("ix_sla_clocks_status_started_ms", "sla_clocks", ["status", "started_ms"])
    op.create_index("ix_sla_clocks_status_breached_due_ms", "sla_clocks", ["status", "breached", "due_ms"])
    op.create_index("ix_sla_clocks_status_claimed_by", "sla_clocks", ["status", "claimed_by"])
    op.create_index("ix_sla_clocks_target_deal_id", "sla_clocks", ["target", "deal_id"])
    op.create_index("ix_activities_stored_ms", "activities", ["stored_ms"])
    op.create_index("ix_deals_stored_ms", "deals", ["stored_ms"])
    op.create_table(
        "sla_steps",
        sa.Column("clock_id", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("seq", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("due_ms", sa.BigInteger, nullable=False),
        sa.Column("taken_ms", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(320)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("channels", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_ms", sa.BigInteger),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("clock_id", "kind", "seq", name="pk_sla_steps"),
    )
    op.create_index("ix_sla_steps_status_next_ms", "sla_steps", ["status", "next_ms"])
    op.create_table(
        "outcomes",
        sa.Column("handoff_key", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("person_id", sa.BigInteger, nullable=False),
        sa.Column("deal_id", sa.String(128)),
        sa.Column("reason", sa.Text),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("recorded_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("handoff_key", "generation", "kind", name="pk_outcomes"),
    )
    op.create_index("ix_outcomes_person_id", "outcomes", ["person_id"])
    op.create_table(
        "surges",
        sa.Column("company_id", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("at_ms", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("score_before", sa.Float, nullable=False),
        sa.Column("score_now", sa.Float, nullable=False),
        sa.Column("owner_id", sa.String(128)),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("notified_ms", sa.BigInteger),
        sa.PrimaryKeyConstraint("company_id", "at_ms", name="pk_surges"),
    )
    with op.batch_alter_table("handoffs") as batch:
        batch.add_column(sa.Column("generation", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("recycled_ms", sa.BigInteger))
    op.create_index("ix_handoffs_done_ms", "handoffs", ["done_ms"])


def downgrade() -> None:
    op.drop_index("ix_handoffs_done_ms", table_name="handoffs")
    with op.batch_alter_table("handoffs") as batch:
        batch.drop_column("recycled_ms")
        batch.drop_column("generation")
    op.drop_table("surges")
    op.drop_index("ix_outcomes_person_id", table_name="outcomes")
    op.drop_table("outcomes")
    op.drop_index("ix_sla_steps_status_next_ms", table_name="sla_steps")
    op.drop_table("sla_steps")
    op.drop_index("ix_deals_stored_ms", table_name="deals")
    op.drop_index("ix_activities_stored_ms", table_name="activities")
    op.drop_index("ix_sla_clocks_target_deal_id", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_status_claimed_by", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_status_breached_due_ms", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_status_started_ms", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_started_ms", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_person_id", table_name="sla_clocks")
    op.drop_index("ix_sla_clocks_status_next_ms", table_name="sla_clocks")
    op.drop_table("sla_clocks")
