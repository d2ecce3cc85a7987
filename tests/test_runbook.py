"""The runbook engine on a toy runbook: plan, resume, stop-after, failures, confirmation,
audit entries and the journal's name. No cluster: the steps only record that they ran."""

from __future__ import annotations

import json
import stat

import pytest

from prontuario_cli.errors import LockedError, OperationFailed, RefusedError, UsageError
from prontuario_cli.inventory import parse_inventory
from prontuario_cli.runbook.engine import Interrupted, Runbook, Step
from prontuario_cli.runbook.state import RunState
from tests.helpers import EXAMPLE


class Toy(Runbook):
    """look (every run, before the journal) -> check (repeatable) -> change (asks; has a part) -> tell."""

    title = "toy run"
    command = "toy"
    kind = "toy-run"

    def __init__(self, *, fail: str | None = None, refuse: bool = False, stop_after: str | None = None, confirm=None):
        self.calls: list[str] = []
        self.fail = fail
        self.refuse = refuse
        self.said: list[str] = []
        super().__init__(parse_inventory(EXAMPLE.read_text()), "node/a", say=self.said.append, confirm=confirm, stop_after=stop_after)

    def steps(self):
        return (
            Step("look", self._look, "look at the node", precondition=True),
            Step("check", lambda state: self._act(state, "check"), "check the node", repeatable=True),
            Step("change", self._change, "change the node", confirm=True, parts=("half",)),
            Step("tell", lambda state: self._act(state, "tell"), "tell people"),
        )

    def _look(self, state):
        self.calls.append("look")
        if self.refuse:
            raise RefusedError("the node is busy")
        return "looked"

    def _act(self, state, name: str) -> str:
        self.calls.append(name)
        if self.fail == name:
            raise OperationFailed(f"{name} went wrong", hint="fix it")
        return f"{name} ok"

    def _change(self, state) -> str:
        self.calls.append("change:half")
        state.set(half=True)
        self.checkpoint("half")
        return self._act(state, "change")

    def new_run(self):
        return {"subject": self.subject}

    def report(self, state, resumed):
        return {"state": state, "resumed": resumed, "steps": self.step_results(state)}


@pytest.fixture
def audit_entries(isolated_state):
    def read() -> list[dict]:
        path = isolated_state / "audit.jsonl"
        return [e for e in map(json.loads, path.read_text().splitlines()) if "outcome" in e] if path.exists() else []  # outcomes, not intents

    return read


def test_the_journal_is_named_kind_dash_subject_and_private():
    toy = Toy()
    assert toy.state_path.name == "toy-run-node_a.json"
    assert RunState.path_for("/x", "gcp-promote", "replica-a").as_posix() == "/x/gcp-promote-replica-a.json"
    report = toy.run()
    assert report["state"].complete and stat.S_IMODE(toy.state_path.stat().st_mode) == 0o600
    assert report["state"].get("subject") == "node/a" and report["state"].get("run_id")


def test_the_plan_lists_the_steps_in_order_and_marks_what_a_resume_skips():
    assert Toy().plan() == ["look at the node", "check the node", "change the node", "tell people"]
    with pytest.raises(Interrupted):
        Toy(stop_after="change").run()
    # look and check run again on resume: only change is "(done)".
    assert Toy().plan() == ["look at the node", "check the node", "change the node (done)", "tell people"]


def test_stop_after_interrupts_right_after_the_step_is_recorded(audit_entries):
    toy = Toy(stop_after="change")
    with pytest.raises(Interrupted, match="stopped after change"):
        toy.run()
    state = RunState.load(toy.state_path)
    assert state.done("check") and state.done("change") and not state.steps.get("tell")
    assert state.details("change")["detail"] == "change ok" and not state.complete
    assert [(e["command"], e["outcome"]) for e in audit_entries()] == [("toy: look", "ok"), ("toy: check", "ok"), ("toy: change", "ok")]


def test_a_resume_reruns_repeatable_steps_and_never_a_done_one():
    with pytest.raises(Interrupted):
        Toy(stop_after="change").run()
    toy = Toy()
    report = toy.run(resume=True)
    assert toy.calls == ["look", "check", "tell"]
    assert [(r.step, r.status) for r in report["steps"]] == [("look", "done"), ("check", "done"), ("change", "already done"), ("tell", "done")]
    assert report["resumed"] and report["state"].complete
    assert "resuming toy run" in " ".join(toy.said)


def test_stop_after_a_part_interrupts_inside_the_step_and_the_step_runs_again():
    toy = Toy(stop_after="half")
    with pytest.raises(Interrupted, match="stopped after change part half"):
        toy.run()
    state = RunState.load(toy.state_path)
    assert state.get("half") is True and state.status("change") == "failed"
    assert state.details("change")["error"] == "interrupted"
    again = Toy()
    again.run(resume=True)
    assert again.calls == ["look", "check", "change:half", "change", "tell"]


def test_a_failing_step_is_journaled_with_its_message_and_audited_once(audit_entries):
    toy = Toy(fail="change")
    with pytest.raises(OperationFailed, match="change went wrong"):
        toy.run()
    state = RunState.load(toy.state_path)
    assert state.status("change") == "failed" and not state.complete
    assert state.details("change")["error"] == "change went wrong — fix it"
    assert state.details("change")["seconds"] >= 0
    assert [r.status for r in toy.results] == ["done", "done", "failed"]
    changes = [e for e in audit_entries() if e["command"] == "toy: change"]
    assert len(changes) == 1 and changes[0]["outcome"] == "failed" and "change went wrong" in changes[0]["error"]
    assert "toy: tell" not in [e["command"] for e in audit_entries()]


def test_confirm_is_asked_only_before_confirm_steps():
    questions: list[str] = []
    Toy(confirm=questions.append).run()
    assert questions == ["toy run step 'change': go on?"]


def test_a_refused_confirmation_stops_before_the_step_starts(audit_entries):
    def no(question):
        raise RefusedError("not confirmed")

    toy = Toy(confirm=no)
    with pytest.raises(RefusedError):
        toy.run()
    state = RunState.load(toy.state_path)
    assert "change" not in state.steps and "change:half" not in toy.calls
    assert "toy: change" not in [e["command"] for e in audit_entries()]


def test_a_refused_precondition_is_audited_and_leaves_no_journal(audit_entries):
    toy = Toy(refuse=True)
    with pytest.raises(RefusedError, match="busy"):
        toy.run()
    assert not toy.state_path.exists() and toy.calls == ["look"]
    assert [(e["command"], e["outcome"]) for e in audit_entries()] == [("toy: look", "refused")]


def test_an_unknown_stop_after_is_a_usage_error():
    with pytest.raises(UsageError, match="'nope' is not a step of the toy run") as info:
        Toy(stop_after="nope")
    assert "look, check, change, tell, half" in info.value.one_line()


def test_admission_resume_needs_a_journal_and_a_new_run_refuses_one_in_progress():
    with pytest.raises(UsageError, match="nothing to resume"):
        Toy().run(resume=True)
    with pytest.raises(Interrupted):
        Toy(stop_after="check").run()
    with pytest.raises(RefusedError, match="already in progress") as info:
        Toy().run()
    assert "prontuario toy --resume" in info.value.one_line()


def test_one_run_at_a_time():
    toy = Toy()
    with toy.lock():
        with pytest.raises(LockedError, match="another toy is running"):
            Toy().run()
