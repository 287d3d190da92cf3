"""Settings come from CRMBRIDGE_* variables; a bad one is named in the error."""

from __future__ import annotations

import pytest

from crmbridge.errors import ConfigError
from crmbridge.settings import load_settings


def test_sources_are_a_comma_separated_list(monkeypatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SOURCES", "hubspot, pipedrive")
    assert load_settings().sources == ["hubspot", "pipedrive"]


def test_a_single_source_needs_no_brackets(monkeypatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SOURCES", "pipedrive")
    assert load_settings().sources == ["pipedrive"]


def test_a_bad_value_names_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_HTTP_PORT", "eighty")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.key == "CRMBRIDGE_HTTP_PORT"


def test_the_default_store_is_an_embedded_sqlite_file(monkeypatch) -> None:
    monkeypatch.delenv("CRMBRIDGE_DATABASE_URL", raising=False)
    assert load_settings().database_url.startswith("sqlite:///")
