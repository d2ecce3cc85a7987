"""Timeline changes: reported to every caller for a window (not consumed by the first
check), acknowledged on purpose, and not reported at all when a drill caused them."""

from __future__ import annotations

import dataclasses
import json

from prontuario_cli.replication import state
from prontuario_cli.replication.evaluate import evaluate
from prontuario_cli.replication.state import TimelineState
from prontuario_cli.report import Status
from tests.helpers import run as cli
from tests.replication import replication_fixtures as fx

SCOPE = "prontuario"
T0 = "2026-11-25T03:00:00+00:00"
T1 = "2026-11-25T03:05:00+00:00"  # five minutes later
T2 = "2026-11-25T09:00:00+00:00"  # six hours later
T3 = "2026-11-26T03:05:00+00:00"  # a day and five minutes later


def on_timeline(timeline: int):
    """The healthy lab's outcomes, with every PostgreSQL on ``timeline``."""
    outcomes = fx.healthy()
    for name in ("postgres:mac-studio-1", "postgres:mac-studio-2", "postgres:cloud"):
        outcomes = fx.replace_value(outcomes, name, timeline=timeline)
    return outcomes


def check(previous, timeline: int, at: str):
    """What ``replication check`` does: evaluate, then record what it saw."""
    report = evaluate(fx.inventory(), on_timeline(timeline), previous=previous, checked_at=at)
    return report, state.observe(previous, SCOPE, report.timeline, report.leader, at)


def timeline_problems(report) -> list[str]:
    return [p.message for p in report.problems if p.component == "timeline"]


def test_the_first_look_only_records():
    report, recorded = check(None, 1, T0)
    assert report.status == Status.OK and not report.timeline_changed
    assert recorded == TimelineState(SCOPE, 1, "mac-studio-1", T0)


def test_an_unexpected_change_warns_every_caller_for_the_window():
    _, recorded = check(None, 1, T0)
    first, recorded = check(recorded, 2, T1)
    assert first.status == Status.WARNING and first.timeline_changed
    assert (first.previous_timeline, first.timeline) == (1, 2)
    (message,) = timeline_problems(first)
    assert message.startswith("timeline changed 1→2 (first seen 2026-11-25T03:05:00+00:00")
    assert "until 2026-11-26T03:05:00+00:00" in message and "--ack-timeline" in message
    assert first.timeline_change["from"] == 1 and first.timeline_change["warn_until"] == "2026-11-26T03:05:00+00:00"
    # The second check (cron, or whoever looks next) still warns: the first did not consume it.
    second, again = check(recorded, 2, T1)
    assert second.status == Status.WARNING and timeline_problems(second) == [message]
    assert again == recorded  # nothing new to write
    later, _ = check(recorded, 2, T2)
    assert later.status == Status.WARNING
    # ... until the window has passed.
    expired, _ = check(recorded, 2, T3)
    assert expired.status == Status.OK and not expired.timeline_changed


def test_an_acknowledged_change_is_no_longer_reported():
    _, recorded = check(None, 1, T0)
    _, recorded = check(recorded, 2, T1)
    acked, change = state.acknowledge(recorded, "ana", T2)
    assert (change.from_timeline, change.to_timeline, change.acknowledged_by) == (1, 2, "ana")
    report, _ = check(acked, 2, T2)
    assert report.status == Status.OK
    assert state.acknowledge(acked, "ana", T2) == (acked, None)  # nothing left to acknowledge
    # A later change is a new one, reported again.
    newer, _ = check(acked, 3, T2)
    assert newer.status == Status.WARNING and "timeline changed 2→3" in timeline_problems(newer)[0]


def test_a_second_change_while_the_first_is_reported_is_merged():
    _, recorded = check(None, 1, T0)
    _, recorded = check(recorded, 2, T1)
    report, recorded = check(recorded, 3, T2)
    assert "timeline changed 1→3" in timeline_problems(report)[0]
    assert recorded.unexpected.first_seen == T2  # the window runs from the latest failover


def test_a_drill_change_is_expected_and_not_reported():
    _, recorded = check(None, 1, T0)
    after = state.record_expected(recorded, SCOPE, 1, 2, "mac-studio-2", "drill 20261125T0300Z-failover", T1)
    assert after.timeline == 2 and after.unexpected is None
    assert (after.expected.from_timeline, after.expected.to_timeline, after.expected.cause) == (1, 2, "drill 20261125T0300Z-failover")
    first, after_first = check(after, 2, T1)
    second, _ = check(after_first, 2, T1)
    assert first.status == second.status == Status.OK
    assert first.timeline_expected["cause"] == "drill 20261125T0300Z-failover"


def test_a_check_during_the_drill_does_not_turn_its_change_into_an_alarm():
    _, recorded = check(None, 1, T0)
    during, recorded = check(recorded, 2, T1)  # the cron check ran while the drill was failing over
    assert during.status == Status.WARNING
    after = state.record_expected(recorded, SCOPE, 1, 2, "mac-studio-2", "drill run-7", T1)
    report, _ = check(after, 2, T1)
    assert report.status == Status.OK, timeline_problems(report)


def test_a_change_nobody_saw_before_the_drill_stays_reported():
    _, recorded = check(None, 1, T0)
    # A failover to timeline 2 happened with no check running; then a drill went 2 -> 3.
    after = state.record_expected(recorded, SCOPE, 2, 3, "mac-studio-1", "drill run-8", T1)
    report, _ = check(after, 3, T1)
    assert report.status == Status.WARNING
    assert timeline_problems(report)[0].startswith("timeline changed 1→2")


def test_an_earlier_reported_change_survives_a_drill():
    _, recorded = check(None, 1, T0)
    _, recorded = check(recorded, 2, T1)  # unexpected, still reported
    after = state.record_expected(recorded, SCOPE, 2, 4, "mac-studio-1", "drill run-9", T2)
    report, _ = check(after, 4, T2)
    assert report.status == Status.WARNING and timeline_problems(report)[0].startswith("timeline changed 1→2")


def test_a_drill_that_changed_nothing_writes_nothing():
    _, recorded = check(None, 1, T0)
    assert state.record_expected(recorded, SCOPE, 1, 1, "mac-studio-1", "drill run-10", T1) is recorded
    assert state.record_expected(recorded, SCOPE, None, 2, "mac-studio-1", "drill run-10", T1) is recorded


def test_the_file_keeps_every_field_and_reads_the_old_format(tmp_path):
    _, recorded = check(None, 1, T0)
    _, recorded = check(recorded, 2, T1)
    recorded = dataclasses.replace(recorded, expected=state.TimelineChange(0, 1, T0, cause="drill run-1"))
    state.record_timeline(tmp_path, recorded)
    assert state.read_timeline(tmp_path, SCOPE) == recorded
    data = json.loads((tmp_path / state.TIMELINE_FILE).read_text())
    assert data["unexpected"]["from"] == 1 and data["expected"]["cause"] == "drill run-1"
    # A file written before changes were kept: a plain record, nothing pending.
    (tmp_path / state.TIMELINE_FILE).write_text(json.dumps({"scope": SCOPE, "timeline": 3, "leader": "a", "recorded_at": T0}))
    assert state.read_timeline(tmp_path, SCOPE) == TimelineState(SCOPE, 3, "a", T0)


def test_update_writes_only_a_change(tmp_path):
    path = tmp_path / state.TIMELINE_FILE
    state.update_timeline(tmp_path, SCOPE, lambda current: state.observe(current, SCOPE, 1, "a", T0))
    written = path.stat().st_mtime_ns
    state.update_timeline(tmp_path, SCOPE, lambda current: state.observe(current, SCOPE, 1, "a", T1))
    assert path.stat().st_mtime_ns == written
    state.update_timeline(tmp_path, SCOPE, lambda current: state.observe(current, SCOPE, 2, "b", T1))
    assert state.read_timeline(tmp_path, SCOPE).unexpected.to_timeline == 2


def test_ack_timeline_from_the_command_line(isolated_state, tmp_path):
    """``replication check --ack-timeline`` acknowledges (audited) and the warning is gone."""
    import socket

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    inventory = tmp_path / "cluster.yaml"
    inventory.write_text(
        f"""version: 1
nodes:
  - {{name: mac-studio-1, role: primary, address: 127.0.0.1, ports: {{postgresql: {free_port()}, patroni: {free_port()}}}}}
health_checks: {{timeout_s: 3}}
haproxy: {{socket: {tmp_path / 'no-haproxy.sock'}}}
""",
        encoding="utf-8",
    )
    _, recorded = check(None, 1, T0)
    _, recorded = check(recorded, 2, T1)
    state.record_timeline(isolated_state, dataclasses.replace(recorded, unexpected=dataclasses.replace(recorded.unexpected, first_seen=state_now())))
    before = cli("-i", str(inventory), "replication", "check", "--json")
    assert any(p["component"] == "timeline" for p in before.json()["problems"]), before.out
    acked = cli("-i", str(inventory), "replication", "check", "--ack-timeline", "--json")
    assert "acknowledged: timeline 1→2" in acked.err
    assert not any(p["component"] == "timeline" for p in acked.json()["problems"])
    assert state.read_timeline(isolated_state, SCOPE).unexpected.acknowledged_at
    entry = cli("audit", "show", "--json").json()["entries"][-1]
    assert entry["command"] == "replication check --ack-timeline" and entry["outcome"] == "ok"


def state_now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
