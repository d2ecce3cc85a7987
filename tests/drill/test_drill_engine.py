"""The drill engine: phase order, verdicts and exit codes, rollback always attempted, the lock."""

from __future__ import annotations

import json
import threading

import pytest

from prontuario_cli.drill.engine import Activity, StepFailed, drill_lock, run_experiment
from prontuario_cli.clock import utc_now
from prontuario_cli.drill.journal import Journal, TargetCheck, load_journal
from prontuario_cli.errors import ExitCode, LockedError
from tests.helpers import EXAMPLE
from tests.helpers import run as cli


class Fake:
    """An experiment whose activities are scripted by the test."""

    drill, mode, run_id = "failover", "fake", "run-1"

    def __init__(self, fail: set[str] = frozenset(), interrupt: str | set[str] | None = None, met: bool = True):
        self.fail, self.met = fail, met
        self.interrupt = {interrupt} if isinstance(interrupt, str) else set(interrupt or ())
        self.ran: list[str] = []

    def _act(self, name):
        def run():
            self.ran.append(name)
            if name in self.interrupt:  # the operator's Ctrl-C arrives during this step
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


def run(fake: Fake, said: list[str] | None = None) -> Journal:
    journal = Journal("failover", "fake", "run-1", "cluster.yaml", None, utc_now())
    return run_experiment(fake, journal, say=(said.append if said is not None else lambda text: None))


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


def test_after_a_ctrl_c_the_rollback_verdict_wins_over_130():
    """Ctrl-C after the fault: the drill rolls back, says so, and exits with its verdict."""
    said: list[str] = []
    journal = run(Fake(interrupt="measure"), said)
    assert journal.rollback == "complete" and journal.left_to_do == []
    assert journal.verdict == "failed" and journal.exit_code() == ExitCode.FAILED  # not 130
    assert "interrupted by the operator during method: measure" in journal.reason and "rolled back" in journal.reason
    assert "interrupted — rolling back… (Ctrl-C again abandons it)" in said
    assert said.index("interrupted — rolling back… (Ctrl-C again abandons it)") < said.index("rollback complete")
    assert [s.status for s in journal.steps if s.phase == "steady-state-after"] == ["skipped"]


def test_a_second_ctrl_c_abandons_the_rollback_and_says_what_is_left():
    said: list[str] = []
    fake = Fake(interrupt={"fault", "undo-1"})
    journal = run(fake, said)
    assert fake.ran == ["pre-1", "pre-2", "fault", "undo-1"]  # undo-2 is not attempted
    assert journal.verdict == "rollback-failed" and journal.exit_code() == ExitCode.ROLLBACK_FAILED
    assert journal.rollback == "abandoned" and journal.left_to_do == ["undo-1", "undo-2"]
    assert journal.reason.startswith("ROLLBACK ABANDONED") and "left to do: undo-1; undo-2" in journal.reason
    undo = {s.name: s for s in journal.steps if s.phase == "rollback"}
    assert undo["undo-1"].status == "failed" and "abandoned" in undo["undo-1"].output
    assert undo["undo-2"].status == "skipped"
    assert "rollback abandoned — left to do: undo-1; undo-2" in said and "rollback complete" not in said


def test_a_ctrl_c_during_the_rollback_of_a_finished_drill_abandons_it():
    journal = run(Fake(interrupt="undo-2"))
    assert journal.verdict == "rollback-failed" and journal.exit_code() == ExitCode.ROLLBACK_FAILED
    assert journal.left_to_do == ["undo-2"]


def test_a_ctrl_c_before_the_fault_exits_130_and_changes_nothing():
    fake = Fake(interrupt="pre-2")
    journal = run(fake)
    assert fake.ran == ["pre-1", "pre-2"]
    assert journal.verdict == "aborted" and journal.interrupted and journal.rollback == "not needed"
    assert journal.exit_code() == ExitCode.INTERRUPTED and "nothing was changed" in journal.reason


def test_a_failed_rollback_lists_what_is_left():
    journal = run(Fake(fail={"undo-1"}))
    assert journal.rollback == "failed" and journal.left_to_do == ["undo-1"]
    assert "left to do: undo-1" in journal.reason


def test_a_ctrl_c_between_two_steps_still_rolls_back():
    """The window between two steps (the engine's own bookkeeping) is covered too."""
    fake = Fake()
    said: list[str] = []

    def say(text: str) -> None:
        said.append(text)
        if text == "[method] fault: ok":  # the engine reports the step, and the Ctrl-C lands
            raise KeyboardInterrupt

    journal = Journal("failover", "fake", "run-1", "cluster.yaml", None, utc_now())
    run_experiment(fake, journal, say=say)
    assert fake.ran == ["pre-1", "pre-2", "fault", "undo-1", "undo-2"]
    assert journal.rollback == "complete" and journal.exit_code() == ExitCode.FAILED


def test_the_drill_command_exits_with_the_verdict_not_130(monkeypatch):
    """The command turns the journal into its exit code; only "nothing ran" is 130."""
    from prontuario_cli import drill

    def fake_run(verdict: str, interrupted: bool):
        def runner(inventory, experiment, say, profile=None, progress=None):
            journal = Journal("failover", "kill", "run-1", "cluster.yaml", None, utc_now(), verdict=verdict, interrupted=interrupted)
            journal.rollback = "abandoned" if verdict == "rollback-failed" else "complete"
            journal.left_to_do = ["start mac-studio-1 again"] if verdict == "rollback-failed" else []
            return journal

        return runner

    monkeypatch.setattr(drill, "lab_profile", lambda inventory: None)
    for verdict, interrupted, code in (
        ("failed", True, ExitCode.FAILED),
        ("rollback-failed", True, ExitCode.ROLLBACK_FAILED),
        ("aborted", True, ExitCode.INTERRUPTED),
        ("passed", False, ExitCode.OK),
    ):
        monkeypatch.setattr(drill, "run", fake_run(verdict, interrupted))
        result = cli("-i", str(EXAMPLE), "drill", "failover", "--mode", "kill", "--yes", "--json")
        assert result.code == code, (verdict, result.err)
        assert result.json()["verdict"] == verdict
        if verdict == "rollback-failed":
            assert "left to do: start mac-studio-1 again" in result.err


def test_the_rollback_steady_state_is_whichever_node_leads():
    """The rollback compares against the steady state, not "the old primary is the replica"."""
    import dataclasses

    from prontuario_cli.drill.failover import steady_state_of
    from prontuario_cli.replication.evaluate import evaluate
    from tests.replication import replication_fixtures as fx

    healthy = evaluate(fx.inventory(), fx.healthy())
    assert steady_state_of(healthy)[0] == ("mac-studio-1", "mac-studio-2")
    # The same picture with the roles the other way round is just as steady.
    swapped = dataclasses.replace(
        healthy,
        leader="mac-studio-2",
        replicas=tuple(dataclasses.replace(r, node="mac-studio-1", name="mac-studio-1") if r.node == "mac-studio-2" else r for r in healthy.replicas),
        haproxy=tuple(dataclasses.replace(h, takes_writes=h.takes_writes != (h.node in ("mac-studio-1", "mac-studio-2"))) if h.proxy == "write" else h for h in healthy.haproxy),
        members=tuple(dataclasses.replace(m, role={"leader": "sync_standby", "sync_standby": "leader"}.get(m.role, m.role)) for m in healthy.members),
    )
    assert steady_state_of(swapped)[0] == ("mac-studio-2", "mac-studio-1")
    # PostgreSQL streams synchronously, but Patroni's sync key does not name the standby yet.
    lagging = dataclasses.replace(healthy, members=tuple(dataclasses.replace(m, role="replica") if m.node == "mac-studio-2" else m for m in healthy.members))
    roles, seen = steady_state_of(lagging)
    assert roles is None and seen.startswith("Patroni does not name mac-studio-2 sync standby yet")
    # Not steady: a standby that is not synchronous, HAProxy writing elsewhere, anything CRITICAL.
    no_sync = evaluate(fx.inventory(), fx.with_replicas(fx.healthy(), fx.member_replica(sync_state="async"), fx.cloud_replica()))
    roles, seen = steady_state_of(no_sync)
    assert roles is None and "no synchronous standby" in seen
    wrong_writer = dataclasses.replace(healthy, haproxy=tuple(dataclasses.replace(h, takes_writes=False) for h in healthy.haproxy))
    roles, seen = steady_state_of(wrong_writer)
    assert roles is None and seen.startswith("HAProxy writes -> none, leader mac-studio-1")


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


def test_the_verdict_line_is_last_and_tables_only_when_asked(monkeypatch, tmp_path):
    """On a terminal: a short summary and the verdict line; -v or --format table adds the
    tables (on stdout) and the verdict line still ends stderr; piped: JSON, unchanged."""
    from prontuario_cli import drill

    def runner(inventory, experiment, say, profile=None, progress=None):
        journal = Journal("failover", "kill", "run-1", "cluster.yaml", None, utc_now(), verdict="target-missed")
        journal.rollback, journal.reason = "complete", "RTO 31.0 s (target < 30)"
        journal.targets = [
            TargetCheck("RTO (fault → first write on the new primary)", 31.04, 30, "s", "<", False),
            TargetCheck("RPO (acknowledged writes lost)", 0, 0, "writes", "<=", True),
        ]
        journal.save(tmp_path)
        return journal

    monkeypatch.setattr(drill, "lab_profile", lambda inventory: None)
    monkeypatch.setattr(drill, "run", runner)
    args = ("-i", str(EXAMPLE), "drill", "failover", "--mode", "kill", "--yes")
    verdict = f"TARGET-MISSED  RTO 31.0 s (< 30)  RPO 0  report: {tmp_path}"

    plain = cli(*args)
    assert plain.code == ExitCode.TARGET_MISSED and json.loads(plain.out)["verdict"] == "target-missed"
    assert plain.err.splitlines()[-1][9:].startswith(verdict)

    screen = cli(*args, tty=True)
    assert screen.code == ExitCode.TARGET_MISSED and screen.out == ""
    last = screen.err.rstrip("\n").splitlines()[-1]
    assert last.startswith("\x1b[1;33m" + verdict) and "full tables: add -v" in screen.err

    for extra in (("-v",), ("--format", "table")):
        full = cli(*extra, *args, tty=True) if extra == ("-v",) else cli(*args, *extra, tty=True)
        assert full.code == ExitCode.TARGET_MISSED and "run-1" in full.out
        assert full.err.rstrip("\n").splitlines()[-1].startswith("\x1b[1;33m" + verdict)
