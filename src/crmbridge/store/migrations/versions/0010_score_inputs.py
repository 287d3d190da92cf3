"""Scoring digests beside the scores, and the fact versions that say whether one still holds.

Both start empty: the first re-score after the upgrade reads every person's records, as before, and
keeps their digests; later ones score the digests of the people whose records did not change.

On PostgreSQL, person and account scores leave room in each page (fillfactor 70): a daily re-score
rewrites a fifth of them, and a new version that fits beside the old one is written without touching
the indexes (a heap-only update), which measured a tenth off a daily re-score. Pages written from now
on get it; ``VACUUM FULL scores`` gives it to the rest.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fact_versions",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("source", "person_id", name="pk_fact_versions"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "score_inputs",
        sa.Column("person_id", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("members", sa.Text, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("digest", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("person_id", name="pk_score_inputs"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE scores SET (fillfactor = 70)")
        op.execute("ALTER TABLE account_scores SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE scores RESET (fillfactor)")
        op.execute("ALTER TABLE account_scores RESET (fillfactor)")
    op.drop_table("score_inputs")
    op.drop_table("fact_versions")
