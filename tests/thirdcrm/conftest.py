"""Install Tern, a third CRM defined here, the way a third-party package is installed: a distribution on
``sys.path`` whose ``entry_points.txt`` registers it in the ``crmbridge.connectors`` group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbridge.connectors import plugins

PACKAGE_ROOT = Path(__file__).parent / "tern"


@pytest.fixture
def tern_installed(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Tern registered as an installed distribution for one test; yields the folder of its mapping and
    scoring files. Plugin discovery is cached, so the cache is emptied before and after."""
    site = tmp_path_factory.mktemp("site")
    dist = site / "crmbridge_tern-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: crmbridge-tern\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[crmbridge.connectors]\ntern = crmbridge_tern.plugin:plugin\n")
    monkeypatch.syspath_prepend(str(PACKAGE_ROOT))
    monkeypatch.syspath_prepend(str(site))
    plugins.cache_clear()
    try:
        yield PACKAGE_ROOT
    finally:
        plugins.cache_clear()
