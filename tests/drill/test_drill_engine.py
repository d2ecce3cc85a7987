"""The drill engine: phase order, verdicts and exit codes, rollback always attempted, the lock."""

from __future__ import annotations

import json
import threading

import pytest

from prontuario_cli.drill.engine import Activity, StepFailed, drill_lock, run_experiment
from prontuario_cli.clock import utc_now
from prontuario_cli.drill.journal import Journal, TargetCheck, load_journal
from prontuario_cli.errors import ExitCode, LockedError


class Fake:
    """An experiment whose activities are scripted by the test."""

    drill, mode, run_id = "failover", "fake", "run-1"

    def __init__(self, fail: set[str] = frozenset(), interrupt: str | None = None, met: bool = True):
        self.fail, self.interrupt, self.met = fail, interrupt, met
        self.ran: list[str] = []

    def _act(self, name):
        def run():
            self.ran.append(name)
            if name == self.interrupt:
                raise KeyboardInterrupt
            if name in self.fail:
                raise StepFailed(f"{name} does not hold")
            return f"{name} ok"

        return Activity(name, run)

    def plan(self):
        return ["fake"]

    def steady_state(self):
        return [self._act("pre-1"), self._act("pre-2")]

    def method(self):
        return [self._act("fault"), self._act("measure")]

    def steady_state_after(self):
        return [self._act("post")]

    def rollback(self):
        return [self._act("undo-1"), self._act("undo-2")]

    def measurements(self):
        return {"rto_s": 12.5}

    def targets(self):
        return [TargetCheck("RTO", 12.5, 30, "s", "<", self.met)]


def run(fake: Fake) -> Journal:
    journal = Journal("failover", "fake", "run-1", "cluster.yaml", None, utc_now())
    return run_experiment(fake, journal, say=lambda text: None)


def test_passed_runs_every_phase_in_order():
    fake = Fake()
    journal = run(fake)
    assert fake.ran == ["pre-1", "pre-2", "fault", "measure", "post", "undo-1", "undo-2"]
    assert journal.verdict == "passed" and journal.exit_code() == ExitCode.OK
    assert [s.phase for s in journal.steps] == ["steady-state-before"] * 2 + ["method"] * 2 + ["steady-state-after"] + ["rollback"] * 2
    assert all(s.duration_s is not None and s.started_at and s.ended_at for s in journal.steps)


def test_failed_precondition_aborts_before_touching_anything():
    fake = Fake(fail={"pre-1"})
    journal = run(fake)
    assert fake.ran == ["pre-1"]
    assert journal.verdict == "aborted" and journal.exit_code() == ExitCode.ABORTED
    assert "pre-1 does not hold" in journal.reason and "nothing was changed" in journal.reason
    assert {s.status for s in journal.steps if s.phase != "steady-state-before"} == {"skipped"}


def test_rollback_is_attempted_after_a_failed_method():
    fake = Fake(fail={"fault"})
    journal = run(fake)
    assert fake.ran == ["pre-1", "pre-2", "fault", "undo-1", "undo-2"]
    assert journal.verdict == "failed" and journal.exit_code() == ExitCode.FAILED


def test_every_rollback_step_runs_and_a_failed_one_is_loud():
    fake = Fake(fail={"undo-1"})
    journal = run(fake)
    assert fake.ran[-2:] == ["undo-1", "undo-2"]
    assert journal.verdict == "rollback-failed" and journal.exit_code() == ExitCode.ROLLBACK_FAILED
    assert journal.reason.startswith("ROLLBACK FAILED")


def test_missed_target():
    journal = run(Fake(met=False))
    assert journal.verdict == "target-missed" and journal.exit_code() == ExitCode.TARGET_MISSED


def test_steady_state_not_restored_is_a_failure():
    journal = run(Fake(fail={"post"}))
    assert journal.verdict == "failed" and "steady state not restored" in journal.reason


def test_ctrl_c_still_rolls_back_and_is_recorded():
    fake = Fake(interrupt="fault")
    journal = run(fake)
    assert fake.ran == ["pre-1", "pre-2", "fault", "undo-1", "undo-2"]
    assert journal.interrupted and journal.verdict == "failed" and journal.reason.startswith("interrupted")


def test_journal_saved_as_json_and_markdown(tmp_path):
    journal = run(Fake())
    journal.save(tmp_path)
    data = json.loads((tmp_path / "run-1.json").read_text())
    assert data["verdict"] == "passed" and data["measurements"] == {"rto_s": 12.5}
    markdown = (tmp_path / "run-1.md").read_text()
    assert "# Drill failover (fake): PASSED" in markdown and "| RTO | 12.50 s | < 30 s | yes |" in markdown
    again = load_journal(tmp_path / "run-1.json")
    assert again.verdict == "passed" and len(again.steps) == len(journal.steps)


def test_two_drills_never_overlap(tmp_path):
    inside, release = threading.Event(), threading.Event()

    def holder():
        with drill_lock(tmp_path, "failover kill"):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert inside.wait(10)
        with pytest.raises(LockedError) as caught:
            with drill_lock(tmp_path, "health checks"):
                pass
        assert "failover kill" in caught.value.message and caught.value.exit_code == ExitCode.LOCKED
    finally:
        release.set()
        thread.join(10)
    with drill_lock(tmp_path, "health checks"):  # free again once the first drill ends
        pass


def test_tally_counts_lost_and_unknown_writes():
    from prontuario_cli.drill.probes import Attempt, ProbeLog, tally

    log = ProbeLog("writes")
    log.attempts = [
        Attempt(1, 0.00, 0.01, "acked"),
        Attempt(2, 0.02, 0.03, "acked"),
        Attempt(3, 0.04, 0.05, "acked"),
        Attempt(4, 0.06, 2.06, "unknown", "server closed the connection"),
        Attempt(5, 2.10, 2.11, "failed", "connection refused"),
        Attempt(6, 2.20, 2.21, "acked"),
    ]
    everything = tally(log, {1, 2, 3, 4, 6})
    assert everything["lost_acked_writes"] == 0 and everything["rpo_s"] == 0.0
    assert everything["unknown_committed"] == 1 and (everything["writes_acked"], everything["writes_failed"], everything["writes_unknown"]) == (4, 1, 1)
    lost = tally(log, {1, 6})
    assert lost["lost_acked_writes"] == 2 and lost["lost_seqs"] == [2, 3] and lost["rpo_s"] == 0.02
    assert lost["unknown_committed"] == 0


def test_longest_gap_between_acknowledgements():
    from prontuario_cli.drill.probes import Attempt, ProbeLog

    log = ProbeLog("writes")
    log.attempts = [Attempt(1, 0.0, 1.0, "acked"), Attempt(2, 1.0, 1.1, "failed"), Attempt(3, 1.2, 4.5, "acked"), Attempt(4, 4.5, 5.0, "acked")]
    assert log.longest_gap(0.0, 6.0) == 3.5
    assert log.first_ack_sent_after(1.05).seq == 3
    assert log.first_ack_sent_after(0.0, not_server="a").seq == 1
