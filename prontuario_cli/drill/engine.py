"""The drill engine, in Chaos Toolkit's order: steady-state gate → method (fault and
probes) → steady state after → rollback, always attempted once anything was touched.

An experiment is a plain object that hands the engine lists of :class:`Activity`; the
engine times each one, records it in the journal, decides the verdict and never skips a
rollback silently. Ctrl-C is part of the contract (see :func:`run_experiment`): before the
fault it stops the drill, after it the drill rolls back, during the rollback it abandons
it — and the verdict says which.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from prontuario_cli.clock import utc_now
from prontuario_cli.drill.journal import Journal, StepRecord, TargetCheck
from prontuario_cli.errors import LockedError, ProntuarioError


class StepFailed(ProntuarioError):
    """An activity's own verdict: the condition it checks does not hold."""


@dataclass
class Activity:
    name: str
    run: Callable[[], Any]  # returns the step's output; raises to fail
    target_s: float | None = None  # shown live against the elapsed time (e.g. the RTO target)
    label: str | None = None  # what the elapsed time measures ("RTO")
    since: Callable[[], float | None] | None = None  # the time.monotonic() it counts from (default: the step's start)


Progress = Callable[[dict[str, Any]], None]
"""Structured progress (see ``cli/progress.py``): ``{"kind": "step" | "done" | "event" | "counters", ...}``."""


class Experiment(Protocol):
    drill: str
    mode: str

    def plan(self) -> list[str]: ...
    def steady_state(self) -> list[Activity]: ...
    def method(self) -> list[Activity]: ...
    def steady_state_after(self) -> list[Activity]: ...
    def rollback(self) -> list[Activity]: ...
    def measurements(self) -> dict[str, Any]: ...
    def targets(self) -> list[TargetCheck]: ...


def run_experiment(experiment: Experiment, journal: Journal, say: Callable[[str], None], progress: Progress | None = None) -> Journal:
    """Run every phase, fill the journal, set its verdict; never raises for Ctrl-C.

    A first Ctrl-C before the fault stops the drill (nothing was changed: the journal is
    marked interrupted and the command exits 130). After that, a Ctrl-C skips what is
    left of the method and the drill rolls back; the verdict is the drill's own. A Ctrl-C
    during the rollback abandons it: the verdict is rollback-failed and the journal
    lists what is left to do (``left_to_do``).

    Each step is reported once: with ``progress``, as a ``step`` event when it starts and
    a ``done`` event when it ends; without it, as one ``say`` line when it ends.
    """
    run = _Run(journal, say, progress)
    try:
        try:
            return _phases(experiment, journal, run)
        except KeyboardInterrupt:  # between two steps of the method: still roll back
            if run.stage != "method":
                raise
            run.interrupted = run.interrupted or "method"
            return _rollback_and_verdict(experiment, journal, run, method_ok=False, after_ok=False)
    except KeyboardInterrupt:  # between two steps otherwise: the conservative verdict
        if run.stage == "before":
            journal.verdict, journal.rollback = "aborted", "not needed"
            journal.reason = "interrupted by the operator before the fault (nothing was changed)"
            run.interrupted = run.interrupted or "steady-state-before"
        elif journal.rollback != "complete":
            done = {s.name for s in journal.steps if s.phase == "rollback" and s.status == "ok"}
            left = [a.name for a in run.rollback_activities if a.name not in done] or ["the whole rollback"]
            journal.verdict, journal.rollback, journal.left_to_do = "rollback-failed", "abandoned", left
            journal.reason = "ROLLBACK ABANDONED by the operator (Ctrl-C) — the cluster needs attention now; left to do: " + "; ".join(left)
            run.abandoned = True
        return _finish(journal, run)


def _phases(experiment: Experiment, journal: Journal, run: "_Run") -> Journal:
    before_ok = run.phase("steady-state-before", experiment.steady_state())
    if not before_ok:
        journal.verdict = "aborted"
        journal.rollback = "not needed"
        if run.interrupted:
            journal.reason = "interrupted by the operator before the fault (nothing was changed)"
        else:
            journal.reason = _first_failure(journal, "steady-state-before") + " (nothing was changed)"
        for activity in experiment.method() + experiment.steady_state_after():
            journal.steps.append(StepRecord("method", activity.name, "skipped"))
        journal.steps.append(StepRecord("rollback", "rollback", "skipped", output="nothing was changed"))
        return _finish(journal, run)

    run.stage = "method"
    method_ok = run.phase("method", experiment.method())
    after_ok = method_ok and run.phase("steady-state-after", experiment.steady_state_after())
    if not method_ok:
        for activity in experiment.steady_state_after():
            journal.steps.append(StepRecord("steady-state-after", activity.name, "skipped"))
    return _rollback_and_verdict(experiment, journal, run, method_ok=method_ok, after_ok=after_ok)


def _rollback_and_verdict(experiment: Experiment, journal: Journal, run: "_Run", *, method_ok: bool, after_ok: bool) -> Journal:
    run.stage = "rollback"
    run.rollback_activities = experiment.rollback()
    run.say("interrupted — rolling back… (Ctrl-C again abandons it)" if run.interrupted else "rolling back… (Ctrl-C abandons it)")
    rollback_ok = run.phase("rollback", run.rollback_activities, stop_on_failure=False)

    journal.measurements = experiment.measurements()
    journal.targets = experiment.targets()
    journal.left_to_do = [s.name for s in journal.steps if s.phase == "rollback" and s.status != "ok"]
    left = "; ".join(journal.left_to_do)
    if run.abandoned:
        journal.rollback, journal.verdict = "abandoned", "rollback-failed"
        journal.reason = f"ROLLBACK ABANDONED by the operator (Ctrl-C) — the cluster needs attention now; left to do: {left}"
        said = f"rollback abandoned — left to do: {left}"
    elif not rollback_ok:
        journal.rollback, journal.verdict = "failed", "rollback-failed"
        journal.reason = f"ROLLBACK FAILED: {_first_failure(journal, 'rollback')} — the cluster needs attention now; left to do: {left}"
        said = f"rollback failed — left to do: {left}"
    else:
        journal.rollback, said = "complete", "rollback complete"
        if run.interrupted:
            journal.verdict = "failed"
            journal.reason = f"interrupted by the operator during {run.interrupted}; rolled back: the cluster is in its steady state"
        elif not method_ok:
            journal.verdict = "failed"
            journal.reason = _first_failure(journal, "method")
        elif not after_ok:
            journal.verdict = "failed"
            journal.reason = "steady state not restored: " + _first_failure(journal, "steady-state-after")
        elif not all(t.met for t in journal.targets):
            journal.verdict = "target-missed"
            journal.reason = "; ".join(f"{t.name} {t.value} {t.unit} (target {t.comparison} {t.target:g})" for t in journal.targets if not t.met)
        else:
            journal.verdict = "passed"
    run._said(said)  # the verdict is set first: a Ctrl-C now changes nothing
    return _finish(journal, run)


class _Run:
    """One run of the phases: which step a Ctrl-C hit, and whether the rollback was abandoned."""

    def __init__(self, journal: Journal, say: Callable[[str], None], progress: Progress | None = None):
        self.journal = journal
        self.say = say
        self.progress = progress
        self.interrupted: str | None = None  # "<phase>: <step>" of the first Ctrl-C
        self.abandoned = False
        self.stage = "before"  # before | method | rollback
        self.rollback_activities: list[Activity] = []

    def phase(self, name: str, activities: list[Activity], stop_on_failure: bool = True) -> bool:
        ok = True
        for activity in activities:
            record = StepRecord(phase=name, name=activity.name)
            self.journal.steps.append(record)
            if name == "rollback" and self.abandoned:
                record.status, record.output = "skipped", "rollback abandoned by the operator"
                continue
            if (not ok and stop_on_failure) or (self.interrupted and name != "rollback"):
                record.status = "skipped"
                continue
            record.started_at = utc_now()
            started = time.monotonic()
            try:  # the whole step, sayings included: a Ctrl-C anywhere in it is this step's
                try:
                    self._started(name, activity)
                    record.output = activity.run()
                    record.status = "ok"
                except ProntuarioError as exc:
                    record.status, record.output = "failed", exc.one_line()
                except Exception as exc:  # an experiment bug must not skip the rollback
                    record.status, record.output = "failed", f"unexpected {type(exc).__name__}: {exc}"
                finally:
                    record.ended_at = utc_now()
                    record.duration_s = round(time.monotonic() - started, 3)
                self._done(name, activity, record)
            except KeyboardInterrupt:
                record.status = "failed"
                if name == "rollback":
                    record.output = "abandoned by the operator (Ctrl-C during the rollback)"
                    self.abandoned = True
                else:
                    record.output = "interrupted by the operator"
                    self.interrupted = self.interrupted or f"{name}: {activity.name}"
                if self.progress is not None:
                    self._quietly(lambda: self.progress(_done_event(name, activity, record, record.output)))
                else:
                    self._said(f"[{name}] {activity.name}: {record.output}")
            if record.status != "ok":
                ok = False
        return ok

    def _started(self, phase: str, activity: Activity) -> None:
        if self.progress is None:
            return
        event: dict[str, Any] = {"kind": "step", "phase": phase, "name": activity.name}
        if activity.target_s is not None:
            event["target_s"] = activity.target_s
        if activity.label:
            event["label"] = activity.label
        if activity.since is not None:
            event["since"] = activity.since()
        self.progress(event)

    def _done(self, phase: str, activity: Activity, record: StepRecord) -> None:
        if self.progress is None:
            self.say(f"[{phase}] {activity.name}: {record.status}" + (f" — {_brief(record.output)}" if record.status != "ok" else ""))
            return
        self.progress(_done_event(phase, activity, record, _brief(record.output) if record.output not in (None, "") else ""))

    def _quietly(self, call: Callable[[], None]) -> None:
        try:
            call()
        except KeyboardInterrupt:
            pass

    def _said(self, text: str) -> None:
        """Say ``text``; a Ctrl-C while saying it is ignored (the journal already holds the truth)."""
        try:
            self.say(text)
        except KeyboardInterrupt:  # one more Ctrl-C while saying it changes nothing
            pass


def _done_event(phase: str, activity: Activity, record: StepRecord, detail: Any) -> dict[str, Any]:
    return {"kind": "done", "phase": phase, "name": activity.name, "status": record.status, "seconds": record.duration_s, "detail": detail}


def _finish(journal: Journal, run: _Run) -> Journal:
    journal.ended_at = utc_now()
    journal.interrupted = run.interrupted is not None or run.abandoned
    return journal


def _first_failure(journal: Journal, phase: str) -> str:
    for step in journal.steps:
        if step.phase == phase and step.status == "failed":
            return f"{step.name}: {_brief(step.output)}"
    return "a step failed"


def _brief(output: Any) -> str:
    text = output if isinstance(output, str) else json.dumps(output, default=str)
    return text if len(text) < 200 else text[:199] + "…"


# --------------------------------------------------------------------------- lock


def drill_lock(state_dir: Path, drill: str):
    """One drill at a time on this machine (cron and a person): a non-blocking flock."""
    from prontuario_cli.files import exclusive_lock

    path = Path(state_dir) / "drill.lock"
    return exclusive_lock(
        path, f"drill {drill}", lambda holder: LockedError(f"another drill is running ({holder})", hint=f"wait for it to finish; lock file {path}")
    )
