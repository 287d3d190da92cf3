"""Shared fixtures: a store on every supported backend, and the sandbox."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from crmbridge.store import Store

POSTGRES_URL = os.environ.get("CRMBRIDGE_TEST_POSTGRES_URL")


def _postgres_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("CRMBRIDGE_TEST_POSTGRES_URL is not set")
    from crmbridge.store.engine import create_engine_for

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine_for(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield _postgres_schema_url(POSTGRES_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'crmbridge.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request) -> str:
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(database_url) -> Iterator[Store]:
    s = Store(database_url)
    try:
        yield s
    finally:
        s.close()


# Debian's chromium, driven by playwright (which cannot download its own browsers here or in CI).
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = ["--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture
def browser() -> Iterator[object]:
    """A headless chromium for the dashboard's browser tests; they skip where chromium is not installed."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (CI installs it in .ci/run)")
    from playwright.sync_api import sync_playwright

    args = CHROMIUM_ARGS + (["--no-sandbox"] if os.geteuid() == 0 else [])  # root has no user namespace sandbox
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield chromium
        finally:
            chromium.close()
