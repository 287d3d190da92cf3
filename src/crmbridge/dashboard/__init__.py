"""The sales manager's board: open hand-offs against their response-time SLA, owner figures, the funnel and
account surges, as an HTML page that refreshes itself and as JSON, behind the dashboard token.

The daemon mounts it with ``app.add_routes(dashboard_routes(source, token))``; the SLA engine supplies the
``SnapshotSource``.
"""

from crmbridge.dashboard.model import (
    Funnel,
    HandoffRow,
    OwnerFigures,
    Snapshot,
    SnapshotSource,
    Status,
    SurgeRow,
    as_json,
    colour,
    status_of,
    status_text,
)
from crmbridge.dashboard.views import TOKEN_SETTING, Dashboard, dashboard_routes

__all__ = [
    "TOKEN_SETTING",
    "Dashboard",
    "Funnel",
    "HandoffRow",
    "OwnerFigures",
    "Snapshot",
    "SnapshotSource",
    "Status",
    "SurgeRow",
    "as_json",
    "colour",
    "dashboard_routes",
    "status_of",
    "status_text",
]
