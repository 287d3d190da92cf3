"""Identity across sources: canonical ids, their member records, and a company name key.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canonical",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_canonical"),
    )
    op.create_table(
        "identities",
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("canonical_id", sa.BigInteger, nullable=False),
        sa.Column("linked_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("entity", "source", "source_id", name="pk_identities"),
    )
    op.create_index("ix_identities_entity_canonical_id", "identities", ["entity", "canonical_id"])
    with op.batch_alter_table("companies") as batch:
        batch.add_column(sa.Column("name_key", sa.String(255)))
        batch.create_index("ix_companies_name_key", ["name_key"])


def downgrade() -> None:
    with op.batch_alter_table("companies") as batch:
        batch.drop_index("ix_companies_name_key")
        batch.drop_column("name_key")
    op.drop_table("identities")
    op.drop_table("canonical")
