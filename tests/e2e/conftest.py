"""End-to-end fixtures: a HubSpot sandbox with 5,000 contacts and one backfill of it to copy from."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crmbridge.connectors import SANDBOX_TOKEN, Connector, SandboxOptions, plugin
from crmbridge.mapping import SourceMapping
from crmbridge.sandbox import SandboxServer
from crmbridge.store import Store
from crmbridge.sync import RunReport, Syncer

ROOT = Path(__file__).resolve().parents[2]
HUBSPOT_MAPPING = ROOT / "mappings" / "hubspot.yaml"
TIME_SCALE = 100.0


def hubspot_connector(server: SandboxServer, **options: Any) -> Connector:
    fast = {"backoff_base_seconds": 0.02, "backoff_max_seconds": 0.2, "max_attempts": 12}
    return plugin("hubspot").sandbox_connector(server.base_url("hubspot"), time_scale=TIME_SCALE,
                                               **{**fast, **options})


def syncer(server: SandboxServer, store: Store, **options: Any) -> Syncer:
    return Syncer(store, hubspot_connector(server, **options), SourceMapping.load(HUBSPOT_MAPPING))


# A fixed anchor keeps the seeded world identical between sandboxes started on different days.
ANCHOR = "2026-11-01T00:00:00Z"


# A token that tests check never leaks into output; the sandboxes accept it beside their default one.
SECRET_TOKEN = "pat-test-secret-0001"


def sandbox_options(contacts: int = 5000, seed: int = 7, **extra: Any) -> SandboxOptions:
    return SandboxOptions(seed=seed, contacts=contacts, time_scale=TIME_SCALE, extra={"anchor": ANCHOR, **extra},
                          tokens=(SANDBOX_TOKEN, SECRET_TOKEN))


@pytest.fixture(scope="session")
def hubspot() -> Iterator[SandboxServer]:
    with SandboxServer(sandbox_options(stall_seconds=5), ["hubspot"]) as server:
        yield server


@dataclass
class Backfilled:
    path: Path
    report: RunReport


@pytest.fixture(scope="session")
def backfilled(hubspot: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Backfilled:
    path = tmp_path_factory.mktemp("backfill") / "store.db"
    with Store(f"sqlite:///{path}") as store:
        report = syncer(hubspot, store).backfill()
    return Backfilled(path, report)


@pytest.fixture
def store_copy(backfilled: Backfilled, tmp_path: Path) -> Iterator[Store]:
    """A private copy of the backfilled store, so each test may change it."""
    target = tmp_path / "store.db"
    shutil.copy(backfilled.path, target)
    with Store(f"sqlite:///{target}") as store:
        yield store


@pytest.fixture
def restore(hubspot: SandboxServer) -> Iterator[None]:
    """Put the sandbox back to its seeded state after a test that changes it."""
    yield
    hubspot.vendor("hubspot").reset()
