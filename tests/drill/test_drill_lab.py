"""Drills against the real lab: failover in every mode, Redis, and the daily health drill.

Each drill really fails the primary over (kill -9, SIGSTOP, ...) and must come back with
0 acknowledged writes lost and the old primary rejoined as sync standby.

No test relies on another having run first: each one waits (bounded) for the steady state
its drill needs and reads the roles it starts from, whichever Mac leads at that moment.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prontuario_cli.errors import ExitCode
from tests.helpers import run

pytestmark = pytest.mark.lab

RECOVERY_S = 120  # a rejoin as sync standby, Redis resync and HAProxy rise: well under this
CLOUD_REPLICA = "prontuario-lab-drill"
CLOUD_LIVE = "prontuario-lab-replica"


def inventory_of(lab):
    from prontuario_cli.inventory import load_inventory

    return load_inventory(lab.inventory_path)


def steady_state(lab, within: float = RECOVERY_S) -> tuple[str, str]:
    """Wait until the lab is as every drill's precondition wants it; return (leader, sync standby).

    Patroni not paused, a leader and a streaming sync standby; HAProxy sends writes to the
    leader only and reads to the standby; ``replication check`` OK (lag, Redis, Sentinels).
    """
    from prontuario_cli.cluster import patroni
    from prontuario_cli.drill.watch import snapshot
    from prontuario_cli.poll import wait_for
    from prontuario_cli.replication import check
    from prontuario_cli.report import Status

    inventory = inventory_of(lab)
    seen = {"last": "nothing yet"}

    def steady():
        view = patroni.cluster_view(inventory)
        standby = patroni.sync_standby(view)
        snap = snapshot(inventory, timeout_s=inventory.health_checks.timeout_s)
        report = check(inventory)
        seen["last"] = (
            f"leader {view.leader}, sync standby {standby}, paused {view.paused}, "
            f"HAProxy write {list(snap.write_up)} read {list(snap.read_up)}, check {report.status.name}: {report.summary}"
        )
        ready = not view.paused and view.leader and standby and snap.write_up == (view.leader,) and standby in snap.read_up
        # The cloud stand-in subscribes through HAProxy with pglogical: it follows every
        # failover by itself, so nothing here re-clones it.
        return (view.leader, standby) if ready and report.status == Status.OK else None

    roles, _ = wait_for("the lab in steady state", steady, within, interval_s=1.0, last_state=lambda: seen["last"])
    return roles


def cloud_replica_following(lab) -> None:
    """Wait (bounded) until the cloud stand-in replicates from the Macs — never rebuilt here.

    Whatever ran before (kill, stop, hang and switchover drills, a cloud drill whose
    rollback re-subscribes it), the replica must follow the current primary on its own:
    the cloud drill's own precondition then proves it with a row."""
    import time

    from prontuario_cli.gcp.data import open_session, read_lag
    from prontuario_cli.poll import wait_for

    inventory = inventory_of(lab)

    def streaming():
        with open_session(inventory, CLOUD_REPLICA, time.monotonic() + 5) as session:
            return read_lag(session).streaming

    wait_for("the cloud replica replicating", streaming, 60, interval_s=0.5)


def drill(lab, *args: str):
    result = run("-i", str(lab.inventory_path), "drill", *args, "--yes", "--json")
    assert result.out, result.err
    return result, json.loads(result.out)


def assert_consistent_failover(journal: dict) -> dict:
    m = journal["measurements"]
    steps = {s["name"]: s for s in journal["steps"]}
    assert journal["verdict"] == "passed", (journal["reason"], m)
    # RPO: every acknowledged write is on the new primary.
    assert m["lost_acked_writes"] == 0 and m["rpo_s"] == 0
    # The old primary came back and is the sync standby again.
    assert m["rejoin_streaming_s"] > 0 and m["rejoin_sync_s"] >= m["rejoin_streaming_s"]
    assert m["new_primary"] != m["old_primary"]
    # The numbers agree with each other.
    assert 0 < m["rto_s"] < 30
    assert m["write_gap_s"] <= m["rto_s"] + 0.1
    assert m["writes_acked"] > 0 and m["writes_unknown"] >= m["unknown_committed"]
    if m["patroni_promotion_s"] is not None:
        assert m["patroni_promotion_s"] <= m["rto_s"] + 1.0
    rto_target = next(t for t in journal["targets"] if t["name"].startswith("RTO"))
    assert rto_target["value"] == m["rto_s"] and rto_target["met"] is True
    # The cloud replica (pglogical, through HAProxy) follows the new primary without any
    # rebuild: the new primary's first write reaches it within the RPO target, and once a
    # later marker has arrived it holds every acknowledged write and nothing extra.
    assert m["cloud_replica"] == CLOUD_LIVE and m["cloud_skipped"] is False
    assert 0 < m["cloud_catch_up_s"] < 60 and m["cloud_catch_up_after_fault_s"] > m["rto_s"]
    assert m["cloud_missing_acked"] == 0 and m["cloud_rows"] >= m["writes_acked"]
    # PostgreSQL 15 may hand a commit to the subscriber before the sync standby has it: a
    # row only the replica holds can only be a write in flight at the fault.
    assert m["cloud_only_rows"] <= m["writes_unknown"] - m["unknown_committed"]
    cloud_targets = {t["name"].split(" (")[0]: t for t in journal["targets"] if t["name"].startswith("cloud")}
    assert set(cloud_targets) == {"cloud replica catch-up", "cloud replica: acknowledged writes missing"}
    assert all(t["met"] for t in cloud_targets.values()) and cloud_targets["cloud replica catch-up"]["value"] == m["cloud_catch_up_s"]
    assert all(s["status"] == "ok" for s in journal["steps"]), [s for s in journal["steps"] if s["status"] != "ok"]
    assert "fault: " + m["mode"] in steps
    # The journal on disk is what was printed; the Markdown report sits beside it.
    on_disk = json.loads(Path(journal["journal_path"]).read_text())
    assert on_disk["run_id"] == journal["run_id"] and on_disk["measurements"]["rto_s"] == m["rto_s"]
    assert Path(journal["report_path"]).read_text().startswith(f"# Drill failover ({m['mode']}): PASSED")
    return m


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_kill_failover_loses_no_acknowledged_write(lab, attempt):
    leader, standby = steady_state(lab)
    result, journal = drill(lab, "failover", "--mode", "kill")
    assert result.code == ExitCode.OK, result.err
    m = assert_consistent_failover(journal)
    assert (m["old_primary"], m["new_primary"]) == (leader, standby)
    assert m["haproxy_detection_s"] is not None


@pytest.mark.parametrize("mode", ["switchover", "stop", "hang"])
def test_other_failover_modes(lab, mode):
    leader, standby = steady_state(lab)
    result, journal = drill(lab, "failover", "--mode", mode)
    assert result.code == ExitCode.OK, result.err
    m = assert_consistent_failover(journal)
    assert (m["old_primary"], m["new_primary"]) == (leader, standby)


def test_redis_sentinel_failover(lab):
    steady_state(lab)
    result, journal = drill(lab, "failover", "--service", "redis", "--mode", "kill")
    assert result.code == ExitCode.OK, (journal["reason"], result.err)
    m = journal["measurements"]
    assert m["lost_acked_writes"] == 0 and m["new_master"] != m["old_master"]
    assert 0 < m["rto_s"] < 30 and m["rejoin_s"] > 0


def test_restore_primary_switches_back(lab):
    from prontuario_cli.cluster import patroni as cluster

    inventory = inventory_of(lab)
    before, standby = steady_state(lab)
    result, journal = drill(lab, "failover", "--mode", "switchover", "--restore-primary")
    assert result.code == ExitCode.OK, journal["reason"]
    assert journal["measurements"]["new_primary"] == standby
    view = cluster.cluster_view(inventory)
    assert view.leader == before
    assert cluster.sync_standby(view) == standby


def test_health_drill_has_zero_downtime(lab):
    leader, standby = steady_state(lab)
    result, journal = drill(lab, "health")
    assert result.code == ExitCode.OK, (journal["reason"], result.err)
    m = journal["measurements"]
    assert (m["leader"], m["sync_standby"]) == (leader, standby)
    assert m["writes_not_acked"] == 0 and m["reads_failed"] == 0
    assert 0 < m["haproxy_down_s"] <= m["down_budget_s"] and 0 < m["haproxy_up_s"] <= m["up_budget_s"]


def test_drill_refuses_when_preconditions_fail(lab):
    """A paused Patroni cluster: the drill aborts before touching anything (exit 12)."""
    import httpx

    from prontuario_cli.cluster import patroni as cluster
    from prontuario_cli.poll import wait_for

    inventory = inventory_of(lab)
    leader, _ = steady_state(lab)  # so the only reason to refuse is the pause below
    node = inventory.node(leader)
    url = f"http://{node.address}:{node.ports.patroni}/config"
    httpx.patch(url, json={"pause": True}, timeout=5).raise_for_status()
    try:
        wait_for("paused", lambda: cluster.cluster_view(inventory).paused, 15)
        result, journal = drill(lab, "failover", "--mode", "kill")
        assert result.code == ExitCode.ABORTED and journal["verdict"] == "aborted"
        assert "paused" in journal["reason"]
        assert cluster.cluster_view(inventory).leader == leader  # nothing was changed
    finally:
        httpx.patch(url, json={"pause": False}, timeout=5).raise_for_status()
        wait_for("resumed", lambda: not cluster.cluster_view(inventory).paused, 15)


def test_ctrl_c_during_a_kill_drill_rolls_back_and_exits_with_the_verdict(lab, tmp_path):
    """Ctrl-C a few seconds after the fault, before the leader lease ends: the old primary
    still holds the leader key and comes back as leader. The rollback accepts that steady
    state (whichever node leads), says so, and the command exits with the drill's verdict,
    not 130; the next checks do not warn about the timeline change the drill caused."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    from prontuario_cli.drill.journal import VERDICT_EXIT
    from tests.helpers import REPO, poll

    steady_state(lab)
    out_path = tmp_path / "journal.json"
    lines: list[str] = []
    with open(out_path, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prontuario_cli", "-i", str(lab.inventory_path), "drill", "failover", "--mode", "kill", "--yes", "--json"],
            stdout=out, stderr=subprocess.PIPE, text=True, cwd=str(REPO), env=dict(os.environ),
        )
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in proc.stderr), daemon=True)
    reader.start()
    try:
        poll(lambda: any("✓ [method] fault: kill" in line for line in lines) or proc.poll() is not None, 60, "the fault")
        assert proc.poll() is None, "\n".join(lines)
        faulted = time.monotonic()
        time.sleep(3)  # the scenario itself: Ctrl-C 3 s into the failover, well inside the 20 s leader lease
        proc.send_signal(signal.SIGINT)
        assert time.monotonic() - faulted < 15
        code = proc.wait(timeout=RECOVERY_S)
    finally:
        if proc.poll() is None:  # never leave the drill running: abandon, then stop it
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        reader.join(10)
    said = "\n".join(lines)
    journal = json.loads(out_path.read_text())
    assert code != ExitCode.INTERRUPTED, said
    assert code == VERDICT_EXIT[journal["verdict"]], (code, journal["verdict"], journal["reason"])
    assert journal["verdict"] == "failed" and journal["interrupted"], journal["reason"]
    assert journal["rollback"] == "complete" and journal["left_to_do"] == [], (journal["reason"], said)
    assert "interrupted by the operator during method" in journal["reason"] and "rolled back" in journal["reason"]
    assert "interrupted — rolling back… (Ctrl-C again abandons it)" in said and "rollback complete" in said
    assert "ROLLBACK FAILED" not in said
    leader, standby = steady_state(lab, within=30)  # the cluster is in its steady state, whichever node leads
    assert {leader, standby} == {journal["measurements"]["old_primary"], journal["measurements"]["new_primary"]}
    for _ in range(2):  # the change the drill caused is not a timeline warning
        result = run("-i", str(lab.inventory_path), "replication", "check", "--json")
        assert not [p for p in result.json()["problems"] if p["component"] == "timeline"], result.out


@pytest.mark.slow
def test_ten_kill_failovers_in_a_row(lab):
    rtos = []
    for _ in range(10):
        steady_state(lab)
        result, journal = drill(lab, "failover", "--mode", "kill")
        assert result.code == ExitCode.OK, journal["reason"]
        rtos.append(assert_consistent_failover(journal)["rto_s"])
    assert len(rtos) == 10


def test_cloud_drill_promotes_the_drill_replica_and_rolls_back(lab):
    import time

    from prontuario_cli.cluster import patroni as cluster
    from prontuario_cli.gcp.data import open_session, read_lag

    inventory = inventory_of(lab)
    steady_state(lab)
    cloud_replica_following(lab)
    result, journal = drill(lab, "cloud")
    assert result.code == ExitCode.OK, (journal["reason"], result.err[-2000:])
    assert journal["measurements"]["replication_delay_s"] < 60
    m = journal["measurements"]
    assert m["instance"] == CLOUD_REPLICA
    assert 0 < m["rto_s"] < 300 and m["lost_acked_writes"] == 0 and m["rpo_s"] < 60
    assert m["writes_acked_before_fault"] > 0
    assert {t["name"].split(" ")[0] for t in journal["targets"]} == {"RTO", "RPO"}
    # Rolled back: the Macs lead again and the cloud instance is a replica once more.
    view = cluster.cluster_view(inventory)
    assert view.leader and cluster.sync_standby(view)
    with open_session(inventory, CLOUD_REPLICA, time.monotonic() + 10) as session:
        assert read_lag(session).in_recovery


def test_cloud_drill_aborts_when_the_replica_does_not_follow(lab):
    steady_state(lab)  # the Macs are fine: the only reason to abort is the stopped replica
    lab.stop("cloudsql-replica")
    try:
        result, journal = drill(lab, "cloud")
        assert result.code == ExitCode.ABORTED and journal["verdict"] == "aborted"
        assert CLOUD_REPLICA in journal["reason"]
        steady = [s for s in journal["steps"] if s["phase"] == "steady-state-before"]
        assert steady and steady[0]["status"] == "ok", steady  # the Macs passed; the replica did not
        assert not [s for s in journal["steps"] if s["phase"] == "method" and s["status"] != "skipped"]
    finally:
        lab.start("cloudsql-replica")
