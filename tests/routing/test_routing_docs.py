"""The routing examples are real: the shipped example and the documented files load and route as described."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from routing_helpers import ROOT, assign, lead, routing, seller

from crmbridge.routing import RoutingConfig, load_routing

DOC = (ROOT / "docs" / "routing.md").read_text(encoding="utf-8")
EXAMPLE = ROOT / "examples" / "routing.yaml"


def yaml_block_after(heading: str) -> str:
    section = DOC[DOC.index(heading):]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match, f"no YAML block after {heading!r}"
    return match.group(1)


LENA = seller("1", "Lena Vogt", email="lena.vogt@lumen.example")
TOMAS = seller("2", "Tomas Novak", email="tomas.novak@lumen.example")
SOFIA = seller("3", "Sofia Marin", email="sofia.marin@lumen.example")
SAM = seller("4", "Sam Okafor", email="sam.okafor@lumen.example")


def test_the_shipped_example_loads_and_is_referenced_from_the_docs() -> None:
    config = load_routing(EXAMPLE)
    assert [r.name for r in config.rules] == ["account-owner", "smb-demo-requests", "emea-enterprise",
                                              "na-enterprise", "emea", "north-america"]
    assert "examples/routing.yaml" in DOC


def test_the_shipped_example_routes_an_enterprise_lead_around_a_senior_on_leave() -> None:
    config = load_routing(EXAMPLE)
    summer = datetime(2025, 8, 6, 9, 0, tzinfo=UTC)  # Lena is on summer leave
    result = assign(config, lead(region="EMEA", employees=4200), [LENA, TOMAS, SOFIA, SAM], now=summer)
    assert (result.rule, result.owner_id) == ("emea-enterprise", "3")
    assert result.skipped[0].detail == "Lena Vogt is out of office 2025-08-04 to 2025-08-22 (summer leave)"


def test_the_complete_example_routes_as_the_docs_describe() -> None:
    config = routing(yaml_block_after("## A complete example"))
    big_emea = lead(region="EMEA", employees=4200)
    result = assign(config, big_emea, [LENA, TOMAS, SOFIA, SAM])
    assert (result.rule, result.owner_name) == ("emea-enterprise", "Sofia Marin")
    sofia_on_leave = yaml_block_after("## A complete example").replace(
        "  jordan.hayes@lumen.example:",
        "  sofia.marin@lumen.example: {out_of_office: [2025-03-03]}\n  jordan.hayes@lumen.example:")
    away = routing(sofia_on_leave)
    result = assign(away, big_emea, [LENA, TOMAS, SOFIA, SAM])
    assert result.rule == "emea" and result.owner_name in {"Lena Vogt", "Tomas Novak"}


def test_the_documented_default_is_the_built_in_default() -> None:
    documented = routing(yaml_block_after("## The built-in default"))
    built_in = RoutingConfig.default()
    assert documented.rules == built_in.rules
    assert documented.fallback == built_in.fallback
