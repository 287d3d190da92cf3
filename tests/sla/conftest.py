"""SLA tests import their world builders from sla_helpers.py next to them."""

from __future__ import annotations

import sys
from pathlib import Path

# The suite imports test files by path (--import-mode=importlib); this makes sla_helpers importable.
sys.path.insert(0, str(Path(__file__).parent))
