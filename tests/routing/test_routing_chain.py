"""The routing chain rule by rule: who gets the lead, which rule decided, and the reason a manager reads."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from routing_helpers import NOW, assign, lead, routing, seller

from crmbridge.model import Owner
from crmbridge.routing import MemoryLedger, OwnerRouter, RoutingConfig, Seller, SkipCause

DANA = seller("101", "Dana Kim")
ERIK = seller("102", "Erik Lund")
FAYE = seller("103", "Faye Osei")
TEAM = [DANA, ERIK, FAYE]


def ledger_with(**counts: int) -> MemoryLedger:
    """A ledger where seller id ``_<id>`` had ``n`` assignments an hour ago."""
    ledger = MemoryLedger()
    for key, n in counts.items():
        for _ in range(n):
            ledger.record(key.lstrip("_"), NOW - timedelta(hours=1))
    return ledger


# -- account owner ------------------------------------------------------------------------------------


def test_existing_account_owner_keeps_the_account() -> None:
    result = assign(RoutingConfig.default(), lead(company_owner_id="102"), TEAM)
    assert (result.owner_id, result.mode, result.rule) == ("102", "owner", "account-owner")
    assert result.reason == "account owner Erik Lund keeps Acme (acme.example)"
    assert result.owner_name == "Erik Lund"
    assert result.skipped == ()


def test_deactivated_account_owner_falls_through_to_round_robin() -> None:
    gone = seller("102", "Erik Lund", active=False)
    result = assign(RoutingConfig.default(), lead(company_owner_id="102"), [DANA, gone, FAYE])
    assert result.rule == "round-robin"
    assert result.owner_id in {"101", "103"}
    first = result.skipped[0]
    assert (first.rule, first.cause, first.seller_id) == ("account-owner", SkipCause.INACTIVE, "102")
    assert first.detail == ("account owner Erik Lund is deactivated in the CRM; "
                            "Acme (acme.example) goes to the next rule")


def test_account_owner_who_is_not_a_crm_user_falls_through() -> None:
    result = assign(RoutingConfig.default(), lead(company_owner_id="999"), TEAM)
    assert result.rule == "round-robin"
    assert result.skipped[0].cause == SkipCause.UNKNOWN_SELLER
    assert "account owner 999 of Acme (acme.example) is not a user in the CRM" in result.skipped[0].detail


def test_account_owner_on_leave_keeps_the_account_by_default_and_the_reason_says_so() -> None:
    cfg = """
sellers:
  "102": {out_of_office: [{from: 2025-03-01, to: 2025-03-09, note: ski trip}]}
rules:
  - {name: account-owner, kind: account_owner}
"""
    result = assign(cfg, lead(company_owner_id="102"), TEAM)
    assert result.owner_id == "102"
    assert result.reason == ("account owner Erik Lund keeps Acme (acme.example) "
                             "(note: Erik Lund is out of office 2025-03-01 to 2025-03-09 (ski trip))")


def test_account_owner_on_leave_is_routed_around_when_the_rule_asks_for_availability() -> None:
    cfg = """
sellers:
  "102": {out_of_office: [2025-03-03]}
rules:
  - {name: account-owner, kind: account_owner, availability: available_today}
  - {name: everyone, kind: round_robin}
"""
    result = assign(cfg, lead(company_owner_id="102"), TEAM)
    assert result.rule == "everyone" and result.owner_id != "102"
    assert result.skipped[0].cause == SkipCause.OUT_OF_OFFICE


def test_account_owner_over_the_daily_cap_still_keeps_the_account() -> None:
    cfg = """
sellers:
  "102": {daily_cap: 1}
rules:
  - {name: account-owner, kind: account_owner}
"""
    result = assign(cfg, lead(company_owner_id="102"), TEAM, ledger_with(_102=5))
    assert result.owner_id == "102"


def test_lead_without_an_account_owner_passes_the_rule_without_a_note() -> None:
    result = assign(RoutingConfig.default(), lead(), TEAM)
    assert result.rule == "round-robin" and result.skipped == ()


def test_account_owner_may_be_referenced_by_the_crm_user_id_only() -> None:
    # An e-mail in company_owner_id is not an id; routing compares ids first, then e-mails.
    result = assign(RoutingConfig.default(), lead(company_owner_id="erik.lund@lumen.example"), TEAM)
    assert result.owner_id == "102"


# -- territory and segment rules -------------------------------------------------------------------------

TERRITORIES = """
size_bands:
  smb: {max: 199}
  mid_market: {min: 200, max: 999}
  enterprise: {min: 1000}
teams:
  dach: [dana.kim@lumen.example, "103"]
rules:
  - name: nordics
    kind: territory
    when: {country: [SE, 'NO', DK, FI]}
    owner: erik.lund@lumen.example
  - name: dach-enterprise
    kind: segment
    when: {country: [DE, AT, CH], size_band: enterprise}
    team: dach
  - name: dach
    kind: territory
    when: {country: [DE, AT, CH]}
    pool: ["101"]
"""


def test_territory_routes_a_country_to_its_fixed_owner() -> None:
    result = assign(TERRITORIES, lead(country="SE"), TEAM)
    assert (result.owner_id, result.rule) == ("102", "nordics")
    assert result.reason == "territory nordics (country SE): Erik Lund owns this territory"


def test_territory_countries_compare_case_insensitively() -> None:
    assert assign(TERRITORIES, lead(country=" se "), TEAM).rule == "nordics"


def test_segment_sends_enterprise_companies_to_the_team_round_robin() -> None:
    result = assign(TERRITORIES, lead(country="DE", employees=4200), TEAM, ledger_with(_101=3, _103=1))
    assert (result.owner_id, result.rule) == ("103", "dach-enterprise")
    assert result.reason == ("segment dach-enterprise (country DE, size band enterprise at 4,200 employees): "
                             "round robin in team dach: Faye Osei had the lowest weighted load "
                             "(1 in 30d / weight 1) of 2 eligible")
    assert result.candidates == ("101", "103")


@pytest.mark.parametrize(("employees", "rule"), [(999, "dach"), (1000, "dach-enterprise"), (None, "dach")])
def test_size_bands_include_both_ends_and_an_unknown_size_matches_no_band(employees: int | None, rule: str) -> None:
    assert assign(TERRITORIES, lead(country="AT", employees=employees), TEAM).rule == rule


def test_a_lead_outside_every_territory_goes_to_the_fallback() -> None:
    result = assign(TERRITORIES, lead(country="BR"), TEAM)
    assert (result.rule, result.mode, result.owner_id) == ("fallback", "claim", None)
    assert result.reason.startswith("no rule applied to this lead; claim mode: announced to all sellers")


@pytest.mark.parametrize(("when", "fields", "matches"), [
    ("{region: [EMEA]}", {"region": "emea"}, True),
    ("{region: [EMEA]}", {"region": "APAC"}, False),
    ("{industry: [Software, Fintech]}", {"industry": "fintech"}, True),
    ("{industry: Software}", {"industry": None}, False),
    ("{segment: enterprise}", {"segment": "Enterprise"}, True),
    ("{segment: enterprise}", {"segment": "smb"}, False),
    ("{product_interest: [analytics, routing]}", {"product_interest": ("Routing", "crm")}, True),
    ("{product_interest: [analytics]}", {"product_interest": ("crm",)}, False),
    ("{employees: {min: 50, max: 500}}", {"employees": 500}, True),
    ("{employees: {min: 50, max: 500}}", {"employees": 501}, False),
    ("{annual_revenue: {min: 10000000}}", {"annual_revenue": 12_500_000.0}, True),
    ("{annual_revenue: {min: 10000000}}", {"annual_revenue": None}, False),
    ("{score: {min: 80}}", {"score": 80.0}, True),
    ("{score: {min: 80}}", {"score": 79.5}, False),
    ("{country: [DE], industry: [software]}", {"country": "DE", "industry": "retail"}, False),
])
def test_every_condition_must_hold_for_a_rule_to_apply(when: str, fields: dict[str, object], matches: bool) -> None:
    cfg = f"""
rules:
  - {{name: special, kind: territory, when: {when}, owner: "101"}}
fallback: {{mode: owner, owner: "102"}}
"""
    assert assign(cfg, lead(**fields), TEAM).rule == ("special" if matches else "fallback")


def test_the_reason_names_what_matched() -> None:
    cfg = """
rules:
  - {name: big-deals, kind: segment, when: {annual_revenue: {min: 1000000}, score: {min: 80},
     product_interest: [routing]}, owner: "101"}
"""
    result = assign(cfg, lead(annual_revenue=50_000_000.0, score=87.5, product_interest=("routing",)), TEAM)
    assert result.reason == ("segment big-deals (interested in routing, annual revenue 50,000,000, score 87.5): "
                             "Dana Kim owns this segment")


def test_pool_members_may_be_named_by_id_or_email_and_unknown_ones_are_noted() -> None:
    cfg = """
rules:
  - {name: inbound, kind: round_robin, pool: [faye.osei@LUMEN.example, "102", ghost@lumen.example]}
"""
    result = assign(cfg, lead(), TEAM, ledger_with(_102=1))
    assert result.owner_id == "103" and result.candidates == ("102", "103")
    assert result.reason.startswith("round robin in pool inbound: Faye Osei")
    assert [(s.cause, s.seller_id) for s in result.skipped] == [(SkipCause.UNKNOWN_SELLER, "ghost@lumen.example")]


def test_team_membership_comes_from_the_crm_the_file_and_seller_settings() -> None:
    cfg = """
teams:
  emea: {description: EMEA sales}
sellers:
  "103": {teams: [emea]}
rules:
  - {name: emea, kind: round_robin, team: emea}
"""
    crm_member = seller("101", "Dana Kim", teams=("EMEA",))
    result = assign(cfg, lead(), [crm_member, ERIK, FAYE])
    assert result.candidates == ("101", "103")


# -- weighted round robin ----------------------------------------------------------------------------


def test_round_robin_picks_the_lowest_load_per_unit_of_weight() -> None:
    cfg = """
sellers:
  "101": {weight: 2}
rules:
  - {name: rr, kind: round_robin}
"""
    # Dana: (12 + 1) / 2 = 6.5; Erik: (6 + 1) / 1 = 7; Faye: (9 + 1) / 1 = 10.
    result = assign(cfg, lead(), TEAM, ledger_with(_101=12, _102=6, _103=9))
    assert result.owner_id == "101"
    assert result.reason == "round robin among all sellers: Dana Kim had the lowest weighted load " \
                            "(12 in 30d / weight 2) of 3 eligible"


def test_round_robin_ties_go_to_the_lowest_user_id() -> None:
    assert assign(RoutingConfig.default(), lead(), [FAYE, ERIK, DANA], ledger_with(_101=2, _102=2, _103=2)).owner_id \
        == "101"


def test_round_robin_alternates_smoothly_between_weights() -> None:
    cfg = routing("""
sellers:
  "102": {weight: 2}
rules:
  - {name: rr, kind: round_robin}
""")
    router, ledger, picks = OwnerRouter(cfg), MemoryLedger(), []
    for i in range(9):
        now = NOW + timedelta(minutes=i)
        result = router.assign(lead(person_id=i), [DANA, ERIK], ledger, now)
        ledger.record_assignment(result, now)
        picks.append(result.owner_name[0])
    assert "".join(picks) == "EDEEDEEDE"


def test_round_robin_counts_only_assignments_inside_the_window() -> None:
    cfg = """
window: 7d
rules:
  - {name: rr, kind: round_robin}
"""
    ledger = MemoryLedger()
    for _ in range(50):
        ledger.record("101", NOW - timedelta(days=8))  # Dana's busy month is behind the window
    ledger.record("102", NOW - timedelta(days=1))
    assert assign(cfg, lead(), [DANA, ERIK], ledger).owner_id == "101"


def test_a_rule_window_overrides_the_file_window() -> None:
    cfg = """
rules:
  - {name: rr, kind: round_robin, window: 1d}
"""
    ledger = MemoryLedger()
    ledger.record("101", NOW - timedelta(days=2))
    ledger.record("101", NOW - timedelta(days=2))
    ledger.record("102", NOW - timedelta(hours=2))
    result = assign(cfg, lead(), [DANA, ERIK], ledger)
    assert result.owner_id == "101" and "(0 in 1d / weight 1)" in result.reason


# -- fixed owner -------------------------------------------------------------------------------------


def test_fixed_rule_gives_every_matching_lead_to_the_booker() -> None:
    cfg = """
rules:
  - {name: demo-requests, kind: fixed, owner: faye.osei@lumen.example, when: {product_interest: [demo]}}
  - {name: rr, kind: round_robin}
"""
    result = assign(cfg, lead(product_interest=("demo",)), TEAM)
    assert (result.owner_id, result.rule) == ("103", "demo-requests")
    assert result.reason == ("rule demo-requests (interested in demo): "
                             "Faye Osei is the fixed owner of rule demo-requests")
    assert assign(cfg, lead(), TEAM).rule == "rr"


def test_fixed_owner_on_leave_falls_through_to_the_next_rule() -> None:
    cfg = """
sellers:
  faye.osei@lumen.example: {out_of_office: [{from: 2025-03-03}]}
rules:
  - {name: sdr, kind: fixed, owner: "103"}
  - {name: rr, kind: round_robin, pool: ["101"]}
"""
    result = assign(cfg, lead(), TEAM)
    assert result.rule == "rr"
    assert result.skipped[0].detail == "Faye Osei is out of office 2025-03-03"


def test_fixed_owner_unknown_to_the_crm_falls_through() -> None:
    cfg = """
rules:
  - {name: sdr, kind: fixed, owner: nobody@lumen.example}
"""
    result = assign(cfg, lead(), TEAM)
    assert result.rule == "fallback"
    assert result.skipped[0].detail == "owner 'nobody@lumen.example' is not a user in the CRM"


# -- claim mode and fallback ------------------------------------------------------------------------------


def test_claim_rule_announces_the_lead_to_the_available_team_members() -> None:
    cfg = """
teams:
  inbound: ["101", "102", "103"]
sellers:
  "102": {out_of_office: [2025-03-03]}
rules:
  - {name: first-come, kind: claim, team: inbound}
"""
    result = assign(cfg, lead(), TEAM)
    assert (result.owner_id, result.mode, result.rule) == (None, "claim", "first-come")
    assert (result.candidates, result.team) == (("101", "103"), "inbound")
    assert result.reason == ("claim mode: announced to team inbound (2 can claim it; "
                             "the first seller to claim it becomes the owner)")


def test_claim_rule_with_nobody_available_falls_through() -> None:
    cfg = """
teams:
  night-shift: ["103"]
rules:
  - {name: first-come, kind: claim, team: night-shift}
fallback: {mode: owner, owner: "101"}
"""
    result = assign(cfg, lead(), [DANA, ERIK, seller("103", "Faye Osei", active=False)])
    assert (result.rule, result.owner_id) == ("fallback", "101")
    assert result.skipped[-1].detail == "nobody eligible in team night-shift (1 deactivated)"
    assert result.reason == "no rule found an eligible owner; fallback owner Dana Kim takes it"


def test_fallback_owner_takes_what_no_rule_placed() -> None:
    cfg = """
rules: []
fallback: {mode: owner, owner: erik.lund@lumen.example}
"""
    result = assign(cfg, lead(), TEAM)
    assert (result.owner_id, result.mode, result.rule) == ("102", "owner", "fallback")
    assert result.reason == "no rule applied to this lead; fallback owner Erik Lund takes it"


def test_deactivated_fallback_owner_turns_the_lead_into_a_claim() -> None:
    cfg = """
fallback: {mode: owner, owner: "102"}
"""
    result = assign(cfg, lead(), [DANA, seller("102", "Erik Lund", active=False)])
    assert (result.owner_id, result.mode, result.candidates) == (None, "claim", ("101",))
    assert result.skipped[-1].cause == SkipCause.INACTIVE
    assert result.reason.startswith("the fallback owner cannot take it; claim mode: announced to all sellers")


def test_fallback_claim_answers_even_when_nobody_is_active() -> None:
    result = assign(RoutingConfig.default(), lead(), [seller("101", active=False)])
    assert (result.owner_id, result.mode, result.rule, result.candidates) == (None, "claim", "fallback", ())
    assert result.reason == ("no rule found an eligible owner; claim mode: announced to all sellers "
                             "(nobody is available to claim it now; a manager must assign it)")


def test_fallback_claim_can_be_limited_to_a_team() -> None:
    cfg = """
teams:
  managers: ["103"]
fallback: {mode: claim, team: managers}
"""
    result = assign(cfg, lead(), TEAM)
    assert (result.candidates, result.team) == (("103",), "managers")
    assert "announced to team managers" in result.reason


def test_default_chain_is_account_owner_then_round_robin_then_claim() -> None:
    config = RoutingConfig.default()
    assert [(r.name, r.kind) for r in config.rules] == [("account-owner", "account_owner"),
                                                         ("round-robin", "round_robin")]
    assert config.fallback.mode == "claim"
    assert OwnerRouter().config.rules == config.rules


# -- the decision as data ----------------------------------------------------------------------------------


def test_the_assignment_is_stored_as_json_with_its_reason_and_trail() -> None:
    result = assign(RoutingConfig.default(), lead(company_owner_id="102"), [DANA, seller("102", active=False)])
    record = json.loads(json.dumps(result.as_dict()))
    assert record["owner_id"] == "101" and record["rule"] == "round-robin" and record["mode"] == "owner"
    assert record["skipped"][0]["cause"] == "inactive"
    assert result.explain().splitlines()[1].startswith("  - account-owner: account owner")


def test_a_naive_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        OwnerRouter().assign(lead(), TEAM, MemoryLedger(), NOW.replace(tzinfo=None))


def test_the_same_user_id_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'101' appears twice"):
        assign(RoutingConfig.default(), lead(), [DANA, seller("101", "Dana Again")])


def test_settings_keyed_by_user_id_win_over_settings_keyed_by_email() -> None:
    cfg = """
sellers:
  "101": {weight: 3}
  dana.kim@lumen.example: {weight: 1}
rules:
  - {name: rr, kind: round_robin}
"""
    result = assign(cfg, lead(), [DANA, ERIK], ledger_with(_101=2, _102=1))
    assert result.owner_id == "101" and "weight 3" in result.reason


def test_a_seller_is_built_from_a_canonical_owner_record() -> None:
    owner = Owner(source="crm", source_id="77", email="ida@lumen.example", first_name="Ida", last_name="Berg",
                  active=False, timezone="Europe/Stockholm", teams=["nordics"])
    assert Seller.from_owner(owner) == Seller(id="77", name="Ida Berg", email="ida@lumen.example", active=False,
                                              timezone="Europe/Stockholm", teams=("nordics",))


def test_audit_names_references_that_match_no_crm_user_or_a_deactivated_one() -> None:
    config = routing("""
teams:
  emea: [dana.kim@lumen.example, ghost@lumen.example]
sellers:
  nobody@lumen.example: {weight: 2}
rules:
  - {name: sdr, kind: fixed, owner: "102"}
fallback: {mode: owner, owner: "404"}
""")
    problems = config.audit([DANA, seller("102", "Erik Lund", active=False), seller("103", timezone="Mars/Base")])
    assert problems == [
        "sellers.nobody@lumen.example: no CRM user has the id or e-mail 'nobody@lumen.example'",
        "teams.emea.members.1: no CRM user has the id or e-mail 'ghost@lumen.example'",
        "rules.0.owner: Erik Lund (102) is deactivated in the CRM",
        "fallback.owner: no CRM user has the id or e-mail '404'",
        "user 103: the CRM's time zone 'Mars/Base' is unknown; using UTC",
    ]


def test_memory_ledger_counts_from_the_given_moment_inclusive() -> None:
    ledger = MemoryLedger()
    ledger.record("101", NOW - timedelta(hours=2))
    ledger.record("101", NOW)
    assert ledger.count("101", NOW) == 1
    assert ledger.count("101", None) == 2
    assert ledger.count("102", None) == 0
    with pytest.raises(ValueError):
        ledger.record("101", NOW.replace(tzinfo=None))
