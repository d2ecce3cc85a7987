"""``replication check`` against the real lab: green when healthy, and the right verdict,
within the health-check timeout + 0.5 s, when a replica is stopped, a PostgreSQL hangs
(SIGSTOP) or the Redis replica is killed. Each test first waits (bounded) for a healthy lab,
reads the roles from it (whichever Mac leads), and leaves the lab healthy again.
"""

from __future__ import annotations

import signal
import time

import pytest

from prontuario_cli.inventory import load_inventory
from tests.helpers import run

pytestmark = pytest.mark.lab

RECOVERY_S = 90  # Patroni rejoin + sync standby, Redis resync, HAProxy rise: well under this


def check(lab, *extra: str):
    """Run ``replication check --json`` in-process; return (result, wall seconds)."""
    started = time.monotonic()
    result = run("-i", str(lab.inventory_path), "replication", "check", "--json", *extra)
    return result, time.monotonic() - started


def bound(lab) -> float:
    return load_inventory(lab.inventory_path).health_checks.timeout_s + 0.5


def wait_healthy(lab, within: float = RECOVERY_S) -> dict:
    """Poll until the check is OK; fail with the last problems if it never is."""
    from prontuario_cli.poll import wait_for

    seen = {"last": "no check yet"}

    def healthy():
        result, _ = check(lab)
        seen["last"] = (result.json().get("problems") if result.out.strip() else result.err) or f"exit {result.code}"
        return result.json() if result.code == 0 else None

    data, _ = wait_for("a healthy lab", healthy, within, interval_s=1.0, last_state=lambda: str(seen["last"]))
    return data


def member(data: dict, node: str) -> dict:
    return next(m for m in data["members"] if m["node"] == node)


def test_a_healthy_lab_is_green(lab):
    wait_healthy(lab)
    result, elapsed = check(lab)
    assert result.code == 0, result.out
    data = result.json()
    assert data["status"] == "ok"
    sync = [r for r in data["replicas"] if r["sync_state"] == "sync"]
    assert [r["node"] for r in sync] == ["mac-studio-2"] or [r["node"] for r in sync] == ["mac-studio-1"]
    assert data["leader"] in ("mac-studio-1", "mac-studio-2") and data["timeline"] >= 1
    assert sum(1 for h in data["haproxy"] if h["takes_writes"]) == 1
    assert all(s["agrees"] for s in data["sentinels"])
    assert elapsed < bound(lab)


def test_nagios_and_prometheus_on_a_healthy_lab(lab, tmp_path):
    import subprocess

    from tests.monitor.promtool_harness import promtool_path  # promtool is required: missing, the test fails

    wait_healthy(lab)
    target = tmp_path / "prontuario.prom"
    result = run("-i", str(lab.inventory_path), "replication", "check", "-f", "nagios", "--prometheus", str(target))
    assert result.code == 0 and result.out.startswith("PRONTUARIO OK - ")
    assert "pg_lag_bytes_" in result.out
    text = target.read_text()
    assert "postgresql_replication_lag_seconds{" in text and 'up{job="witness",instance="witness"} 1' in text
    checked = subprocess.run([promtool_path(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _replica(lab) -> str:
    data = wait_healthy(lab)
    return next(m["node"] for m in data["members"] if m["kind"] == "patroni" and m["node"] != data["leader"])


def test_stopped_replica_is_critical(lab):
    replica = _replica(lab)
    lab.stop(f"patroni-{replica}", timeout_s=20)
    try:
        result, elapsed = check(lab)
        assert result.code == 2, result.out
        data = result.json()
        assert data["status"] == "critical"
        assert member(data, replica)["reachable"] == "down"
        assert elapsed < bound(lab)
    finally:
        lab.start(f"patroni-{replica}")
    wait_healthy(lab)


def test_hung_postgres_is_reported_within_the_timeout(lab):
    replica = _replica(lab)
    pid = lab.kill(f"postgres-{replica}", signal.SIGSTOP)
    assert pid, "no postmaster to stop"
    try:
        result, elapsed = check(lab)
        data = result.json()
        assert result.code in (2, 3), data["summary"]
        assert result.code == {"critical": 2, "unknown": 3}[data["status"]]
        assert member(data, replica)["reachable"] == "no answer"
        assert elapsed < bound(lab)
    finally:
        lab.kill(f"postgres-{replica}", signal.SIGCONT)
    wait_healthy(lab)


def test_killed_redis_replica_is_critical(lab):
    data = wait_healthy(lab)
    replica = next(r["node"] for r in data["redis"] if r["role"] == "replica")
    lab.kill(f"redis-{replica}", signal.SIGKILL)
    try:
        result, elapsed = check(lab)
        assert result.code == 2, result.out
        data = result.json()
        row = next(r for r in data["redis"] if r["node"] == replica)
        assert row["reachable"] == "down" and row["status"] == "critical"
        assert elapsed < bound(lab)
    finally:
        lab.start(f"redis-{replica}")
    wait_healthy(lab)


def timeline_problems(result) -> list[str]:
    return [p["message"] for p in result.json()["problems"] if p["component"] == "timeline"]


def test_a_timeline_change_is_reported_to_every_check_until_acknowledged(lab, isolated_state):
    import json

    from prontuario_cli.replication.state import TIMELINE_FILE

    data = wait_healthy(lab)  # the first check records the timeline
    record = json.loads((isolated_state / TIMELINE_FILE).read_text())
    assert record["timeline"] == data["timeline"]
    # Pretend the last check saw an older timeline: every later check reports the change.
    record["timeline"] = data["timeline"] - 1
    (isolated_state / TIMELINE_FILE).write_text(json.dumps(record))
    first, _ = check(lab)
    second, _ = check(lab)
    for result in (first, second):
        assert result.code == 1 and result.json()["timeline_changed"], result.out
        assert timeline_problems(result)[0].startswith(f"timeline changed {data['timeline'] - 1}→{data['timeline']}")
    acked, _ = check(lab, "--ack-timeline")
    assert acked.code == 0 and not acked.json()["timeline_changed"], acked.out
    assert "acknowledged" in acked.err


def test_a_drill_switchover_does_not_warn_the_next_checks(lab):
    data = wait_healthy(lab)
    drill = run("-i", str(lab.inventory_path), "drill", "failover", "--mode", "switchover", "--yes", "--json")
    journal = drill.json()
    assert drill.code == 0, journal["reason"]
    for _ in range(2):
        result, _ = check(lab)
        assert not timeline_problems(result), result.out
        assert result.json()["timeline"] > data["timeline"]
        assert result.json()["timeline_expected"]["cause"] == f"drill {journal['run_id']}"
    assert journal["timeline"].startswith(f"timeline {data['timeline']}→") and "recorded as expected" in journal["timeline"]


def test_an_unexpected_switchover_warns_two_checks_in_a_row(lab):
    from prontuario_cli.cluster import patroni
    from prontuario_cli.poll import wait_for

    inventory = load_inventory(lab.inventory_path)
    data = wait_healthy(lab)
    leader = data["leader"]
    standby = next(r["node"] for r in data["replicas"] if r["sync_state"] == "sync")
    # Patroni accepts a switchover only to the standby its sync key names (set on its next loop).
    wait_for(f"Patroni naming {standby} sync standby", lambda: patroni.sync_standby(patroni.cluster_view(inventory)) == standby, 30)
    patroni.switchover(inventory, leader, standby)  # nobody announced it: not a drill

    def switched():
        result, _ = check(lab)
        only_timeline = all(p["component"] == "timeline" for p in result.json()["problems"])
        return result.json()["leader"] == standby and result.code == 1 and only_timeline

    wait_for(f"{standby} leading, the rest healthy", switched, RECOVERY_S, interval_s=1.0)
    for _ in range(2):  # not consumed by the first look: monitoring and people both see it
        result, _ = check(lab)
        assert result.code == 1, result.out
        (message,) = timeline_problems(result)
        assert message.startswith(f"timeline changed {data['timeline']}→") and f"leader now {standby}, was {leader}" in message
    acked, _ = check(lab, "--ack-timeline")
    assert acked.code == 0, acked.out


def test_a_frozen_sync_standby_is_critical_and_named_within_the_bound(lab):
    """SIGSTOP the sync standby (every PostgreSQL process and Patroni) while a client writes:
    commits wait for it. The check must say CRITICAL, name the standby, and never show 0 s of
    lag with bytes behind — each check within timeout + 0.5 s."""
    from prontuario_cli.cluster import haproxy as ha
    from prontuario_cli.cluster.nodes import node_access
    from prontuario_cli.drill.probes import pg_write_probe, prepare_table
    from prontuario_cli.poll import wait_for

    inventory = load_inventory(lab.inventory_path)
    data = wait_healthy(lab)
    standby = next(r["node"] for r in data["replicas"] if r["sync_state"] == "sync")
    target = ha.frontend_target(inventory, application_name="prontuario-test")
    prepare_table(target)
    access = node_access(inventory)
    writes = None
    seen: dict = {}
    try:
        access.act(standby, "postgres", "hang")
        writes = pg_write_probe(target, f"frozen-{time.time_ns()}", max_duration_s=30).start()

        def critical():
            result, elapsed = check(lab)
            assert elapsed < bound(lab), f"the check took {elapsed:.2f} s"
            report = result.json()
            seen["last"] = report["summary"]
            row = next((r for r in report["replicas"] if r["node"] == standby), None)
            if row is not None and (row["replay_lag_bytes"] or 0) > 0:
                assert row["lag_s"] is None or row["lag_s"] > 0, row  # never 0 s with bytes behind
            named = [p for p in report["problems"] if p["status"] == "critical" and standby in p["message"]
                     and ("commits are waiting for sync standby" in p["message"] or "has not replied" in p["message"])]
            return result.code == 2 and named and report

        wait_for(f"CRITICAL naming {standby}", critical, 15, interval_s=0.5, last_state=lambda: seen.get("last", ""))

        # Past Patroni's ttl its member key expires: the node is frozen, not "stopped or never joined".
        def frozen():
            result, elapsed = check(lab)
            assert elapsed < bound(lab), f"the check took {elapsed:.2f} s"
            messages = [p["message"] for p in result.json()["problems"]]
            seen["last"] = "; ".join(messages)
            assert not [m for m in messages if m.startswith(f"{standby}: not a member")], messages
            return result.code == 2 and any(m.startswith(f"{standby}: not answering (frozen?)") for m in messages)

        wait_for(f"{standby} reported as not answering (frozen?)", frozen, 45, interval_s=1.0, last_state=lambda: seen.get("last", ""))
    finally:
        access.act(standby, "postgres", "resume")
        if writes is not None:
            writes.stop()
    wait_healthy(lab)


def test_a_query_on_a_hung_backend_is_cut_at_the_deadline(lab):
    """The server-side statement_timeout cannot fire in a stopped process: the watchdog must.

    The query runs in a thread, so that without the watchdog this test fails (the thread is
    still blocked at deadline + 0.5 s) instead of hanging; the backend is resumed either way.
    """
    import os
    import threading

    from prontuario_cli.connect import TimedOut
    from prontuario_cli.connect.postgres import PgTarget, session

    leader = wait_healthy(lab)["leader"]
    inventory = load_inventory(lab.inventory_path)
    node = inventory.node(leader)
    target = PgTarget(node.address, node.ports.postgresql, dbname=inventory.cluster.database)
    stopped: list[int] = []
    outcome: dict = {}

    def query(deadline: float) -> None:
        try:
            with session(target, deadline) as pg:
                backend = pg.execute("SELECT pg_backend_pid() AS pid")[0]["pid"]
                stopped.append(backend)  # first: whatever happens next, it is resumed
                os.kill(backend, signal.SIGSTOP)
                pg.execute("SELECT 1")
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=query, args=(started + 1.0,), daemon=True)
    thread.start()
    try:
        thread.join(1.0 + 0.5)
        elapsed = time.monotonic() - started
        blocked = thread.is_alive()
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        thread.join(10)
    assert stopped, f"the backend was never stopped: {outcome}"
    assert not blocked, f"the query was still blocked {elapsed:.1f} s after a 1 s deadline: is the watchdog armed?"
    assert isinstance(outcome.get("error"), TimedOut), outcome


def test_haproxy_through_the_stats_page_when_no_socket_is_known(lab, tmp_path):
    """Without haproxy.socket or a lab section, HAProxy is read from its stats page (CSV)."""
    wait_healthy(lab)
    lines = lab.inventory_path.read_text().splitlines()
    start = lines.index("lab:")
    inventory = tmp_path / "cluster.yaml"
    inventory.write_text("\n".join(lines[:start] + [line for line in lines[start + 1:] if not line.startswith("  ")]) + "\n")
    result = run("-i", str(inventory), "replication", "check", "--json")
    data = result.json()
    assert result.code == 0, data["summary"]
    assert {h["source"] for h in data["haproxy"]} == {"mac-studio-1"}  # the node listing haproxy_stats
    assert sum(1 for h in data["haproxy"] if h["takes_writes"]) == 1


def test_etcd_losing_its_spare_vote_then_its_quorum_is_named_within_the_bound_and_writes_keep_flowing(lab):
    """Freeze the witness's etcd member: WARNING naming etcd. Freeze a second (the replica
    Mac's): CRITICAL with etcd as the first problem, each check within timeout + 0.5 s.
    With failsafe_mode (the lab renders it on), writes through HAProxy keep flowing for
    longer than Patroni's ttl, none acknowledged is lost, and after the thaw the cluster is
    back without a failover (same leader, same timeline)."""
    from prontuario_cli.cluster import haproxy as ha
    from prontuario_cli.cluster.nodes import node_access
    from prontuario_cli.drill.probes import committed_seqs, pg_write_probe, prepare_table
    from prontuario_cli.poll import wait_for

    inventory = load_inventory(lab.inventory_path)
    data = wait_healthy(lab)
    assert data["failsafe_mode"] is True and data["etcd_quorum"]["healthy"] == 3
    leader, timeline = data["leader"], data["timeline"]
    replica = next(n for n in ("mac-studio-1", "mac-studio-2") if n != leader)
    target = ha.frontend_target(inventory, application_name="prontuario-test")
    prepare_table(target)
    access = node_access(inventory)
    run_id = f"etcd-{time.time_ns()}"
    frozen: list[str] = []
    seen: dict = {}
    writes = pg_write_probe(target, run_id, max_duration_s=120).start()
    try:
        def verdict(code: int, starts: str):
            def probe():
                result, elapsed = check(lab)
                assert elapsed < bound(lab), f"the check took {elapsed:.2f} s"
                report = result.json()
                seen["last"] = report["summary"]
                first = report["problems"][0]["message"] if report["problems"] else ""
                return result.code == code and first.startswith(starts) and report
            return probe

        access.act("witness", "etcd", "hang")
        frozen.append("witness")
        report, _ = wait_for("WARNING: no spare vote", verdict(1, "etcd has no spare vote (witness: no answer"), 15, interval_s=0.5,
                             last_state=lambda: seen.get("last", ""))
        assert report["etcd_quorum"]["spare"] == 0

        access.act(replica, "etcd", "hang")
        frozen.append(replica)
        lost_at = time.monotonic()
        wait_for("CRITICAL: etcd has no quorum", verdict(2, "etcd has no quorum"), 15, interval_s=0.5, last_state=lambda: seen.get("last", ""))
        # Past the leader key's ttl (20 s in the lab) + Patroni's retries: without failsafe the
        # primary would have demoted itself by now. With it, etcd is still the first problem.
        ttl = 20 + 3 * 4
        while time.monotonic() - lost_at < ttl:
            wait_for("etcd still named first", verdict(2, "etcd has no quorum"), 10, interval_s=0.5, last_state=lambda: seen.get("last", ""))
            time.sleep(2)
        counts = writes.log.counts()
        assert counts["failed"] == 0, f"writes failed while etcd had no quorum: {counts}"
    finally:
        for node in frozen:
            access.act(node, "etcd", "resume")
        log = writes.stop()
    acked = sorted(a.seq for a in log.attempts if a.outcome == "acked")
    assert acked and set(acked) <= committed_seqs(target, run_id), "an acknowledged write was lost"
    data = wait_healthy(lab)
    assert (data["leader"], data["timeline"]) == (leader, timeline), "the thaw must not bring a failover"
