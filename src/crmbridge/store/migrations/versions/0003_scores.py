"""Scores of canonical people and accounts, and account score history.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scores",
        sa.Column("person_id", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("total", sa.Float, nullable=False),
        sa.Column("fit", sa.Float, nullable=False),
        sa.Column("engagement", sa.Float, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("proposed", sa.String(16), nullable=False),
        sa.Column("disqualified", sa.Text),
        sa.Column("hand_raise", sa.Boolean, nullable=False),
        sa.Column("company_id", sa.BigInteger),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("as_of_ms", sa.BigInteger, nullable=False),
        sa.Column("scored_ms", sa.BigInteger, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("person_id", name="pk_scores"),
    )
    op.create_index("ix_scores_stage", "scores", ["stage"])
    op.create_index("ix_scores_email", "scores", ["email"])
    op.create_index("ix_scores_company_id", "scores", ["company_id"])
    op.create_table(
        "account_scores",
        sa.Column("company_id", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("surge", sa.Boolean, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("scored_ms", sa.BigInteger, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("company_id", name="pk_account_scores"),
    )
    op.create_table(
        "account_history",
        sa.Column("company_id", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("company_id", "at_ms", name="pk_account_history"),
    )


def downgrade() -> None:
    op.drop_table("account_history")
    op.drop_table("account_scores")
    op.drop_table("scores")
