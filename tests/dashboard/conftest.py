"""Dashboard tests import their builders from dashboard_helpers.py next to them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The suite imports test files by path (--import-mode=importlib); this makes dashboard_helpers importable.
sys.path.insert(0, str(Path(__file__).parent))

from dashboard_helpers import MutableSource, snapshot


@pytest.fixture
def source() -> MutableSource:
    return MutableSource(snapshot())
