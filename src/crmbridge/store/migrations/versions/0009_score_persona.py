"""A person score's persona and whether they responded, as columns beside its JSON (the account roll-up
reads them for every person), filled in from the JSON of the scores already stored.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("persona", sa.String(64)))
        batch.add_column(sa.Column("responded", sa.Boolean))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE scores SET persona = CAST(data AS json) ->> 'persona', "
                   "responded = CAST(CAST(data AS json) ->> 'responded' AS boolean)")
    else:
        op.execute("UPDATE scores SET persona = json_extract(data, '$.persona'), "
                   "responded = json_extract(data, '$.responded')")


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("responded")
        batch.drop_column("persona")
