"""Routing tests import their builders from routing_helpers.py next to them."""

from __future__ import annotations

import sys
from pathlib import Path

# The suite imports test files by path (--import-mode=importlib); this makes routing_helpers importable.
sys.path.insert(0, str(Path(__file__).parent))
