"""Field catalogs and write-back setup leave the cursors table for tables of their own.

Revision ID: 0008
Revises: 0007
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "field_catalogs",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("fetched_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("source", "stream", name="pk_field_catalogs"),
    )
    op.create_table(
        "provisioned",
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("source", "purpose", name="pk_provisioned"),
    )
    conn = op.get_bind()
    cursors = sa.table("cursors", sa.column("source"), sa.column("stream"), sa.column("kind"), sa.column("value"),
                       sa.column("updated_ms"))
    catalogs = sa.table("field_catalogs", sa.column("source"), sa.column("stream"), sa.column("fields"),
                        sa.column("fetched_ms"))
    provisioned = sa.table("provisioned", sa.column("source"), sa.column("purpose"), sa.column("value"),
                           sa.column("updated_ms"))
    rows = conn.execute(sa.select(cursors.c.source, cursors.c.stream, cursors.c.value, cursors.c.updated_ms)
                        .where(cursors.c.kind == "catalog")).all()
    for source, stream, value, updated in rows:
        cached = json.loads(value)
        conn.execute(sa.insert(catalogs).values(source=source, stream=stream,
                                                fields=json.dumps(cached.get("fields") or {}),
                                                fetched_ms=int(cached.get("fetched_ms") or updated)))
    setups = conn.execute(sa.select(cursors.c.source, cursors.c.value, cursors.c.updated_ms).where(
        cursors.c.stream == "_writeback", cursors.c.kind == "setup")).all()
    for source, value, updated in setups:
        conn.execute(sa.insert(provisioned).values(source=source, purpose="writeback", value=value,
                                                   updated_ms=updated))
    conn.execute(sa.delete(cursors).where(sa.or_(cursors.c.kind == "catalog", sa.and_(
        cursors.c.stream == "_writeback", cursors.c.kind == "setup"))))


def downgrade() -> None:
    op.drop_table("provisioned")
    op.drop_table("field_catalogs")
