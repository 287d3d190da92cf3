"""`crmbridge config check` tells the truth: every configured file and setting is loaded and validated, a
problem is named once by file, line and key (exit 2), and `crmbridge run` refuses to start on the same
message. Read-only commands never create a database that is not there."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmbridge.cli import app
from crmbridge.store import Store

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]

# A small, valid mapping whose line numbers the tests below rely on.
MAPPING = """\
source: hubspot
version: 1
streams:
  contacts:
    entity: person
    keep_unmapped: true
    fields:
      email: email
"""


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working two-CRM set-up in its own folder: the shipped mappings and examples, tokens set."""
    for name in list(os.environ):
        if name.startswith("CRMBRIDGE_"):
            monkeypatch.delenv(name)
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    for name in ("handoff.yaml", "routing.yaml", "sla.yaml"):
        shutil.copy(ROOT / "examples" / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)  # ./mappings, ./handoff.yaml and ./sla.yaml are found there; no .env
    monkeypatch.setenv("CRMBRIDGE_SOURCES", "hubspot,pipedrive")
    monkeypatch.setenv("CRMBRIDGE_SCORING_MODEL", str(ROOT / "examples" / "scoring" / "default.yaml"))
    monkeypatch.setenv("CRMBRIDGE_HUBSPOT_ACCESS_TOKEN", "pat-test")
    monkeypatch.setenv("CRMBRIDGE_PIPEDRIVE_API_TOKEN", "pd-test")
    monkeypatch.setenv("CRMBRIDGE_DATABASE_URL", f"sqlite:///{tmp_path / 'store' / 'crmbridge.db'}")
    return tmp_path


def check(*args: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["config", "check", *args])
    return result.exit_code, [line.strip() for line in result.output.splitlines()]


def refused(path: Path, line: int, key: str, message: str) -> str:
    return f"error: {path}:{line}: {key}: {message}"


def test_a_good_configuration_says_ok_and_lists_what_it_checked(deployment: Path) -> None:
    code, lines = check()
    assert code == 0, lines
    assert lines[-1] == "configuration ok: 11 checked"
    checked = "\n".join(lines)
    for expected in ("ok .env / environment (sources hubspot, pipedrive; sync every 300 s; wall clock)",
                     "ok hubspot credentials", "ok pipedrive credentials",
                     f"ok {Path('mappings') / 'hubspot.yaml'} (", f"ok {Path('mappings') / 'pipedrive.yaml'} (",
                     f"ok {Path('mappings') / 'merge.yaml'} (merge policy)",
                     f"ok {ROOT / 'examples' / 'scoring' / 'default.yaml'} (scoring model 'playbook-default'",
                     "ok handoff.yaml (stage 'Sales-ready leads')",
                     f"ok {deployment / 'routing.yaml'} (6 routing rules, 4 teams)",
                     "ok sla.yaml (2 SLA policies, 2 calendars)",
                     "ok notifications: no channel set"):
        assert expected in checked
    assert not any(line.startswith(("error", "warning")) for line in lines)


def test_keep_unmapped_maybe_is_an_error_not_true(deployment: Path) -> None:
    (deployment / "mappings" / "hubspot.yaml").write_text(MAPPING.replace("keep_unmapped: true",
                                                                          "keep_unmapped: maybe"))
    code, lines = check()
    assert code == 2
    assert refused(Path("mappings") / "hubspot.yaml", 6, "streams.contacts.keep_unmapped",
                   "expected true or false, got 'maybe'") in lines


def test_an_unknown_mapping_version_is_an_error(deployment: Path) -> None:
    (deployment / "mappings" / "hubspot.yaml").write_text(MAPPING.replace("version: 1", "version: 2"))
    code, lines = check()
    assert code == 2
    assert refused(Path("mappings") / "hubspot.yaml", 2, "version", "unknown mapping version 2 (known: 1)") in lines


def test_a_bad_merge_policy_is_named(deployment: Path) -> None:
    (deployment / "mappings" / "merge.yaml").write_text("default: most_recent\nfields:\n  person:\n"
                                                        "    email: newest\n")
    code, lines = check()
    assert code == 2
    assert refused(Path("mappings") / "merge.yaml", 4, "fields.person.email.strategy",
                   "strategy must be one of: most_recent, priority, any, max_stage") in lines


def test_the_scoring_model_is_loaded_and_checked(deployment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = deployment / "scoring.yaml"
    model.write_text((ROOT / "examples" / "scoring" / "default.yaml").read_text().replace("version: 1",
                                                                                          "version: 7"))
    monkeypatch.setenv("CRMBRIDGE_SCORING_MODEL", str(model))
    code, lines = check()
    assert code == 2
    assert refused(model, 4, "version", "Input should be 1") in lines


def test_a_missing_token_names_the_variable(deployment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRMBRIDGE_PIPEDRIVE_API_TOKEN")
    code, lines = check()
    assert code == 2
    assert ("error: .env / environment: CRMBRIDGE_PIPEDRIVE_API_TOKEN: no Pipedrive API token: set "
            "CRMBRIDGE_PIPEDRIVE_API_TOKEN (Settings > Personal preferences > API in Pipedrive)") in lines
    assert "ok hubspot credentials" in lines


@pytest.mark.parametrize("interval", ["0", "-5"])
def test_a_sync_interval_of_zero_or_less_is_refused(deployment: Path, monkeypatch: pytest.MonkeyPatch,
                                                    interval: str) -> None:
    monkeypatch.setenv("CRMBRIDGE_SYNC_INTERVAL_SECONDS", interval)
    code, lines = check()
    assert code == 2
    assert (f"error: .env / environment: CRMBRIDGE_SYNC_INTERVAL_SECONDS: Input should be greater than 0 "
            f"(got '{interval}')") in lines


def test_a_fast_sla_clock_without_an_epoch_is_reported(deployment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SLA_CLOCK_SPEED", "60")
    code, lines = check()
    assert code == 2
    assert ("error: .env / environment: CRMBRIDGE_SLA_CLOCK_EPOCH: a fast SLA clock needs an epoch, so that "
            "restarts keep one timeline (e.g. CRMBRIDGE_SLA_CLOCK_EPOCH=2026-03-09T09:00:00Z)") in lines
    monkeypatch.setenv("CRMBRIDGE_SLA_CLOCK_EPOCH", "2026-03-09T09:00:00Z")
    code, lines = check()
    assert code == 0 and lines[0].endswith("SLA clock x60)")


def test_an_unknown_source_is_named_by_its_variable(deployment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SOURCES", "hubspot,salesforce")
    code, lines = check()
    assert code == 2
    assert ("error: .env / environment: CRMBRIDGE_SOURCES: unknown source 'salesforce' (installed connectors: "
            "hubspot, pipedrive)") in lines


def test_the_hand_off_file_is_checked(deployment: Path) -> None:
    handoff = deployment / "handoff.yaml"
    handoff.write_text(handoff.read_text().replace("lease_seconds: 600", "lease_seconds: 5"))
    line = next(i for i, text in enumerate(handoff.read_text().splitlines(), 1) if text.startswith("lease_seconds"))
    code, lines = check()
    assert code == 2
    assert refused(Path("handoff.yaml"), line, "lease_seconds", "Input should be greater than or equal to 30") in lines


def test_the_routing_file_the_hand_off_names_is_checked(deployment: Path) -> None:
    (deployment / "routing.yaml").write_text("version: 1\nrules:\n  - name: everyone\n    kind: round_robin\n"
                                             "    team: nobody\n")
    code, lines = check()
    assert code == 2
    assert refused(deployment / "routing.yaml", 5, "rules.0.team",
                   "unknown team 'nobody' (declared under teams: none declared)") in lines


def test_the_sla_file_is_checked(deployment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sla = deployment / "elsewhere.yaml"
    sla.write_text("version: 1\ncalendars:\n  office: {timezone: Mars/Olympus}\n")
    monkeypatch.setenv("CRMBRIDGE_SLA_CONFIG", str(sla))
    code, lines = check()
    assert code == 2
    assert any(line.startswith(f"error: {sla}:3: calendars.office.timezone: ") for line in lines), lines


def test_sla_teams_the_routing_file_lacks_are_a_warning_naming_both_files(deployment: Path) -> None:
    sla = deployment / "sla.yaml"
    sla.write_text(sla.read_text().replace("when: {teams: [emea, na],", "when: {teams: [emea, apac],"))
    line = next(i for i, text in enumerate(sla.read_text().splitlines(), 1) if "teams: [emea, apac]" in text)
    code, lines = check()
    assert code == 0, lines
    assert (f"warning: sla.yaml:{line}: policies.0.when.teams.1: team 'apac' is not a team of "
            f"{deployment / 'routing.yaml'} (its teams: emea, emea-enterprise, na, na-enterprise)") in lines
    assert lines[-1] == "configuration ok: 11 checked, 1 warnings"


def test_bad_notification_settings_are_reported(deployment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SMTP_HOST", "smtp.example.com")
    code, lines = check()
    assert code == 2
    assert any(line.startswith("error: .env / environment: ") and "CRMBRIDGE_NOTIFY_FROM" in line
               for line in lines), lines


def test_every_broken_file_is_reported_in_one_run(deployment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (deployment / "mappings" / "hubspot.yaml").write_text(MAPPING.replace("version: 1", "version: 2"))
    monkeypatch.delenv("CRMBRIDGE_HUBSPOT_ACCESS_TOKEN")
    code, lines = check()
    assert code == 2
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 2 and "CRMBRIDGE_HUBSPOT_ACCESS_TOKEN" in errors[0] and "version" in errors[1]


def test_run_refuses_to_start_with_the_same_message(deployment: Path) -> None:
    (deployment / "mappings" / "hubspot.yaml").write_text(MAPPING.replace("keep_unmapped: true",
                                                                          "keep_unmapped: maybe"))
    _, checked = check()
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    expected = refused(Path("mappings") / "hubspot.yaml", 6, "streams.contacts.keep_unmapped",
                       "expected true or false, got 'maybe'")
    assert expected in checked and expected in [line.strip() for line in result.output.splitlines()]
    assert not (deployment / "store").exists()  # refused before the store was opened


@pytest.mark.parametrize("command", [["status"], ["handoffs"], ["inbox", "list"], ["sla", "report"],
                                     ["score", "explain", "ada@example.com"]])
def test_read_only_commands_never_create_a_missing_database(deployment: Path, command: list[str]) -> None:
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert f"the database {deployment / 'store' / 'crmbridge.db'} does not exist" in said
    assert "CRMBRIDGE_DATABASE_URL" in said
    assert not (deployment / "store").exists()


def test_read_only_commands_read_an_existing_database(deployment: Path) -> None:
    Store(os.environ["CRMBRIDGE_DATABASE_URL"]).close()
    for command in (["status"], ["handoffs"], ["inbox", "list"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output


def test_without_a_routing_file_there_is_nothing_to_cross_check(deployment: Path) -> None:
    handoff = deployment / "handoff.yaml"
    handoff.write_text(handoff.read_text().replace("routing: routing.yaml\n", ""))
    code, lines = check()
    assert code == 0, lines
    assert not any(line.startswith("warning") for line in lines)
    assert lines[-1] == "configuration ok: 10 checked"
