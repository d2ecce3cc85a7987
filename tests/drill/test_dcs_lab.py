"""The DCS drill against the real lab: etcd members really frozen (SIGSTOP) under a running cluster.

The lab's Patroni runs with failsafe_mode on, so with two of the three etcd members frozen
for longer than the leader ttl the primary keeps taking writes: no failover, no lost write.
Whatever happens to a run (Ctrl-C, a failed step), no etcd member is left frozen.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from prontuario_cli.errors import ExitCode
from tests.drill.test_drill_lab import drill, inventory_of, steady_state

pytestmark = pytest.mark.lab

ETCD_MEMBERS = ("mac-studio-1", "mac-studio-2", "witness")


def etcd_process_states(lab) -> dict[str, str]:
    """Each etcd member's process state letter from /proc (T: stopped by a signal)."""
    states = {}
    for node in ETCD_MEMBERS:
        pid = lab.pid(f"etcd-{node}")
        assert pid, f"etcd-{node} is not running"
        stat = Path(f"/proc/{pid}/stat").read_text()
        states[node] = stat.rsplit(")", 1)[1].split()[0]
    return states


def assert_etcd_thawed_and_healthy(lab) -> None:
    from prontuario_cli.drill.dcs import etcd_healthy
    from prontuario_cli.poll import wait_for

    states = etcd_process_states(lab)
    assert "T" not in states.values(), f"an etcd member is left frozen: {states}"
    wait_for("every etcd member healthy", lambda: etcd_healthy(inventory_of(lab)), 30, interval_s=0.5)


def test_member_drill_loses_the_spare_vote_and_nothing_changes_for_writes(lab):
    leader, _ = steady_state(lab)
    result, journal = drill(lab, "dcs", "--mode", "member", "--hold", "8")
    m = journal["measurements"]
    assert result.code == ExitCode.OK, (journal["reason"], m)
    assert m["frozen"] == ["witness"] and m["hold_s"] == 8
    seen = m["etcd_seen_during_fault"]
    assert (seen["verdict"], seen["quorum"], seen["spare"]) == ("no spare vote", True, 0)
    assert "witness" in seen["lost"] and set(seen["healthy"]) == {"mac-studio-1", "mac-studio-2"}
    assert m["lost_acked_writes"] == 0 and m["writes_failed"] == 0 and m["write_gap_s"] < 5
    assert m["failover"] is False and m["leader_before"] == m["leader_after"] == leader
    assert m["timeline_before"] == m["timeline_after"]
    assert 0 <= m["etcd_healthy_after_thaw_s"] < 30
    assert all(t["met"] for t in journal["targets"])
    assert_etcd_thawed_and_healthy(lab)


def test_quorum_drill_keeps_writing_past_the_ttl_with_no_failover(lab):
    leader, standby = steady_state(lab)
    result, journal = drill(lab, "dcs", "--mode", "quorum")
    m = journal["measurements"]
    assert result.code == ExitCode.OK, (journal["reason"], m)
    # the freeze: the witness's member and the standby Mac's, for longer than the leader ttl
    assert m["frozen"] == ["witness", standby] and m["failsafe_mode"] is True
    assert m["hold_s"] == m["ttl_s"] + 3 * m["loop_wait_s"] + 5 and m["hold_s"] > m["ttl_s"]
    seen = m["etcd_seen_during_fault"]
    assert (seen["verdict"], seen["quorum"]) == ("no quorum", False) and seen["at_s"] > m["ttl_s"]
    # writes flowed throughout: nothing lost, no failover, a gap far below the RTO target
    assert m["lost_acked_writes"] == 0 and m["rpo_s"] == 0
    assert m["writes_acked"] > m["hold_s"] * 10  # a write every 20 ms, through the whole hold
    assert m["write_gap_s"] < 30
    assert m["failover"] is False and (m["leader_before"], m["leader_after"]) == (leader, leader)
    assert m["timeline_before"] == m["timeline_after"]
    assert 0 <= m["etcd_healthy_after_thaw_s"] < 30
    assert {t["name"].split(" (")[0]: t["met"] for t in journal["targets"]} == {
        "write gap": True, "RPO": True, "failovers": True, "etcd during the fault: no quorum": True,
    }
    assert journal["timeline"].endswith("unchanged")
    assert Path(journal["report_path"]).read_text().startswith("# Drill dcs (quorum): PASSED")
    assert_etcd_thawed_and_healthy(lab)
    assert steady_state(lab, within=30) == (leader, standby)


@pytest.mark.parametrize("how", ["ctrl-c", "failed step"])
def test_an_interrupted_or_failing_quorum_drill_still_thaws_every_member(lab, how):
    """Stop the drill during the hold, with two members frozen: the rollback resumes both."""
    from prontuario_cli import drill as drills
    from prontuario_cli.drill.dcs import DcsDrill, DcsOptions
    from prontuario_cli.drill.engine import StepFailed

    inventory = inventory_of(lab)
    leader, standby = steady_state(lab)
    frozen_seen: dict[str, dict[str, str]] = {}

    class FailingHold(DcsDrill):
        def _hold(self):
            from prontuario_cli.errors import ProntuarioError
            from prontuario_cli.poll import wait_for

            def stopped():  # SIGSTOP is delivered asynchronously: poll /proc (bounded)
                states = etcd_process_states(lab)
                frozen_seen["states"] = states
                return states["witness"] == "T" and states[standby] == "T"

            try:
                wait_for("both members stopped", stopped, 5, interval_s=0.05)
            except ProntuarioError:
                pass  # the assertion below reports what /proc said
            raise StepFailed("scripted failure during the hold")

    def progress(event):
        """Ctrl-C as the hold's first look at etcd sees no quorum (in the drill's own thread)."""
        no_quorum = event.get("kind") == "event" and str(event.get("what", "")).startswith("etcd: no quorum")
        if no_quorum and how == "ctrl-c" and threading.current_thread() is threading.main_thread():
            frozen_seen["states"] = etcd_process_states(lab)
            raise KeyboardInterrupt

    cls = FailingHold if how == "failed step" else DcsDrill
    experiment = cls(inventory, DcsOptions(mode="quorum"), drills.new_run_id("dcs", "quorum"), say=lambda text: None, progress=progress)
    journal = drills.run(inventory, experiment, lambda text: None, progress=progress)

    assert frozen_seen["states"]["witness"] == "T" and frozen_seen["states"][standby] == "T", frozen_seen
    assert journal.verdict == "failed" and journal.rollback == "complete", (journal.reason, journal.left_to_do)
    assert journal.interrupted is (how == "ctrl-c")
    thaw = next(s for s in journal.steps if s.phase == "rollback" and s.name.startswith("thaw every etcd member the drill froze"))
    assert thaw.status == "ok" and "witness" in thaw.name and standby in thaw.name
    assert not [s for s in journal.steps if s.phase == "method" and s.name.startswith("thaw ") and s.status == "ok"]
    assert_etcd_thawed_and_healthy(lab)
    assert steady_state(lab, within=60) == (leader, standby)
