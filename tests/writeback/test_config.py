"""The hand-off configuration: targets by segment, and mistakes reported with file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmbridge.errors import ConfigError
from crmbridge.writeback.config import HandoffConfig, load_handoff_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "handoff.yaml"
    path.write_text(text)
    return path


def test_without_a_file_sales_ready_leads_go_to_pipedrive_when_it_is_configured() -> None:
    config = load_handoff_config(None)
    assert config.stage == "Sales-ready leads"
    assert config.target_for({}, ["hubspot", "pipedrive"]) == ("pipedrive", "default target")
    assert config.target_for({}, ["hubspot"]) == ("hubspot", "default target")


def test_segments_route_by_country_and_size_before_the_default(tmp_path: Path) -> None:
    config = load_handoff_config(write(tmp_path, """
target: pipedrive
segments:
  - name: enterprise-na
    when: {country: [US, CA], min_employees: 1000}
    target: hubspot
"""))
    assert config.target_for({"country": "us", "employees": 5000}, ["hubspot", "pipedrive"]) == (
        "hubspot", "segment enterprise-na")
    assert config.target_for({"country": "US", "employees": 50}, ["hubspot", "pipedrive"])[0] == "pipedrive"
    assert config.target_for({"country": None, "employees": 5000}, ["hubspot", "pipedrive"])[0] == "pipedrive"


def test_an_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "stage: Sales-ready leads\nsegments:\n  - name: x\n    target: hubspot\n    whne: {}\n")
    with pytest.raises(ConfigError) as caught:
        load_handoff_config(path)
    text = str(caught.value)
    assert str(path) in text and ":5" in text and "segments.0.whne" in text


def test_a_title_with_an_unknown_placeholder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_handoff_config(write(tmp_path, "title: '{company} {budget}'\n"))
    assert "title" in str(caught.value) and "budget" in str(caught.value)


def test_a_target_that_is_not_a_configured_source_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        HandoffConfig(target="salesforce").check_sources(["hubspot", "pipedrive"], "handoff.yaml")
    assert "salesforce" in str(caught.value) and "handoff.yaml" in str(caught.value)


def test_routing_files_are_found_next_to_the_configuration(tmp_path: Path) -> None:
    config = load_handoff_config(write(tmp_path, "routing: routing.yaml\n"))
    assert config.routing == (tmp_path / "routing.yaml").resolve()


def test_a_date_that_does_not_exist_names_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_handoff_config(write(tmp_path, "stage: Sales-ready leads\nsince: 2025-02-30\n"))
    assert ":2" in str(caught.value) and "since" in str(caught.value)
