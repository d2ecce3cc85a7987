"""Pure parts of the cloud fallback: run journals, the emergency flag and its metric, the
lock, the notification command, the inventory fields, the RPO arithmetic, drill rules,
the runbooks' steps."""

from __future__ import annotations

import json
import stat

import pytest

from prontuario_cli.cluster import fallback
from prontuario_cli.errors import ConfigError, LockedError, OperationFailed, RefusedError, UsageError
from prontuario_cli.gcp import state as s
from prontuario_cli.gcp.data import ReplicaLag
from prontuario_cli.gcp.notify import notify
from prontuario_cli.inventory import parse_inventory
from prontuario_cli.runbook.state import RunState
from tests.helpers import EXAMPLE, run

# --------------------------------------------------------------------------- run journals


def test_run_state_round_trip_is_private_and_atomic(tmp_path):
    path = s.journal_path(tmp_path, s.PROMOTE, "replica/a")
    assert path.name == "gcp-promote-replica_a.json"  # the names on disk are those of earlier releases
    assert s.journal_path(tmp_path, s.FAILBACK, "replica-a").name == "gcp-failback-replica-a.json"
    state = RunState.create(path, run_id="r1", reason="both Macs lost")
    state.mark("promote", "started")
    state.set(promote={"status": "sending"})
    state.mark("promote", "done", detail="sent", seconds=0.1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    again = RunState.load(path)
    assert again.done("promote") and not again.done("notify")
    assert again.details("promote") == {"detail": "sent", "seconds": 0.1}
    assert again.get("promote") == {"status": "sending"} and not again.complete


def test_a_damaged_journal_is_named_not_ignored(tmp_path):
    path = tmp_path / "gcp-promote-x.json"
    path.write_text("{not json")
    with pytest.raises(OperationFailed, match="is damaged"):
        RunState.load(path)


def test_archive_moves_the_journal_aside(tmp_path):
    state = RunState.create(tmp_path / "gcp-failback-x.json", run_id="20261125T030000Z-abc")
    target = state.archive()
    assert target.name == "gcp-failback-x.20261125T030000Z-abc.done.json"
    assert RunState.load(tmp_path / "gcp-failback-x.json") is None


def test_the_lock_admits_one_run(tmp_path):
    with s.gcp_lock(tmp_path, "promote a"):
        with pytest.raises(LockedError, match=r"another cloud fallback command is running \(pid \d+, promote a"):
            with s.gcp_lock(tmp_path, "promote b"):
                pass
    with s.gcp_lock(tmp_path, "promote c"):
        pass
    assert (tmp_path / "gcp.lock").exists()


# --------------------------------------------------------------------------- the flag and the metric


def test_the_flag_is_what_replication_check_reads(tmp_path):
    gcp_fallback_active = fallback.fallback_active  # the one reader, used by replication.check
    assert not gcp_fallback_active(tmp_path)
    fallback.write_fallback(tmp_path, True, since="2026-11-25T03:00:00Z", instance="replica-a")
    assert gcp_fallback_active(tmp_path)
    assert stat.S_IMODE((tmp_path / fallback.FALLBACK_FILE).stat().st_mode) == 0o644
    fallback.write_fallback(tmp_path, False, ended_at="2026-11-25T05:00:00Z")
    data = fallback.read_fallback(tmp_path)
    assert not gcp_fallback_active(tmp_path) and data["since"] == "2026-11-25T03:00:00Z" and data["ended_at"]


def test_the_metric_is_replaced_in_place_keeping_the_others(tmp_path):
    textfile = tmp_path / "prontuario.prom"
    textfile.write_text(
        "# HELP up 1 when up.\n# TYPE up gauge\nup{job=\"mac-studio\",instance=\"mac-studio-1\"} 1\n"
        "# HELP gcp_fallback_active old help.\n# TYPE gcp_fallback_active gauge\ngcp_fallback_active 0\n"
        "# HELP gcp_fallback_active_extra another family.\n# TYPE gcp_fallback_active_extra gauge\ngcp_fallback_active_extra 7\n"
    )
    fallback.update_metric(textfile, True)
    text = textfile.read_text()
    lines = text.splitlines()
    assert lines.count("gcp_fallback_active 1") == 1 and "gcp_fallback_active 0" not in lines
    assert 'up{job="mac-studio",instance="mac-studio-1"} 1' in text and "gcp_fallback_active_extra 7" in text
    assert text.count("# TYPE gcp_fallback_active gauge") == 1


def test_the_metric_file_is_created_when_missing(tmp_path):
    path = fallback.update_metric(tmp_path / "sub" / "prontuario.prom", False)
    assert path.read_text().splitlines()[-1] == "gcp_fallback_active 0"


# --------------------------------------------------------------------------- notification


def test_notify_runs_without_a_shell_and_sends_the_event_on_stdin(tmp_path):
    out = tmp_path / "event.json"
    script = tmp_path / "notify.py"
    script.write_text(f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read()); print('sent to 200 users')\n")
    import sys

    said = notify([sys.executable, str(script)], {"event": "emergency-mode-on", "instance": "x"})
    assert "exited 0: sent to 200 users" in said
    assert json.loads(out.read_text())["event"] == "emergency-mode-on"
    # A string is split like a shell would, but never given to one: ';' is just an argument.
    said = notify(f"{sys.executable} {script} ; rm -rf /nonexistent", {"event": "x"})
    assert "exited 0" in said


def test_notify_failures_say_what_to_do(tmp_path):
    with pytest.raises(OperationFailed, match="not found"):
        notify(["/nonexistent/notify"], {})
    with pytest.raises(OperationFailed, match="exited 3: boom"):
        notify(["/bin/sh", "-c", "echo boom >&2; exit 3"], {})
    assert "tell the users yourself" in notify(None, {})


# --------------------------------------------------------------------------- inventory fields


def _inventory(extra: str) -> str:
    text = EXAMPLE.read_text()
    return text.replace("  credentials_file: /etc/prontuario/gcp-service-account.json\n", "  credentials_file: /etc/prontuario/gcp-service-account.json\n" + extra)


def test_notify_command_as_a_list_or_a_string():
    inv = parse_inventory(_inventory("  notify_command: [/usr/local/bin/notify, --emergency]\n"))
    assert inv.cloud.notify_command == ("/usr/local/bin/notify", "--emergency")
    inv = parse_inventory(_inventory("  notify_command: /usr/local/bin/notify --emergency\n  data_via: dsn\n"))
    assert inv.cloud.notify_command == "/usr/local/bin/notify --emergency" and inv.cloud.data_via == "dsn"
    assert inv.cloud.haproxy_server == "cloudsql" and inv.cloud.operation_timeout_s == 900


def test_bad_cloud_fields_are_named_with_their_line():
    with pytest.raises(ConfigError) as info:
        parse_inventory(_inventory("  notify_command: ''\n  data_via: proxy\n  api_timeout_s: 0\n"))
    text = info.value.one_line()
    assert "cloud.data_via: 'proxy' is not one of: dsn, connector" in text
    assert "cloud.notify_command: must not be empty" in text and "cloud.api_timeout_s: must be greater than 0" in text


# --------------------------------------------------------------------------- RPO arithmetic and drill rules


def lag(last_replay: float | None, server_now: float, measured_at: float) -> ReplicaLag:
    return ReplicaLag(True, "0/1", "0/1", 0, last_replay, server_now, "streaming", measured_at)


def test_rpo_bound_is_taken_on_the_servers_clock():
    # The server's clock is 100 s ahead of ours: it must not matter.
    measured = lag(last_replay=1_100.0, server_now=1_110.0, measured_at=1_006.0)
    assert measured.lag_s == 10.0
    assert measured.rpo_bound_s(down_since=1_000.0) == 4.0  # last commit 4 s before the Macs were seen down
    assert measured.rpo_bound_s(None) == 10.0
    assert lag(None, 1.0, 1.0).rpo_bound_s(0.0) is None
    assert lag(1_109.0, 1_110.0, 1_100.0).rpo_bound_s(1_000.0) == 0.0  # commits after "seen down": 0, not negative


def test_a_drill_never_promotes_the_live_replica(tmp_path):
    from prontuario_cli.gcp.promote import Promotion

    inv = parse_inventory(EXAMPLE.read_text())
    with pytest.raises(RefusedError, match="never promotes the live replica"):
        Promotion(inv, inv.cloud.sql_instance, "monthly drill", drill=True)
    drill = Promotion(inv, inv.cloud.drill_instance, "monthly drill")
    assert drill.drill and not drill.require_macs_down and not drill.route_writes and not drill.set_flag
    with pytest.raises(ConfigError, match="not in the inventory"):
        Promotion(inv, "someone-elses-instance", "x")


def test_stop_after_must_name_a_step_or_a_part():
    from prontuario_cli.gcp.failback import Failback
    from prontuario_cli.gcp.promote import Promotion

    inv = parse_inventory(EXAMPLE.read_text())
    assert Promotion(inv, reason="x", stop_after="promote").stop_after == "promote"
    assert Failback(inv, stop_after="restore").stop_after == "restore"  # a part of copy-data
    with pytest.raises(UsageError, match="'restore' is not a step of the promotion"):
        Promotion(inv, reason="x", stop_after="restore")
    with pytest.raises(UsageError, match="not a step of the failback"):
        Failback(inv, stop_after="promote")


def test_the_plans_list_every_step_in_order():
    from prontuario_cli.gcp.failback import Failback
    from prontuario_cli.gcp.promote import Promotion

    inv = parse_inventory(EXAMPLE.read_text())
    promote = [step.name for step in Promotion(inv, reason="x").steps()]
    assert promote == ["check-macs", "fence-routing", "fence-nodes", "check-instance", "measure-lag", "promote",
                       "wait-operation", "verify-write", "route-writes", "set-flag", "notify"]  # fmt: skip
    failback = Failback(inv)
    assert [step.name for step in failback.steps()] == ["check", "freeze-cloud", "start-macs", "copy-data", "verify-data",
                                                        "route-writes-back", "clear-flag", "rebuild-replica", "notify", "archive"]  # fmt: skip
    assert [step.name for step in failback.steps() if step.confirm] == ["freeze-cloud", "start-macs", "copy-data", "route-writes-back", "rebuild-replica"]
    plan = failback.plan()
    assert len(plan) == 10 and plan[1].startswith("FREEZE the cloud") and "re-create" in plan[7]


def test_resume_with_nothing_to_resume_is_a_usage_error():
    result = run("-i", str(EXAMPLE), "gcp", "failback", "--resume", "--yes")  # reads the state dir only
    assert result.code == 64, result.err
    assert "nothing to resume" in result.err
