"""The canonical store: records by (source, source_id), their links and identities, cursors and run history.

SQLite is the embedded default; PostgreSQL (``postgresql://…``) is for production and for several
replicas sharing the work. A page of records, its archives and merges, and the checkpoint after it
are committed in one transaction, which is what makes every long job resumable after a crash.
"""

from __future__ import annotations

from crmbridge.store.cursors import Watermark
from crmbridge.store.engine import create_engine_for, normalise_url
from crmbridge.store.records import PageResult
from crmbridge.store.store import Store

__all__ = ["PageResult", "Store", "Watermark", "create_engine_for", "normalise_url"]
