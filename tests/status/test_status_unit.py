"""``prontuario status`` without a network: rows from fixtures, worst first, next actions, Nagios.

The replication rows are built from the answers a healthy lab gave (the replication
check's own fixtures), changed one fact at a time; drill rows from journals written to a
temporary reports directory; the audit row from a real log, then tampered with.
"""

from __future__ import annotations

import datetime as _dt
import json
import time

import pytest

from prontuario_cli.connect import warm_up
from prontuario_cli.connect.fanout import Outcome
from prontuario_cli.errors import ConfigError
from prontuario_cli.replication.evaluate import evaluate
from prontuario_cli.report import Status
from prontuario_cli.status import GRACE_S, assemble, collect
from prontuario_cli.status.audit_chain import row_from_verify
from prontuario_cli.status.cluster import rows_from_replication
from prontuario_cli.status.drills import next_due, rows_from_journals
from prontuario_cli.status.fallback import row_from_flag
from prontuario_cli.status.rows import Row, Source, worst_first
from tests.replication import replication_fixtures as fx

UTC = _dt.timezone.utc
NOW = _dt.datetime(2026, 10, 14, 12, 0, tzinfo=UTC)  # a Wednesday


def ok_row(name: str) -> Row:
    return Row("node", name, Status.OK, "up")


def source(name: str, rows):
    return Source(name, lambda inventory, deadline: rows)


def report_of(*sources: Source, outcomes=None):
    outcomes = outcomes or {s.name: Outcome(s.name, value=s.rows(None, 0.0)) for s in sources}
    return assemble(sources, outcomes, checked_at="2026-10-14T12:00:00+00:00", elapsed_s=0.42, timeout_s=2.0)


# --------------------------------------------------------------------------- ordering and verdict


def test_rows_are_worst_first_and_stable_within_a_status():
    rows = [
        Row("node", "a", Status.OK, "up"),
        Row("drill", "b", Status.WARNING, "x", "late", "run b"),
        Row("node", "c", Status.CRITICAL, "down", "gone", "look c"),
        Row("audit", "d", Status.UNKNOWN, "?", "?", "look d"),
        Row("drill", "e", Status.WARNING, "y", "late", "run e"),
        Row("node", "f", Status.OK, "up"),
    ]
    assert [r.name for r in worst_first(rows)] == ["c", "d", "b", "e", "a", "f"]


def test_the_report_is_the_worst_row_with_counts_actions_and_exit_code():
    report = report_of(
        source("one", [ok_row("mac-studio-1"), Row("drill", "drill failover", Status.WARNING, "late", "late", "prontuario drill failover --mode kill")]),
        source("two", [Row("audit", "audit log", Status.CRITICAL, "BROKEN", "edited", "prontuario audit verify")]),
    )
    assert report.status == Status.CRITICAL and int(report.exit_code()) == 2
    assert [r.name for r in report.rows] == ["audit log", "drill failover", "mac-studio-1"]
    assert report.rows[0].source == "two" and report.rows[2].source == "one"
    assert report.counts == {"ok": 1, "warning": 1, "critical": 1, "unknown": 0}
    assert report.actions == ("prontuario audit verify", "prontuario drill failover --mode kill")
    assert report.summary.startswith("2 problems: audit log: edited; drill failover: late")


def test_json_keys_are_stable():
    from prontuario_cli.report import to_jsonable

    data = to_jsonable(report_of(source("one", [ok_row("witness")])))
    assert list(data) == ["status", "summary", "checked_at", "elapsed_s", "timeout_s", "counts", "rows", "actions"]
    assert list(data["rows"][0]) == ["component", "name", "status", "state", "problem", "action", "details", "source"]
    assert data["status"] == "ok" and data["summary"] == "all 1 checks OK"


def test_a_source_that_fails_times_out_or_has_a_bug_is_one_unknown_row_naming_it():
    sources = (source("good", [ok_row("mac-studio-1")]), source("cfg", []), source("slow", []), source("buggy", []))
    outcomes = {
        "good": Outcome("good", value=[ok_row("mac-studio-1")]),
        "cfg": Outcome("cfg", error=ConfigError("secret postgres_password: not set", hint="export it")),
        "slow": Outcome("slow", timed_out=True),
        "buggy": Outcome("buggy", bug="TypeError: boom", traceback="Traceback ..."),
    }
    report = report_of(*sources, outcomes=outcomes)
    assert report.status == Status.UNKNOWN and int(report.exit_code()) == 3
    failed = {r.name: r.problem for r in report.rows if r.component == "source"}
    assert failed["cfg"] == "secret postgres_password: not set — export it"
    assert failed["slow"] == f"the slow source did not answer within {2.0 + GRACE_S:g} s"
    assert "this is a bug" in failed["buggy"] and report.bugs == (("buggy", "Traceback ..."),)
    assert report.rows[-1].name == "mac-studio-1"


def test_collect_is_bounded_by_one_deadline_whatever_a_source_does():
    """A source stuck past the deadline is abandoned: the look costs timeout + grace, no more."""
    import threading

    release = threading.Event()

    def stuck(inventory, deadline):
        release.wait(30)
        return []

    fast = Source("fast", lambda inventory, deadline: [ok_row("mac-studio-1")])
    warm_up("httpx", "psycopg", "redis")  # first imports are not what is measured
    try:
        started = time.monotonic()
        report = collect(fx.inventory(), timeout_s=0.3, sources=(fast, Source("stuck", stuck)))
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed < 0.3 + GRACE_S + 0.3
    assert [r.name for r in report.rows] == ["stuck", "mac-studio-1"] and report.rows[0].status == Status.UNKNOWN


def test_sources_run_concurrently():
    warm_up("httpx", "psycopg", "redis")

    def sleepy(inventory, deadline):
        time.sleep(0.3)
        return [ok_row("x")]

    started = time.monotonic()
    report = collect(fx.inventory(), timeout_s=2.0, sources=tuple(Source(f"s{i}", sleepy) for i in range(4)))
    assert time.monotonic() - started < 0.9 and report.counts["ok"] == 4


# --------------------------------------------------------------------------- Nagios


def test_nagios_line_and_exit_code():
    report = report_of(
        source("drills", [Row("drill", "drill failover", Status.WARNING, "OVERDUE", "no failover drill in week of 2026-10-05", "prontuario drill failover --mode kill")]),
        source("nodes", [ok_row("mac-studio-1")]),
    )
    line = report.nagios().line()
    assert line.startswith("PRONTUARIO WARNING - 1 problem: drill failover: no failover drill in week of 2026-10-05 | ")
    assert "critical=0;;0;0" in line and "warning=1;0;;0" in line and "elapsed=0.42s;;2;0" in line
    assert "\n" not in line and int(report.exit_code()) == 1


def test_nagios_ok_line_carries_the_rows_perfdata():
    report = report_of(source("all", rows_from_replication(evaluate(fx.inventory(), fx.healthy()), fx.inventory())))
    line = report.nagios().line()
    assert line.startswith("PRONTUARIO OK - all ") and "PostgreSQL leader mac-studio-1" in line
    assert "macs_up=2;;;0;2" in line and "pg_sync_lag=" in line and "sentinels_agreeing=3;;;0;3" in line


# --------------------------------------------------------------------------- replication rows


def rows(outcomes=None, **evaluate_kw) -> dict[str, Row]:
    inventory = fx.inventory()
    report = evaluate(inventory, outcomes or fx.healthy(), **evaluate_kw)
    return {row.name: row for row in rows_from_replication(report, inventory)}


def test_a_healthy_cluster_reads_as_one_row_per_node_and_component():
    found = rows()
    assert list(found) == ["mac-studio-1", "mac-studio-2", "witness", "PostgreSQL", "etcd", "Redis", "Sentinels", "HAProxy", "cloud replica"]
    assert all(row.status == Status.OK and not row.action for row in found.values())
    assert found["mac-studio-1"].state.startswith("up: PostgreSQL leader, timeline ")
    replica = found["mac-studio-2"]
    assert ", lag 0 ms" in replica.state and replica.details["sync_state"] == "sync" and replica.details["redis_role"] == "replica"
    assert found["witness"].state == "up: Sentinel agrees; etcd leader"
    assert found["HAProxy"].state.startswith("writes → mac-studio-1; reads → ")
    assert found["Sentinels"].state.startswith("3/3 agree on mac-studio-1")


def test_a_node_that_does_not_answer_is_named_with_its_next_action():
    outcomes = dict(fx.healthy())
    for probe in [name for name in outcomes if name.endswith(":mac-studio-2")]:  # every service of the node
        outcomes[probe] = fx.no_answer(probe)
    found = rows(outcomes)
    node = found["mac-studio-2"]
    assert node.status in (Status.UNKNOWN, Status.CRITICAL)
    assert node.state.startswith("NO ANSWER") and "within 1 s" in node.problem
    assert node.action == "prontuario replication status"
    assert found["mac-studio-1"].status == Status.OK


@pytest.mark.parametrize("how, word", [(fx.refused, "DOWN"), (fx.no_answer, "NO ANSWER")])
def test_the_witness_down_or_frozen(how, word):
    outcomes = dict(fx.healthy())
    for probe in ("sentinel:witness", "etcd:witness"):
        outcomes[probe] = how(probe)
    node = rows(outcomes)["witness"]
    assert node.status != Status.OK and node.state.startswith(word) and node.details["reachable"] == word.lower()
    assert node.problem.endswith(": Sentinel, etcd") and node.action == "prontuario replication status"


def test_both_macs_lost_points_at_the_cloud_fallback_runbook():
    outcomes = dict(fx.healthy())
    for node in ("mac-studio-1", "mac-studio-2"):
        for probe in [name for name in outcomes if name.endswith(f":{node}")]:
            outcomes[probe] = fx.refused(probe)
    found = rows(outcomes)
    assert found["mac-studio-1"].action == found["mac-studio-2"].action == "prontuario gcp status"
    assert found["mac-studio-1"].state.startswith("DOWN")
    assert found["Sentinels"].status == Status.CRITICAL  # 1 of 3: no majority
    assert found["etcd"].status == Status.CRITICAL and "NO QUORUM" in found["etcd"].state


def test_an_unexpected_timeline_change_asks_to_acknowledge_it():
    from prontuario_cli.replication.state import TimelineState

    healthy = evaluate(fx.inventory(), fx.healthy())
    previous = TimelineState("prontuario", healthy.timeline - 1, "mac-studio-2", "2026-10-14T11:00:00+00:00")
    row = rows(previous=previous)["PostgreSQL"]
    assert row.status == Status.WARNING and row.action == "prontuario replication check --ack-timeline"
    assert f"timeline {healthy.timeline - 1}→{healthy.timeline}" in row.state


def test_the_fallback_problem_is_left_to_the_fallback_row():
    found = rows(gcp_active=True)
    assert "fallback is active" not in found["cloud replica"].problem


# --------------------------------------------------------------------------- fallback, etcd, audit


def test_an_active_fallback_is_critical_and_points_at_gcp_status():
    row = row_from_flag({"active": True, "since": "2026-10-14T03:00:00Z", "instance": "prontuario-pg-replica", "reason": "both Macs lost"})
    assert row.status == Status.CRITICAL and row.action == "prontuario gcp status"
    assert row.state == "ACTIVE since 2026-10-14T03:00:00Z on prontuario-pg-replica" and "both Macs lost" in row.problem
    assert row_from_flag({}).status == Status.OK and row_from_flag({"active": False}).state.startswith("off")


def test_etcd_row_from_the_replication_check():
    def rows_with(*frozen: str) -> dict:
        outcomes = fx.healthy()
        for node in frozen:
            outcomes[f"etcd:{node}"] = fx.no_answer(f"etcd:{node}")
        return rows(outcomes)

    healthy = rows_with()["etcd"]
    assert healthy.status == Status.OK and healthy.state == "3/3 members healthy, leader witness; failsafe on"
    one = rows_with("witness")["etcd"]
    assert one.status == Status.WARNING and one.problem.startswith("etcd has no spare vote (witness: no answer")
    assert one.action == "etcdctl --endpoints=http://127.0.0.1:26002,http://127.0.0.1:26022,http://127.0.0.1:26042 endpoint status -w table"
    lost = rows_with("witness", "mac-studio-2")
    assert lost["etcd"].status == Status.CRITICAL and "NO QUORUM (needs 2)" in lost["etcd"].state
    assert "etcd has no quorum" not in lost["witness"].problem  # the cause sits on the etcd row
    assert lost["witness"].state == "up: Sentinel agrees; etcd no answer"


def test_an_intact_audit_chain_is_ok(tmp_path):
    from prontuario_cli.audit import AuditLog

    log = AuditLog(tmp_path / "audit.jsonl")
    for n in range(3):
        log.append({"command": f"drill health {n}"})
    row = row_from_verify(log.verify())
    assert row.status == Status.OK and row.state == "3 entries, chain intact" and not row.action


def test_an_operation_without_outcome_is_said_but_stays_ok(tmp_path):
    """A kill -9 between intent and outcome: the chain is intact, the row says what is open."""
    from prontuario_cli.audit import AuditLog

    log = AuditLog(tmp_path / "audit.jsonl")
    log.append({"command": "gcp promote", "phase": "intent", "id": "0123456789abcdef"})
    row = row_from_verify(log.verify())
    assert row.status == Status.OK and row.state == "1 entries, chain intact, 1 warning"
    assert "'gcp promote'" in row.problem and "no outcome recorded" in row.problem and row.action == "prontuario audit verify"


def test_a_broken_audit_chain_is_critical_and_asks_for_audit_verify(tmp_path):
    from prontuario_cli.audit import AuditLog

    log = AuditLog(tmp_path / "audit.jsonl")
    for n in range(3):
        log.append({"command": f"drill health {n}"})
    lines = log.path.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["command"] = "something else"
    lines[1] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    log.path.write_text("\n".join(lines) + "\n")
    row = row_from_verify(log.verify())
    assert row.status == Status.CRITICAL and row.action == "prontuario audit verify"
    assert row.state.startswith("BROKEN") and "entry 2 (line 2) was edited" in row.problem


# --------------------------------------------------------------------------- drills


def journal(tmp_path, drill: str, started: _dt.datetime, verdict: str = "passed", dry_run: bool = False, mode: str = "kill"):
    """Write a journal like a real run's; return its path."""
    from prontuario_cli.drill.journal import Journal

    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    j = Journal(drill=drill, mode=mode, run_id=f"{stamp}-{drill}-{mode}-host-1", inventory="cluster.yaml", profile=None,
                started_at=started.isoformat().replace("+00:00", "Z"), ended_at=(started + _dt.timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
                dry_run=dry_run, verdict=verdict, reason="" if verdict == "passed" else "RTO 41 s > 30 s", measurements={"rto_s": 21.5})
    j.save(tmp_path)
    return j


def drill_rows_in(tmp_path, now=NOW) -> dict[str, Row]:
    from prontuario_cli.drill.history import read_journals

    return {row.name: row for row in rows_from_journals(read_journals(tmp_path), now, str(tmp_path))}


def test_next_due_follows_the_drill_history_cadence():
    tuesday = _dt.datetime(2026, 9, 29, 3, 45, tzinfo=UTC)
    assert next_due("weekly", tuesday) == (_dt.date(2026, 10, 5), _dt.datetime(2026, 10, 12, tzinfo=UTC))
    assert next_due("daily", tuesday) == (_dt.date(2026, 9, 30), _dt.datetime(2026, 10, 1, tzinfo=UTC))
    assert next_due("monthly", _dt.datetime(2026, 10, 31, 23, 0, tzinfo=UTC)) == (_dt.date(2026, 11, 1), _dt.datetime(2026, 12, 1, tzinfo=UTC))
    # A run at midnight sharp keeps its own day: the next is still due the day after.
    assert next_due("daily", _dt.datetime(2026, 10, 1, tzinfo=UTC)) == (_dt.date(2026, 10, 2), _dt.datetime(2026, 10, 3, tzinfo=UTC))


def test_drills_on_schedule_are_ok(tmp_path):
    journal(tmp_path, "health", NOW - _dt.timedelta(hours=9))
    journal(tmp_path, "failover", _dt.datetime(2026, 10, 6, 3, 45, tzinfo=UTC))  # last week's Tuesday
    journal(tmp_path, "cloud", _dt.datetime(2026, 9, 1, 4, 30, tzinfo=UTC))  # September: October may still run it
    journal(tmp_path, "dcs", _dt.datetime(2026, 9, 1, 6, 30, tzinfo=UTC))  # after the cloud drill, the same day
    found = drill_rows_in(tmp_path)
    assert [r.status for r in found.values()] == [Status.OK] * 4
    assert found["drill failover"].state == "last 2026-10-06 03:45Z passed, RTO 21.5 s; next due week of 2026-10-12"
    assert found["drill cloud"].details["due_by"] == "2026-11-01T00:00:00Z"


def test_an_overdue_drill_stands_out_with_the_command_to_run(tmp_path):
    journal(tmp_path, "health", NOW - _dt.timedelta(hours=9))
    journal(tmp_path, "failover", _dt.datetime(2026, 9, 29, 3, 45, tzinfo=UTC))  # nothing in the week of 10-05
    journal(tmp_path, "cloud", _dt.datetime(2026, 9, 1, 4, 30, tzinfo=UTC))
    journal(tmp_path, "failover", _dt.datetime(2026, 10, 13, 3, 45, tzinfo=UTC), dry_run=True)  # a dry run does not count
    row = drill_rows_in(tmp_path)["drill failover"]
    assert row.status == Status.WARNING and row.details["overdue"] is True
    assert row.state.startswith("OVERDUE since 2026-10-12 00:00Z (weekly)")
    assert row.problem == "no failover drill in week of 2026-10-05"
    assert row.action == "prontuario drill failover --mode kill"


def test_a_drill_never_run_and_a_failed_last_run_are_warnings(tmp_path):
    journal(tmp_path, "health", NOW - _dt.timedelta(hours=9), verdict="target-missed")
    found = drill_rows_in(tmp_path)
    assert found["drill cloud"].state == "NEVER RUN (monthly)" and found["drill cloud"].action == "prontuario drill cloud"
    health = found["drill health"]
    assert health.status == Status.WARNING and health.problem == "the last run target-missed: RTO 41 s > 30 s"
    assert health.action == "prontuario drill history --drill health --limit 1"


def test_status_rows_show_overdue_drill_and_broken_chain_first(tmp_path):
    """The whole report, end to end through the table: problems on top, each with its →."""
    import io

    from prontuario_cli.audit import AuditLog
    from prontuario_cli.cli.output import render

    journal(tmp_path, "failover", _dt.datetime(2026, 9, 1, 3, 45, tzinfo=UTC))
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append({"command": "gcp promote"})
    log.append({"command": "gcp failback"})
    log.path.write_text(log.path.read_text().splitlines()[1] + "\n")  # the first entry deleted
    drills = rows_from_journals(__import__("prontuario_cli.drill.history", fromlist=["x"]).read_journals(tmp_path), NOW)
    report = report_of(
        source("replication", list(rows().values())),
        source("drills", drills),
        source("audit", [row_from_verify(log.verify())]),
    )
    assert report.rows[0].name == "audit log" and report.rows[0].status == Status.CRITICAL
    assert {r.name for r in report.rows if r.status == Status.WARNING} == {"drill health", "drill failover", "drill cloud", "drill dcs"}
    out = io.StringIO()
    render(report, "table", out, color=False, width=80)
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "→ prontuario audit verify" in text and "→ prontuario drill failover --mode kill" in text
    assert text.index("audit log") < text.index("drill failover") < text.index("mac-studio-1")


@pytest.mark.parametrize("fmt", ["json", "nagios", "table"])
def test_the_command_through_the_cli_with_fake_sources(monkeypatch, fmt):
    """`prontuario status` renders whatever the sources say, and exits with the Nagios status."""
    from prontuario_cli.status import sources
    from tests.helpers import run

    fake = (
        source("nodes", [ok_row("mac-studio-1"), ok_row("mac-studio-2"), ok_row("witness")]),
        source("audit", [Row("audit", "audit log", Status.CRITICAL, "BROKEN", "entry 2 was edited", "prontuario audit verify")]),
    )
    monkeypatch.setattr(sources, "SOURCES", fake)
    result = run("-i", str(fx.INVENTORY), "status", "--format", fmt)
    assert result.code == 2, result.err
    if fmt == "json":
        data = json.loads(result.out)
        assert data["status"] == "critical" and data["rows"][0]["action"] == "prontuario audit verify"
    elif fmt == "nagios":
        assert result.out.startswith("PRONTUARIO CRITICAL - 1 problem: audit log: entry 2 was edited | ") and result.out.count("\n") == 1
    else:
        assert "→ prontuario audit verify" in result.out


def test_watch_options_are_checked():
    from tests.helpers import run

    assert run("-i", str(fx.INVENTORY), "status", "5").code == 64  # SECONDS without --watch
    refused = run("-i", str(fx.INVENTORY), "status", "--watch", "--format", "table")  # no terminal here
    assert refused.code == 64 and "JSON lines" in refused.err
    assert run("-i", str(fx.INVENTORY), "status", "--watch", "0").code == 64


def test_watch_without_a_terminal_prints_json_lines(monkeypatch):
    from prontuario_cli.status import sources
    from tests.helpers import run

    monkeypatch.setattr(sources, "SOURCES", (source("nodes", [ok_row("mac-studio-1")]),))
    result = run("-i", str(fx.INVENTORY), "status", "--watch", "0.1", "--count", "3")
    lines = result.out.splitlines()
    assert result.code == 0 and len(lines) == 3
    assert all(json.loads(line)["status"] == "ok" for line in lines)
    nagios = run("-i", str(fx.INVENTORY), "status", "-w", "0.1", "-n", "2", "--format", "nagios")
    assert nagios.code == 0 and [line.split(" - ")[0] for line in nagios.out.splitlines()] == ["PRONTUARIO OK"] * 2
