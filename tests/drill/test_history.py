"""``drill history`` and ``drill report``: journals built here, listed, filtered and aggregated."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from prontuario_cli.drill import history as h
from prontuario_cli.drill.journal import Journal, StepRecord, TargetCheck
from prontuario_cli.errors import ExitCode
from tests.helpers import REPO, run

UTC = dt.timezone.utc


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_journal(drill, mode, started, *, verdict="passed", rto=None, lost=None, rpo=None, seconds=90.0, dry_run=False, reason=""):
    begin = at(started) if isinstance(started, str) else started
    journal = Journal(
        drill=drill,
        mode=mode,
        run_id=f"{begin:%Y%m%dT%H%M%SZ}-{drill}-{mode}-mac-studio-1-4242",
        inventory="/etc/prontuario/cluster.yaml",
        profile=None,
        started_at=iso(begin),
        ended_at=iso(begin + dt.timedelta(seconds=seconds)),
        dry_run=dry_run,
        verdict=verdict,
        reason=reason,
    )
    journal.steps = [StepRecord("method", f"fault: {mode}", "ok", iso(begin), iso(begin), 0.5, "done")]
    if rto is not None:
        journal.measurements["rto_s"] = rto
        journal.targets = [TargetCheck("RTO", rto, 30, "s", "<", rto < 30)]
    if lost is not None:
        journal.measurements["lost_acked_writes"] = lost
    if rpo is not None:
        journal.measurements["rpo_s"] = rpo
    return journal


@pytest.fixture(autouse=True)
def wide_tables(monkeypatch):
    """Piped tables are as wide as $COLUMNS; keep rows on one line whatever another test set."""
    monkeypatch.setenv("COLUMNS", "400")


@pytest.fixture
def reports(tmp_path):
    path = tmp_path / "reports"
    path.mkdir()
    return path


@pytest.fixture
def inventory(tmp_path, reports):
    text = (REPO / "cluster.example.yaml").read_text()
    text = text.rstrip("\n") + f"\n  reports_dir: {reports}\n"
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    return str(path)


def save(reports: Path, *journals: Journal) -> None:
    for journal in journals:
        journal.save(reports)


def audit_entries(state):
    path = state / "audit.jsonl"
    return [e for e in map(json.loads, path.read_text().splitlines()) if "outcome" in e] if path.exists() else []  # outcomes, not intents


# --------------------------------------------------------------------------- pure functions


def test_median_p95_and_max_on_known_values():
    values = [float(v) for v in range(20, 0, -1)]  # 1..20, unordered
    assert h.median(values) == 10.5
    assert h.percentile(values, 95) == 19.05  # (20-1)*0.95 = 18.05 -> 19 + 0.05
    assert h.percentile([4.0], 95) == 4.0 and h.median([]) is None
    assert h.median([3.0, 1.0, 2.0]) == 2.0


def test_expected_units_are_those_wholly_inside_the_period():
    since, until = at("2026-10-01T00:00"), at("2027-01-01T00:00")
    assert len(h.expected_units("daily", since, until)) == 92
    weeks = h.expected_units("weekly", since, until)
    assert weeks[0] == dt.date(2026, 10, 5) and weeks[-1] == dt.date(2026, 12, 21) and len(weeks) == 12
    assert h.expected_units("monthly", since, until) == [dt.date(2026, 10, 1), dt.date(2026, 11, 1), dt.date(2026, 12, 1)]
    # a period starting mid-day and ending mid-day expects neither partial day
    assert h.expected_units("daily", at("2026-10-01T12:00"), at("2026-10-04T08:00")) == [dt.date(2026, 10, 2), dt.date(2026, 10, 3)]


def test_parse_until_includes_a_bare_date():
    assert h.parse_until("2026-12-31") == at("2027-01-01T00:00")
    assert h.parse_until("2026-12-31T12:00") == at("2026-12-31T12:00")


def test_history_sorts_newest_first_and_filters():
    items = [
        make_journal("health", "checks", "2026-10-01T03:15"),
        make_journal("failover", "kill", "2026-10-06T03:45", rto=8.5, lost=0, rpo=0.0),
        make_journal("health", "checks", "2026-10-07T03:15"),
    ]
    entries = h.history(items)
    assert [e.started_at[:10] for e in entries] == ["2026-10-07", "2026-10-06", "2026-10-01"]
    assert [e.drill for e in h.history(items, drill="health")] == ["health", "health"]
    assert len(h.history(items, since=at("2026-10-05T00:00"))) == 2
    assert len(h.history(items, limit=1)) == 1
    failover = h.history(items, drill="failover")[0]
    assert (failover.rto_s, failover.lost_acked_writes, failover.rpo_s, failover.duration_s) == (8.5, 0, 0.0, 90.0)


def quarter_fixture():
    """Two weeks (Mon 2026-10-05 .. Sun 2026-10-18): health missing on the 8th and 9th, failover missing in week 2."""
    items = []
    for day in range(5, 19):
        if day in (8, 9):
            continue
        items.append(make_journal("health", "checks", f"2026-10-{day:02d}T03:15"))
    items += [
        make_journal("failover", "kill", "2026-10-06T03:45", rto=10.0, lost=0, rpo=0.0),
        make_journal("failover", "kill", "2026-10-07T10:00", rto=20.0, lost=2, rpo=0.4, verdict="target-missed", reason="RPO missed"),
        make_journal("failover", "switchover", "2026-10-06T05:00", rto=2.0, lost=0, rpo=0.0),
        make_journal("failover", "kill", "2026-10-13T03:45", dry_run=True),  # a rehearsal: not a run
        make_journal("cloud", "promote", "2026-10-10T04:30", rto=400.0, lost=0, rpo=12.0, verdict="target-missed"),
    ]
    return items


def test_compliance_report_numbers_gaps_and_exit_code():
    from prontuario_cli.inventory import Targets

    report = h.compliance_report(quarter_fixture(), since=at("2026-10-05T00:00"), until=at("2026-10-19T00:00"), targets=Targets())
    by = {(s.drill, s.mode): s for s in report.drills}
    assert [(s.drill, s.mode) for s in report.drills] == [
        ("health", "all"), ("failover", "all"), ("failover", "kill"), ("failover", "switchover"), ("cloud", "all")
    ]
    assert by["health", "all"].runs == 12 and by["health", "all"].passed == 12
    failover = by["failover", "all"]
    assert (failover.runs, failover.passed, failover.target_missed) == (3, 2, 1)
    assert (failover.rto_median_s, failover.rto_p95_s, failover.rto_max_s) == (10.0, 19.0, 20.0)
    assert (failover.lost_acked_writes, failover.worst_rpo_s, failover.rto_target_s, failover.rpo_target_s) == (2, 0.4, 30.0, 0.0)
    assert failover.targets_met is False  # 2 lost writes against an RPO of 0
    kill = by["failover", "kill"]
    assert (kill.runs, kill.rto_median_s, kill.rto_max_s) == (2, 15.0, 20.0)
    assert by["failover", "switchover"].targets_met is True
    cloud = by["cloud", "all"]
    assert (cloud.rto_max_s, cloud.rto_target_s, cloud.worst_rpo_s, cloud.targets_met) == (400.0, 300.0, 12.0, False)

    schedule = {c.drill: c for c in report.schedule}
    assert schedule["health"].expected == 14 and schedule["health"].done == 12
    assert schedule["health"].gaps == ("2026-10-08", "2026-10-09")
    assert schedule["failover"].expected == 2 and schedule["failover"].gaps == ("2026-10-12",)
    assert schedule["cloud"].expected == 0 and schedule["cloud"].kept  # no whole month in the period
    assert h.gap_ranges(schedule["health"].gaps, "daily") == "2026-10-08..2026-10-09 (2 days)"

    assert not report.compliant and report.exit_code() == ExitCode.TARGET_MISSED
    assert {e.verdict for e in report.exceptions} == {"target-missed"} and len(report.exceptions) == 2
    assert any("health: 2 of 14 days without a run" in p for p in report.problems)
    markdown = report.markdown()
    assert "| health | daily | 14 | 12 | 12 | **no** | 2026-10-08..2026-10-09 (2 days) |" in markdown


def test_a_clean_period_is_compliant():
    items = [make_journal("health", "checks", f"2026-10-{d:02d}T03:15") for d in range(5, 12)]
    items.append(make_journal("failover", "kill", "2026-10-06T03:45", rto=9.0, lost=0, rpo=0.0))
    report = h.compliance_report(items, since=at("2026-10-05T00:00"), until=at("2026-10-12T00:00"))
    assert report.compliant and report.exit_code() == ExitCode.OK and report.problems == ()


# --------------------------------------------------------------------------- reading files


def test_corrupt_and_foreign_files_are_unreadable_with_a_reason(reports):
    save(reports, make_journal("health", "checks", "2026-10-05T03:15"))
    (reports / "20261006T031500Z-health-checks-mac-studio-1-1.json").write_text("{not json")
    (reports / "list.json").write_text("[1, 2]")
    (reports / "20261007T031500Z-failover-kill-mac-studio-1-1.json").write_text(json.dumps({"drill": "failover", "verdict": "great"}))
    (reports / "binary.json").write_bytes(b"\xff\xfe\x00")
    (reports / ".half-written.json.1.tmp").write_text("x")
    items = h.read_journals(reports)
    bad = {Path(i.path).name: i for i in items if isinstance(i, h.UnreadableJournal)}
    assert len(items) == 5 and len(bad) == 4
    assert bad["20261006T031500Z-health-checks-mac-studio-1-1.json"].reason.startswith("not JSON")
    assert bad["20261006T031500Z-health-checks-mac-studio-1-1.json"].drill == "health"
    assert bad["20261006T031500Z-health-checks-mac-studio-1-1.json"].started == at("2026-10-06T03:15")
    assert bad["list.json"].reason.startswith("not a drill journal")
    assert "not a drill journal" in bad["20261007T031500Z-failover-kill-mac-studio-1-1.json"].reason
    assert bad["binary.json"].reason == "not UTF-8 text"


# --------------------------------------------------------------------------- the CLI


def test_history_cli_lists_newest_first_with_measurements(inventory, reports):
    save(
        reports,
        make_journal("health", "checks", "2026-10-05T03:15"),
        make_journal("failover", "kill", "2026-10-06T03:45", rto=8.25, lost=1, rpo=0.2, verdict="target-missed"),
        make_journal("cloud", "promote", "2026-10-01T04:30", rto=120.0, lost=0, rpo=3.0),
    )
    result = run("-i", inventory, "drill", "history", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["reports_dir"] == str(reports)
    assert [e["drill"] for e in data["entries"]] == ["failover", "health", "cloud"]
    first = data["entries"][0]
    assert first["verdict"] == "target-missed" and first["mode"] == "kill"
    assert (first["rto_s"], first["lost_acked_writes"], first["rpo_s"], first["duration_s"]) == (8.25, 1, 0.2, 90.0)
    assert first["journal"] == str(reports / f"{first['run_id']}.json")

    only = run("-i", inventory, "drill", "history", "--drill", "cloud", "--json").json()["entries"]
    assert [e["drill"] for e in only] == ["cloud"]
    assert len(run("-i", inventory, "drill", "history", "--limit", "2", "--json").json()["entries"]) == 2
    recent = run("-i", inventory, "drill", "history", "--since", "2026-10-05", "--json").json()["entries"]
    assert {e["drill"] for e in recent} == {"health", "failover"}

    table = run("-i", inventory, "drill", "history", "--format", "table")
    assert table.code == 0 and "target-missed" in table.out and "8.25" in table.out


def test_history_cli_reports_a_corrupt_journal_and_keeps_listing(inventory, reports):
    save(reports, make_journal("health", "checks", "2026-10-05T03:15"))
    (reports / "20261006T031500Z-health-checks-mac-studio-1-1.json").write_text('{"drill": "health", "steps": [')
    result = run("-i", inventory, "drill", "history", "--json")
    assert result.code == 0 and "Traceback" not in result.err
    entries = result.json()["entries"]
    assert [e["verdict"] for e in entries] == ["unreadable", "passed"]
    assert entries[0]["reason"].startswith("not JSON") and entries[0]["drill"] == "health"
    assert "unreadable" in run("-i", inventory, "drill", "history", "-f", "table").out


def test_history_cli_with_no_reports_dir_is_empty(tmp_path, inventory, reports):
    reports.rmdir()
    result = run("-i", inventory, "drill", "history", "--json")
    assert result.code == 0 and result.json()["entries"] == []


def test_report_cli_exit_codes(inventory, reports):
    save(reports, *quarter_fixture())
    missed = run("-i", inventory, "drill", "report", "--since", "2026-10-05", "--until", "2026-10-18", "--json")
    assert missed.code == ExitCode.TARGET_MISSED, missed.err
    data = missed.json()
    assert data["compliant"] is False
    assert {c["drill"]: c["gaps"] for c in data["schedule"]}["health"] == ["2026-10-08", "2026-10-09"]
    assert data["drills"][1]["rto_p95_s"] == 19.0

    save(reports, make_journal("health", "checks", "2026-11-02T03:15"))
    clean = run("-i", inventory, "drill", "report", "--since", "2026-11-02", "--until", "2026-11-02", "--json")
    assert clean.code == 0, clean.out
    assert clean.json()["problems"] == []

    table = run("-i", inventory, "drill", "report", "--since", "2026-10-05", "--until", "2026-10-18", "-f", "table")
    assert table.code == ExitCode.TARGET_MISSED and "NOT COMPLIANT" in table.out


def test_report_counts_an_unreadable_journal_as_a_problem(inventory, reports):
    save(reports, make_journal("health", "checks", "2026-11-02T03:15"))
    (reports / "20261102T091500Z-health-checks-mac-studio-1-1.json").write_text("garbage")
    result = run("-i", inventory, "drill", "report", "--since", "2026-11-02", "--until", "2026-11-02", "--json")
    assert result.code == ExitCode.TARGET_MISSED
    data = result.json()
    assert data["problems"] == ["1 journal file(s) could not be read"]
    assert data["exceptions"][0]["verdict"] == "unreadable"


def test_report_output_writes_markdown_and_json_audited(tmp_path, inventory, reports, isolated_state):
    save(reports, *quarter_fixture())
    target = tmp_path / "out" / "drills-2026Q4.md"
    target.parent.mkdir()
    args = ("-i", inventory, "drill", "report", "--since", "2026-10-05", "--until", "2026-10-18", "--output", str(target))

    dry = run(*args, "--dry-run", "--json")
    assert dry.code == ExitCode.TARGET_MISSED and "dry run" in dry.err
    assert not target.exists() and not target.with_suffix(".json").exists()
    assert audit_entries(isolated_state)[-1]["outcome"] == "dry-run"

    wrote = run(*args, "--json")
    assert wrote.code == ExitCode.TARGET_MISSED
    assert target.read_text().startswith("# Drill compliance report")
    assert json.loads(target.with_suffix(".json").read_text()) == wrote.json()
    entry = audit_entries(isolated_state)[-1]
    assert entry["command"] == "drill report" and entry["outcome"] == "ok" and entry["details"]["compliant"] is False

    # a different report over an existing file: asks (no terminal: refused), --yes replaces
    other = ("-i", inventory, "drill", "report", "--since", "2026-10-05", "--until", "2026-10-11", "--output", str(target))
    refused = run(*other, "--json")
    assert refused.code == ExitCode.USAGE and "needs confirmation" in refused.err
    assert "2026-10-19" in target.read_text()  # unchanged
    assert run(*other, "--yes", "--json").code == ExitCode.TARGET_MISSED
    assert "2026-10-19" not in target.read_text() and "→ 2026-10-12T00:00:00Z" in target.read_text()
    assert [e["outcome"] for e in audit_entries(isolated_state)] == ["dry-run", "ok", "failed", "ok"]


def test_report_usage_errors(inventory):
    assert run("-i", inventory, "drill", "report", "--since", "2026-10-05", "--yes").code == ExitCode.USAGE
    assert run("-i", inventory, "drill", "report", "--since", "2026-10-05", "--output", "x.json").code == ExitCode.USAGE
    bad = run("-i", inventory, "drill", "report", "--since", "2026-10-05", "--until", "soon")
    assert bad.code == ExitCode.USAGE and "--until 'soon'" in bad.err
    empty = run("-i", inventory, "drill", "report", "--since", "2026-10-05", "--until", "2026-10-01")
    assert empty.code == ExitCode.USAGE and "the period is empty" in empty.err
