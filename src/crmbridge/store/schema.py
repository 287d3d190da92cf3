"""Tables of the canonical store (SQLAlchemy Core): one table per entity, plus links, cursors and runs.

Rows are keyed by (source, source_id), never by e-mail. The canonical record lives in ``data`` as
JSON; the columns beside it exist to be indexed or compared. Times are epoch milliseconds (UTC) so
that SQLite and PostgreSQL order and compare them alike.
"""

from __future__ import annotations

import sqlalchemy as sa

from crmbridge.model import EntityType

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _entity_table(name: str, *extra: sa.Column | sa.Index) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(32), nullable=False),
        sa.Column("source_updated_ms", sa.BigInteger),
        sa.Column("archived", sa.Boolean, nullable=False, default=False),
        sa.Column("archived_ms", sa.BigInteger),
        sa.Column("merged_into", sa.String(128)),
        sa.Column("stored_ms", sa.BigInteger, nullable=False),
        *extra,
        sa.UniqueConstraint("source", "source_id"),
        sa.Index(None, "source", "stream", "archived"),
    )


persons = _entity_table(
    "persons",
    sa.Column("email_norm", sa.String(320)),
    sa.Index(None, "email_norm"),
)
companies = _entity_table(
    "companies",
    sa.Column("domain_norm", sa.String(255)),
    sa.Column("name_key", sa.String(255)),
    sa.Index(None, "domain_norm"),
    sa.Index(None, "name_key"),
)
# ``stored_ms`` indexed on activities and deals: the SLA tick reads what arrived since its last look.
activities = _entity_table(
    "activities",
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("occurred_ms", sa.BigInteger, nullable=False),
    sa.Index(None, "stored_ms"),
)
deals = _entity_table("deals", sa.Index(None, "stored_ms"))
owners = _entity_table("owners")
pipelines = _entity_table("pipelines")

ENTITY_TABLES: dict[EntityType, sa.Table] = {
    EntityType.PERSON: persons,
    EntityType.COMPANY: companies,
    EntityType.ACTIVITY: activities,
    EntityType.DEAL: deals,
    EntityType.OWNER: owners,
    EntityType.PIPELINE: pipelines,
}

# Associations between records of one source, materialised from the records' id lists so that
# "every activity of this person" is an indexed lookup rather than a scan of JSON.
links = sa.Table(
    "links",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("from_entity", sa.String(16), primary_key=True),
    sa.Column("from_id", sa.String(128), primary_key=True),
    sa.Column("to_entity", sa.String(16), primary_key=True),
    sa.Column("to_id", sa.String(128), primary_key=True),
    sa.Index(None, "source", "to_entity", "to_id", "from_entity"),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("stream", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

# Each CRM's custom-field catalog (label -> key) per stream, kept for a day so that a pass resolves
# its mapping's labels without asking: a cache, so not among the cursors.
field_catalogs = sa.Table(
    "field_catalogs",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("stream", sa.String(64), primary_key=True),
    sa.Column("fields", sa.Text, nullable=False),
    sa.Column("fetched_ms", sa.BigInteger, nullable=False),
)

# What ``crmbridge setup`` made in each CRM for a purpose (write-back: pipeline, stage, field keys).
provisioned = sa.Table(
    "provisioned",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("purpose", sa.String(32), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("command", sa.String(32), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("started_ms", sa.BigInteger, nullable=False),
    sa.Column("finished_ms", sa.BigInteger),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("stats", sa.Text, nullable=False, default="{}"),
    sa.Column("error", sa.Text),
    # Who runs it and when it last showed life: a run killed with -9 is seen as interrupted.
    sa.Column("holder", sa.String(128)),
    sa.Column("heartbeat_ms", sa.BigInteger),
    sa.Index(None, "source", "command", "started_ms"),
)

# Records that failed to map (or to write) more than once are parked here so the rest goes on.
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("stream", sa.String(64), primary_key=True),
    sa.Column("source_id", sa.String(128), primary_key=True),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("raw", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("first_seen_ms", sa.BigInteger, nullable=False),
    sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
)

# One row per canonical identity (a person or company as one entity across CRMs).
canonical = sa.Table(
    "canonical",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("entity", sa.String(16), nullable=False),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
)

# Which source record belongs to which canonical identity; at most one record per source each.
identities = sa.Table(
    "identities",
    metadata,
    sa.Column("entity", sa.String(16), primary_key=True),
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("source_id", sa.String(128), primary_key=True),
    sa.Column("canonical_id", sa.BigInteger, nullable=False),
    sa.Column("linked_ms", sa.BigInteger, nullable=False),
    sa.Index(None, "entity", "canonical_id"),
)

# The latest score of each canonical person; written only when its fingerprint changes.
scores = sa.Table(
    "scores",
    metadata,
    sa.Column("person_id", sa.BigInteger, primary_key=True, autoincrement=False),
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
    # Beside ``data`` (which holds them too) for the account roll-up, which reads them for every person.
    sa.Column("persona", sa.String(64)),
    sa.Column("responded", sa.Boolean),
    sa.Index(None, "stage"),
    sa.Index(None, "email"),
    sa.Index(None, "company_id"),
)

# Account (ABM) roll-ups, and their history, from which intent surges are detected.
account_scores = sa.Table(
    "account_scores",
    metadata,
    sa.Column("company_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("surge", sa.Boolean, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("scored_ms", sa.BigInteger, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)

account_history = sa.Table(
    "account_history",
    metadata,
    sa.Column("company_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at_ms", sa.BigInteger, primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
)

# What write-back last wrote to each CRM record (canonical field -> value as written), so a plan
# writes only what changed.
writeback_state = sa.Table(
    "writeback_state",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("object_type", sa.String(16), primary_key=True),
    sa.Column("source_id", sa.String(128), primary_key=True),
    sa.Column("person_id", sa.BigInteger),
    sa.Column("values", sa.Text, nullable=False),
    sa.Column("written_ms", sa.BigInteger, nullable=False),
)

# One row per hand-off of a sales-ready person, keyed by its deterministic idempotency key. A run
# claims a pending row with a lease before it touches the CRM; ``done`` rows name the deal.
handoffs = sa.Table(
    "handoffs",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.BigInteger, nullable=False),
    sa.Column("company_id", sa.BigInteger),
    sa.Column("target", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("person_ref", sa.String(128)),
    sa.Column("company_ref", sa.String(128)),
    sa.Column("deal_id", sa.String(128)),
    sa.Column("reused", sa.Boolean, nullable=False, default=False),
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
    # Recycling: a lead handed off again after nurture is a new generation (a new key and deal); the row
    # of the earlier generation keeps its history with ``recycled_ms`` set.
    sa.Column("generation", sa.Integer, nullable=False, default=1, server_default="1"),
    sa.Column("recycled_ms", sa.BigInteger),
    sa.Index(None, "person_id"),
    sa.Index(None, "status"),
    sa.Index(None, "owner_id", "done_ms"),
    sa.Index(None, "done_ms"),
)

# Notifications waiting to be delivered (or retried), one row per hand-off and channel.
notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("handoff_key", sa.String(64), primary_key=True),
    sa.Column("channel", sa.String(32), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_ms", sa.BigInteger, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("created_ms", sa.BigInteger, nullable=False),
    sa.Column("sent_ms", sa.BigInteger),
    sa.Index(None, "status", "next_ms"),
)

# Webhook events, stored before they are acknowledged and processed after. Unique on (source,
# event_id), so a redelivery is a no-op. ``status``: pending → claimed (by a worker, with a lease)
# → done; a failure goes to ``retry`` until ``next_ms``, and after too many attempts to
# ``quarantined`` (kept, visible, replayable).
inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("stream", sa.String(64), nullable=False),
    sa.Column("object_id", sa.String(128), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("occurred_ms", sa.BigInteger, nullable=False),
    sa.Column("received_ms", sa.BigInteger, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default="{}"),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_ms", sa.BigInteger, nullable=False),
    sa.Column("claimed_by", sa.String(128)),
    sa.Column("lease_until_ms", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("done_ms", sa.BigInteger),
    sa.UniqueConstraint("source", "event_id"),
    sa.Index(None, "status", "next_ms"),
)

# Response-time SLA. One clock per (hand-off, generation, policy, reassignment): it starts when the deal
# is handed to its owner and settles at the first qualifying touch (or acceptance, or a meeting). The
# tick claims clocks whose next ladder step is due (``next_ms``), so it costs the due clocks only.
# ``status``: open → met | missed (settled before / after the due instant) | reassigned | closed.
sla_clocks = sa.Table(
    "sla_clocks",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("handoff_key", sa.String(64), nullable=False),
    sa.Column("generation", sa.Integer, nullable=False, default=1),
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
    sa.Column("breached", sa.Boolean, nullable=False, default=False),
    sa.Column("settled_ms", sa.BigInteger),
    sa.Column("settled_by", sa.String(32)),
    sa.Column("business_minutes", sa.Float),
    sa.Column("wall_minutes", sa.Float),
    sa.Column("reassignments", sa.Integer, nullable=False, default=0),
    sa.Column("crm_status", sa.String(16)),
    sa.Column("next_step", sa.Integer, nullable=False, default=0),
    sa.Column("next_ms", sa.BigInteger),
    sa.Column("claimed_by", sa.String(128)),
    sa.Column("lease_until_ms", sa.BigInteger),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("handoff_key", "generation", "policy", "reassignments"),
    sa.Index(None, "status", "next_ms"),
    sa.Index(None, "person_id"),
    sa.Index(None, "started_ms"),
    # What a tick asks of the open clocks, each found by an index rather than a scan of them all: the
    # earliest start per status, the clocks to mark breached, the claim holders, the clocks of a deal.
    sa.Index(None, "status", "started_ms"),
    sa.Index(None, "status", "breached", "due_ms"),
    sa.Index(None, "status", "claimed_by"),
    sa.Index(None, "target", "deal_id"),
)

# Every ladder step taken (reminder, escalation, reassignment, surge notice), unique per clock and step:
# inserting the row is what entitles a process to send it, so a step goes out once across restarts
# and replicas; ``status`` says whether it was delivered.
sla_steps = sa.Table(
    "sla_steps",
    metadata,
    sa.Column("clock_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("due_ms", sa.BigInteger, nullable=False),
    sa.Column("taken_ms", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("recipient", sa.String(320)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("channels", sa.Text, nullable=False, default="[]"),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_ms", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Index(None, "status", "next_ms"),
)

# What became of a hand-off in the sales CRM (contacted, meeting booked, won, lost, rejected), with the
# seller's reason: stored once per kind and generation, then written back to the marketing CRM.
outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("handoff_key", sa.String(64), primary_key=True),
    sa.Column("generation", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("person_id", sa.BigInteger, nullable=False),
    sa.Column("deal_id", sa.String(128)),
    sa.Column("reason", sa.Text),
    sa.Column("at_ms", sa.BigInteger, nullable=False),
    sa.Column("recorded_ms", sa.BigInteger, nullable=False),
    sa.Index(None, "person_id"),
)

# Account intent surges noticed by the ABM roll-up, one row per company and surge; the owner is told once.
surges = sa.Table(
    "surges",
    metadata,
    sa.Column("company_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at_ms", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("score_before", sa.Float, nullable=False),
    sa.Column("score_now", sa.Float, nullable=False),
    sa.Column("owner_id", sa.String(128)),
    sa.Column("detail", sa.Text, nullable=False, default="{}"),
    sa.Column("notified_ms", sa.BigInteger),
)

# What scoring reads of each live activity, filed under each person record it is linked to
# (store/features.py keeps it with every write): a re-score reads a person's activities as one text,
# without parsing their records. Clustered by person on SQLite (no rowid), as it is read.
activity_facts = sa.Table(
    "activity_facts",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("person_id", sa.String(128), primary_key=True),
    sa.Column("activity_id", sa.String(128), primary_key=True),
    sa.Column("fact", sa.Text, nullable=False),
    sa.Index(None, "source", "activity_id"),
    sqlite_with_rowid=False,
)

# How many times the facts filed under each person record changed (store/features.py counts every
# change): with the record's content hash, what says a person's digest below is still theirs.
fact_versions = sa.Table(
    "fact_versions",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("person_id", sa.String(128), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Each scored person's digest (what the scoring engine reads of them, time left out), with what it was
# made from: the model and merge policy (``model``), the member records' content hashes and fact
# versions (``members``), and ``context``: the company's stamp and what a score row takes from the
# golden record. A re-score whose stamps all match scores the digest instead of reading the records
# again (crmbridge/rescore.py).
score_inputs = sa.Table(
    "score_inputs",
    metadata,
    sa.Column("person_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("members", sa.Text, nullable=False),
    sa.Column("context", sa.Text, nullable=False),
    sa.Column("digest", sa.Text, nullable=False),
)
