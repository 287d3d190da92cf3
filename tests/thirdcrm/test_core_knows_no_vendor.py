"""The core decides nothing by a connector's name: what differs between CRMs is what their plugins declare."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

from crmbridge.connectors import capabilities, plugins
from crmbridge.errors import ConfigError
from crmbridge.sandbox.options import sandbox_extra
from crmbridge.writeback.config import auto_target

CORE = Path(__file__).resolve().parents[2] / "src" / "crmbridge"


def _code_mentions(path: Path, names: list[str]) -> list[str]:
    """Identifiers naming a connector, and string literals that are a connector's name or one of its keys
    (``"name"``, ``"name_tier"``, ``"name.tier"``). Docstrings, comments and prose may name vendors."""
    pattern = re.compile("|".join(re.escape(n) for n in names), re.IGNORECASE)
    keyish = re.compile(r"^['\"](" + "|".join(re.escape(n) for n in names) + r")([_.][\w.]*)?['\"]$", re.IGNORECASE)
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if (tok.type == tokenize.NAME and pattern.search(tok.string)) or (
                tok.type == tokenize.STRING and keyish.match(tok.string)):
            found.append(f"{path.relative_to(CORE)}:{tok.start[0]}: {tok.string}")
    return found


def test_no_core_code_names_an_installed_connector() -> None:
    names = sorted(plugins())
    assert {"hubspot", "pipedrive"} <= set(names)  # what this check is about is installed
    mentions = [m for path in sorted(CORE.rglob("*.py")) for m in _code_mentions(path, names)]
    assert mentions == []


def test_the_auto_target_is_the_highest_declared_rank_then_the_first_configured() -> None:
    assert auto_target(["a", "b", "c"], {"a": 0, "b": 5, "c": 5}) == "b"
    assert auto_target(["a", "b"], {}) == "a"
    with pytest.raises(ConfigError):
        auto_target([], {})
    # The installed connectors declare Pipedrive as the CRM sellers work in, whatever the order.
    assert auto_target(["pipedrive", "hubspot"]) == auto_target(["hubspot", "pipedrive"]) == "pipedrive"
    assert capabilities("hubspot").lifecycle_forward_only and not capabilities("pipedrive").lifecycle_forward_only


def test_sandbox_options_land_under_the_key_the_plugin_declares() -> None:
    extra = sandbox_extra(["hubspot.search_lag_seconds=2.5", "hubspot.tier=Free", "pipedrive.seats=3",
                           "pipedrive.oauth_tokens=a, b"], plugins())
    # The search lag reaches the key the HubSpot sandbox reads (the CLI once wrote one nobody read).
    assert extra == {"hubspot_search_lag_seconds": ["2.5"], "hubspot_tier": "free", "pipedrive_seats": 3,
                     "pipedrive_oauth_tokens": ["a", "b"]}


@pytest.mark.parametrize(("text", "says"), [
    ("hubspot.tier=gold", "expected one of free, starter"),
    ("pipedrive.seats=many", "expected an integer"),
    ("hubspot.colour=red", "hubspot.tier"),
    ("nowhere.tier=free", "no connector 'nowhere'"),
    ("tier=free", "expected <connector>.<option>=<value>"),
    ("hubspot.tier", "expected <connector>.<option>=<value>"),
])
def test_a_sandbox_option_no_plugin_declares_is_refused_with_what_would_work(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)) as caught:
        sandbox_extra([text], plugins())
    assert caught.value.exit_code == 2
