"""Pure renderers: one ``HandoffNotice`` as a Slack message, a Teams card and an e-mail.

Every channel says the same things in the same order: who, which company, the score, why it is
sales-ready (the top reasons), who owns it (or that it is up for claiming) and a link to the deal.
"""

from __future__ import annotations

import hashlib
import html
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

from crmbridge.notify.notice import HandoffNotice

MAX_REASONS = 5
TEAMS_CARD_VERSION = "1.4"  # the highest version Teams renders everywhere, Workflows included
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


# -- the words, shared by every channel ----------------------------------------------------------

_SLA_HEADLINES = {
    "reminder": "Reminder: first touch due soon for {lead}",
    "escalation": "SLA breached: nobody has reached {lead} yet",
    "reassignment": "Lead reassigned to {owner}: {lead}",
    "surge": "Buying interest is rising at {lead}",
}


def headline(notice: HandoffNotice) -> str:
    lead = f"{notice.person_name} ({notice.company_name})" if notice.company_name else notice.person_name
    if notice.kind in _SLA_HEADLINES:
        return _SLA_HEADLINES[notice.kind].format(lead=lead, owner=notice.owner_name or "a new owner")
    if notice.claim:
        return f"New sales-ready lead to claim: {lead}"
    if notice.owner_name:
        return f"Sales-ready lead for {notice.owner_name}: {lead}"
    return f"Sales-ready lead: {lead}"


def score_text(notice: HandoffNotice) -> str:
    score = f"{notice.score:.0f}" if float(notice.score).is_integer() else f"{notice.score:.1f}"
    return f"{score} ({notice.stage})"


def owner_text(notice: HandoffNotice) -> str:
    if notice.claim:
        return "Nobody yet: the first seller to claim it owns it"
    return notice.owner_name or "Unassigned"


def person_text(notice: HandoffNotice) -> str:
    return f"{notice.person_name}, {notice.person_title}" if notice.person_title else notice.person_name


def company_text(notice: HandoffNotice) -> str:
    name = notice.company_name or notice.company_domain or "Unknown company"
    if notice.company_domain and notice.company_name:
        return f"{name} ({notice.company_domain})"
    return name


def top_reasons(notice: HandoffNotice) -> list[str]:
    shown = list(notice.reasons[:MAX_REASONS])
    if len(notice.reasons) > MAX_REASONS:
        shown.append(f"and {len(notice.reasons) - MAX_REASONS} more")
    return shown or ["(no reason recorded)"]


def open_deal_label(notice: HandoffNotice) -> str:
    return f"Open deal in {notice.crm}"


def intro(notice: HandoffNotice) -> str:
    if notice.kind != "handoff" and notice.note:
        return notice.note
    if notice.claim:
        return "A lead is sales-ready and nobody owns it yet: the first seller to claim it takes it."
    if notice.owner_name:
        return f"{notice.owner_name}, a lead is sales-ready and assigned to you."
    return "A lead is sales-ready."


def plain_text(notice: HandoffNotice) -> str:
    """The whole message as plain text: the e-mail body and the chat fallback."""
    lines = [intro(notice), "", f"Who:      {person_text(notice)}"]
    if notice.person_email:
        lines.append(f"E-mail:   {notice.person_email}")
    lines += [f"Company:  {company_text(notice)}", f"Score:    {score_text(notice)}",
              f"Owner:    {owner_text(notice)}", "", "Why sales-ready:"]
    lines += [f"  - {reason}" for reason in top_reasons(notice)]
    lines += ["", f"Deal:     {notice.deal_title} ({notice.crm})"]
    lines.append(f"          {notice.deal_url}" if notice.deal_url else "          (no link to the deal yet)")
    lines += ["", f"Ref: {notice.key}"]
    return "\n".join(lines) + "\n"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- Slack ----------------------------------------------------------------------------------------

def _slack_escape(text: str) -> str:
    # The three characters Slack's mrkdwn reserves for links and mentions.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: str, label: str) -> str:
    safe_url = url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    return f"<{safe_url}|{_slack_escape(label).replace('|', '¦')}>"


def slack_message(notice: HandoffNotice) -> dict[str, Any]:
    """A Slack incoming-webhook payload: ``text`` for notifications and old clients, ``blocks`` for the card."""
    e = _slack_escape
    person = f"*Person*\n{e(person_text(notice))}" + (f"\n{e(notice.person_email)}" if notice.person_email else "")
    deal = e(notice.deal_title)
    if notice.deal_url:
        deal = _slack_link(notice.deal_url, notice.deal_title)
    deal_section: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": _clip(
        f"*Deal*\n{deal} in {e(notice.crm)}" + ("" if notice.deal_url else " (no link yet)"), 3000)}}
    if notice.deal_url:
        deal_section["accessory"] = {
            "type": "button", "action_id": "open_deal", "style": "primary", "url": notice.deal_url[:3000],
            "text": {"type": "plain_text", "text": _clip(open_deal_label(notice), 75)},
        }
    reasons = "\n".join(f"• {e(r)}" for r in top_reasons(notice))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(headline(notice), 150)}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": _clip(person, 2000)},
            {"type": "mrkdwn", "text": _clip(f"*Company*\n{e(company_text(notice))}", 2000)},
            {"type": "mrkdwn", "text": f"*Score*\n{e(score_text(notice))}"},
            {"type": "mrkdwn", "text": _clip(f"*Owner*\n{e(owner_text(notice))}", 2000)},
        ]},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(f"*Why sales-ready*\n{reasons}", 3000)}},
        deal_section,
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(f"crmbridge · ref {e(notice.key)}", 3000)}]},
    ]
    fallback = f"{headline(notice)} · score {score_text(notice)}"
    if notice.deal_url:
        fallback += f" · {notice.deal_url}"
    return {"text": _clip(_slack_escape(fallback), 3000), "blocks": blocks}


# -- Microsoft Teams ------------------------------------------------------------------------------

def teams_message(notice: HandoffNotice) -> dict[str, Any]:
    """A Teams message carrying one Adaptive Card, the shape both Workflows and incoming webhooks accept."""
    facts = [{"title": "Person", "value": person_text(notice)}]
    if notice.person_email:
        facts.append({"title": "E-mail", "value": notice.person_email})
    facts += [
        {"title": "Company", "value": company_text(notice)},
        {"title": "Score", "value": score_text(notice)},
        {"title": "Owner", "value": owner_text(notice)},
        {"title": "Deal", "value": f"{notice.deal_title} ({notice.crm})"},
    ]
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": headline(notice), "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "FactSet", "facts": facts},
        {"type": "TextBlock", "text": "Why sales-ready", "weight": "Bolder", "wrap": True, "spacing": "Medium"},
    ]
    body += [{"type": "TextBlock", "text": f"• {reason}", "wrap": True, "spacing": "None"}
             for reason in top_reasons(notice)]
    if not notice.deal_url:
        body.append({"type": "TextBlock", "text": "No link to the deal yet.", "wrap": True, "isSubtle": True})
    body.append({"type": "TextBlock", "text": f"crmbridge · ref {notice.key}", "size": "Small",
                 "isSubtle": True, "wrap": True})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": TEAMS_CARD_VERSION,
        "msteams": {"width": "Full"},
        "fallbackText": headline(notice),
        "body": body,
    }
    if notice.deal_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": open_deal_label(notice), "url": notice.deal_url}]
    return {"type": "message",
            "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}


# -- e-mail ---------------------------------------------------------------------------------------

def email_subject(notice: HandoffNotice) -> str:
    return f"{headline(notice)} · score {score_text(notice)}"


def _html_body(notice: HandoffNotice) -> str:
    e = html.escape
    rows = [("Who", e(person_text(notice)))]
    if notice.person_email:
        rows.append(("E-mail", f'<a href="mailto:{e(notice.person_email)}">{e(notice.person_email)}</a>'))
    rows += [("Company", e(company_text(notice))), ("Score", e(score_text(notice))),
             ("Owner", e(owner_text(notice)))]
    deal = e(notice.deal_title)
    if notice.deal_url:
        deal = f'<a href="{e(notice.deal_url)}">{deal}</a>'
    rows.append(("Deal", f"{deal} ({e(notice.crm)})"))
    table = "\n".join(
        f'<tr><th align="left" style="padding-right:12px">{k}</th><td>{v}</td></tr>' for k, v in rows)
    reasons = "\n".join(f"<li>{e(r)}</li>" for r in top_reasons(notice))
    button = ""
    if notice.deal_url:
        button = f'<p><a href="{e(notice.deal_url)}"><strong>{e(open_deal_label(notice))}</strong></a></p>\n'
    return (
        "<!DOCTYPE html>\n<html><body>\n"
        f"<p>{e(intro(notice))}</p>\n<table>\n{table}\n</table>\n"
        f"<p><strong>Why sales-ready</strong></p>\n<ul>\n{reasons}\n</ul>\n{button}"
        f'<p style="color:#888;font-size:small">Ref: {e(notice.key)}</p>\n</body></html>\n'
    )


def message_id(notice: HandoffNotice, recipient: str, sender: str) -> str:
    """The same notice to the same address always gets the same Message-ID, so a resend can be deduplicated."""
    digest = hashlib.sha256(f"{notice.key}\n{recipient.lower()}".encode()).hexdigest()[:32]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "crmbridge.invalid"
    return f"<{digest}.handoff@{domain}>"


def email_message(notice: HandoffNotice, *, sender: str, recipient: str,
                  date: datetime | None = None) -> EmailMessage:
    """Subject, plain text and an HTML alternative; ``Auto-Submitted`` so that auto-replies stay quiet."""
    msg = EmailMessage()
    msg["Subject"] = email_subject(notice)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Message-ID"] = message_id(notice, recipient, sender)
    if date is not None:
        msg["Date"] = format_datetime(date)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Crmbridge-Handoff-Key"] = notice.key
    msg.set_content(plain_text(notice))
    msg.add_alternative(_html_body(notice), subtype="html")
    return msg
