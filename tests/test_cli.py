"""The command line: clear messages and exit codes on bad input, JSON status, progress-free JSON output."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from crmbridge.cli import app
from crmbridge.store import Store

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def test_config_check_accepts_the_shipped_mappings(monkeypatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SOURCES", "hubspot")
    monkeypatch.setenv("CRMBRIDGE_HUBSPOT_ACCESS_TOKEN", "pat-test")  # without it the check fails, naming it
    result = runner.invoke(app, ["config", "check", "--mappings", str(ROOT / "mappings")])
    assert result.exit_code == 0, result.output
    assert "hubspot.yaml" in result.output


def test_config_check_names_file_line_and_key_of_a_bad_mapping(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SOURCES", "hubspot")
    (tmp_path / "hubspot.yaml").write_text(
        "source: hubspot\nstreams:\n  contacts:\n    entity: person\n    fields:\n"
        "      email: {from: email, transform: emale}\n")
    result = runner.invoke(app, ["config", "check", "--mappings", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path / 'hubspot.yaml'}:6: streams.contacts.fields.email.transform: unknown transform 'emale'" in \
        result.output.replace("\n", "")


def test_a_missing_mapping_file_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_SOURCES", "hubspot")
    result = runner.invoke(app, ["config", "check", "--mappings", str(tmp_path)])
    assert result.exit_code == 2 and "file not found" in result.output


def test_an_unknown_source_lists_the_installed_ones(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CRMBRIDGE_DATABASE_URL", f"sqlite:///{tmp_path / 's.db'}")
    result = runner.invoke(app, ["backfill", "--source", "salesforce"])
    assert result.exit_code == 2
    assert "unknown source 'salesforce'" in result.output and "hubspot" in result.output


def test_backfill_without_a_token_says_which_variable_to_set(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CRMBRIDGE_DATABASE_URL", f"sqlite:///{tmp_path / 's.db'}")
    monkeypatch.delenv("CRMBRIDGE_HUBSPOT_ACCESS_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    result = runner.invoke(app, ["backfill", "--source", "hubspot"])
    assert result.exit_code == 2
    assert "CRMBRIDGE_HUBSPOT_ACCESS_TOKEN" in result.output


def test_status_as_json_reports_counts_cursors_and_runs(monkeypatch, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    Store(url).close()  # status reads a store; it never creates one
    monkeypatch.setenv("CRMBRIDGE_DATABASE_URL", url)
    result = runner.invoke(app, ["status", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) >= {"counts", "cursors", "last_runs", "database"}


def test_an_unsupported_database_url_is_named(monkeypatch) -> None:
    monkeypatch.setenv("CRMBRIDGE_DATABASE_URL", "mysql://root@localhost/x")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 2 and "CRMBRIDGE_DATABASE_URL" in result.output


def test_the_demo_hands_off_in_real_time_and_says_so(tmp_path) -> None:
    """`crmbridge demo` end to end on a small world: backfill, hand-offs, then form fills → deals by webhook."""
    import subprocess
    import sys
    from pathlib import Path

    crmbridge = Path(sys.executable).with_name("crmbridge")
    done = subprocess.run([str(crmbridge), "demo", "--contacts", "300", "--database", str(tmp_path / "demo.db")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    out = " ".join(done.stdout.split())
    assert "5 of 5 handed off in real time" in out
    assert out.count("form filled → deal") == 5
    assert "run again: 0 new hand-offs, 0 people to write, 0 write calls" in out
