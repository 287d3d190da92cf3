"""The seeded world speaks the canonical vocabularies: what it holds survives the shipped mappings and
crmbridge's own rules unchanged, so a sandbox figure never rests on a value real data could not have."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from crmbridge.connectors import plugins
from crmbridge.identity import FREE_MAIL_DOMAINS
from crmbridge.sandbox import world

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def _targets(source: str, stream: str, field: str) -> set[str]:
    """The canonical values a shipped mapping turns a field into (its value table and default)."""
    spec: dict[str, Any] = yaml.safe_load((MAPPINGS / f"{source}.yaml").read_text())["streams"][stream]["fields"][field]
    return set((spec.get("values") or {}).values()) | ({spec["default"]} if "default" in spec else set())


def test_free_mail_in_the_world_is_free_mail_to_identity() -> None:
    assert set(world.FREE_MAIL_DOMAINS) <= FREE_MAIL_DOMAINS


def test_the_world_industries_are_what_every_shipped_mapping_produces() -> None:
    assert set(world.INDUSTRIES) <= _targets("hubspot", "companies", "industry")
    assert set(world.INDUSTRIES) <= _targets("pipedrive", "organizations", "industry")


def test_seniorities_and_departments_are_what_a_label_mapping_produces() -> None:
    assert set(world.SENIORITIES) == _targets("pipedrive", "persons", "seniority")
    assert set(world.DEPARTMENTS) == _targets("pipedrive", "persons", "department")


def test_the_world_names_no_connector_among_the_technologies_companies_run() -> None:
    assert not {name.lower() for name in plugins()} & set(world.TECHNOLOGIES)
    assert len(set(world.TECHNOLOGIES)) == len(world.TECHNOLOGIES)
