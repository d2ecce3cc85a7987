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


def test_timeline_is_recorded_and_a_later_change_reported_once(lab, isolated_state):
    import json

    from prontuario_cli.replication.state import TIMELINE_FILE

    data = wait_healthy(lab)  # the first check records the timeline
    record = json.loads((isolated_state / TIMELINE_FILE).read_text())
    assert record["timeline"] == data["timeline"]
    # Pretend the last check saw an older timeline: the next check reports the change, once.
    record["timeline"] = data["timeline"] - 1
    (isolated_state / TIMELINE_FILE).write_text(json.dumps(record))
    first, _ = check(lab)
    assert first.code == 1 and first.json()["timeline_changed"], first.out
    second, _ = check(lab)
    assert second.code == 0 and not second.json()["timeline_changed"]


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
