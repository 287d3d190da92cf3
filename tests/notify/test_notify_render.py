"""What a seller reads: who, which company, why sales-ready, who owns it, and the link to the deal."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from crmbridge.notify import HandoffNotice, email_message, slack_message, teams_message
from crmbridge.notify.render import ADAPTIVE_CARD, plain_text


def _slack_text(payload: dict) -> str:
    return json.dumps(payload["blocks"], ensure_ascii=False)


def test_slack_message_names_the_lead_the_company_the_reasons_and_links_the_deal(notice: HandoffNotice) -> None:
    payload = slack_message(notice)
    blocks = payload["blocks"]
    assert blocks[0] == {"type": "header",
                         "text": {"type": "plain_text", "text": "Sales-ready lead for Sam Okafor: Dana Whitfield "
                                                                "(Northwind Analytics)"}}
    text = _slack_text(payload)
    for expected in ("Dana Whitfield, VP Revenue Operations", "Northwind Analytics (northwind.example)",
                     "72 (SQL)", "Sam Okafor", "• Contact request form (+50)", "• Buyer's guide download (+25)"):
        assert expected in text
    deal = next(b for b in blocks if b.get("accessory"))
    assert deal["accessory"]["type"] == "button"
    assert deal["accessory"]["url"] == notice.deal_url
    assert deal["accessory"]["text"]["text"] == "Open deal in HubSpot"
    assert f"<{notice.deal_url}|" in deal["text"]["text"]
    assert payload["text"].startswith("Sales-ready lead for Sam Okafor: Dana Whitfield")
    assert notice.deal_url in payload["text"]


def test_slack_message_escapes_what_slack_would_read_as_markup(notice: HandoffNotice) -> None:
    payload = slack_message(replace(notice, company_name="Smith & Sons <Ltd>", reasons=("<!channel> ping",)))
    text = _slack_text(payload)
    assert "Smith &amp; Sons &lt;Ltd&gt;" in text
    assert "&lt;!channel&gt; ping" in text
    assert "<!channel>" not in text


def test_a_deal_without_a_link_says_so_instead_of_a_dead_button(notice: HandoffNotice) -> None:
    no_link = replace(notice, deal_url=None)
    assert not any(b.get("accessory") for b in slack_message(no_link)["blocks"])
    assert "(no link yet)" in _slack_text(slack_message(no_link))
    card = teams_message(no_link)["attachments"][0]["content"]
    assert "actions" not in card
    assert "(no link to the deal yet)" in plain_text(no_link)


def test_teams_message_is_one_adaptive_card_with_facts_reasons_and_an_open_url_action(notice: HandoffNotice) -> None:
    payload = teams_message(notice)
    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == ADAPTIVE_CARD == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}
    assert facts["Person"] == "Dana Whitfield, VP Revenue Operations"
    assert facts["Company"] == "Northwind Analytics (northwind.example)"
    assert facts["Score"] == "72 (SQL)"
    assert facts["Owner"] == "Sam Okafor"
    texts = [b["text"] for b in card["body"] if b["type"] == "TextBlock"]
    assert "• Contact request form (+50)" in texts
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open deal in HubSpot", "url": notice.deal_url}]


def test_email_has_subject_both_bodies_and_a_stable_message_id(notice: HandoffNotice) -> None:
    sent_at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    msg = email_message(notice, sender="crmbridge <revops@seller.example>", recipient="sam.okafor@seller.example",
                        date=sent_at)
    assert msg["Subject"] == ("Sales-ready lead for Sam Okafor: Dana Whitfield (Northwind Analytics) · score 72 (SQL)")
    assert msg["To"] == "sam.okafor@seller.example"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Crmbridge-Handoff-Key"] == notice.key
    assert msg["Date"] == "Mon, 02 Mar 2026 09:30:00 +0000"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Sam Okafor, a lead is sales-ready and assigned to you." in text
    assert "  - Contact request form (+50)" in text
    assert notice.deal_url in text
    assert f'<a href="{notice.deal_url}">' in html
    assert "<li>Buyer&#x27;s guide download (+25)</li>" in html
    again = email_message(notice, sender="revops@seller.example", recipient="SAM.OKAFOR@seller.example")
    assert again["Message-ID"] == msg["Message-ID"]
    assert msg["Message-ID"].endswith("@seller.example>")


def test_claim_mode_asks_the_team_to_claim_the_lead(claim_notice: HandoffNotice) -> None:
    assert slack_message(claim_notice)["blocks"][0]["text"]["text"] == (
        "New sales-ready lead to claim: Dana Whitfield (Northwind Analytics)")
    assert "first seller to claim it owns it" in _slack_text(slack_message(claim_notice))
    card = teams_message(claim_notice)["attachments"][0]["content"]
    assert card["body"][0]["text"].startswith("New sales-ready lead to claim")
    msg = email_message(claim_notice, sender="revops@seller.example", recipient="sales@seller.example")
    assert msg["Subject"].startswith("New sales-ready lead to claim: Dana Whitfield")
    assert "the first seller to claim it takes it" in msg.get_body(("plain",)).get_content()


def test_a_long_list_of_reasons_is_cut_to_the_top_five(notice: HandoffNotice) -> None:
    many = replace(notice, reasons=tuple(f"Reason {i} (+{i})" for i in range(1, 9)))
    text = plain_text(many)
    assert "Reason 5 (+5)" in text
    assert "Reason 6 (+6)" not in text
    assert "and 3 more" in text


def test_a_fractional_score_keeps_one_decimal(notice: HandoffNotice) -> None:
    assert "57.5 (SQL)" in plain_text(replace(notice, score=57.46))
