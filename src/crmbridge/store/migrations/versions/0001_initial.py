"""Initial store: entity tables, links, cursors, runs, quarantine.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _entity(name: str, *extra: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(32), nullable=False),
        sa.Column("source_updated_ms", sa.BigInteger),
        sa.Column("archived", sa.Boolean, nullable=False),
        sa.Column("archived_ms", sa.BigInteger),
        sa.Column("merged_into", sa.String(128)),
        sa.Column("stored_ms", sa.BigInteger, nullable=False),
        *extra,
        sa.PrimaryKeyConstraint("id", name=f"pk_{name}"),
        sa.UniqueConstraint("source", "source_id", name=f"uq_{name}_source_source_id"),
    )
    op.create_index(f"ix_{name}_source_stream_archived", name, ["source", "stream", "archived"])


def upgrade() -> None:
    _entity("persons", sa.Column("email_norm", sa.String(320)))
    op.create_index("ix_persons_email_norm", "persons", ["email_norm"])
    _entity("companies", sa.Column("domain_norm", sa.String(255)))
    op.create_index("ix_companies_domain_norm", "companies", ["domain_norm"])
    _entity("activities", sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("occurred_ms", sa.BigInteger, nullable=False))
    for name in ("deals", "owners", "pipelines"):
        _entity(name)

    op.create_table(
        "links",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("from_entity", sa.String(16), nullable=False),
        sa.Column("from_id", sa.String(128), nullable=False),
        sa.Column("to_entity", sa.String(16), nullable=False),
        sa.Column("to_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("source", "from_entity", "from_id", "to_entity", "to_id", name="pk_links"),
    )
    op.create_index("ix_links_source_to_entity_to_id_from_entity", "links",
                    ["source", "to_entity", "to_id", "from_entity"])
    op.create_table(
        "cursors",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("source", "stream", "kind", name="pk_cursors"),
    )
    op.create_table(
        "runs",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("command", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("started_ms", sa.BigInteger, nullable=False),
        sa.Column("finished_ms", sa.BigInteger),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stats", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_source_command_started_ms", "runs", ["source", "command", "started_ms"])
    op.create_table(
        "quarantine",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("first_seen_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("source", "stream", "source_id", name="pk_quarantine"),
    )


def downgrade() -> None:
    for name in ("quarantine", "runs", "cursors", "links", "pipelines", "owners", "deals",
                 "activities", "companies", "persons"):
        op.drop_table(name)
