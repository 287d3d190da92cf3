"""Scoring facts of activities, by person record, derived from the activities already stored.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activity_facts",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("activity_id", sa.String(128), nullable=False),
        sa.Column("fact", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("source", "person_id", "activity_id", name="pk_activity_facts"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_activity_facts_source_activity_id", "activity_facts", ["source", "activity_id"])
    from crmbridge.store.features import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table("activity_facts")
