"""The drill engine, in Chaos Toolkit's order: steady-state gate → method (fault and
probes) → steady state after → rollback, always attempted once anything was touched.

An experiment is a plain object that hands the engine lists of :class:`Activity`; the
engine times each one, records it in the journal, decides the verdict and never skips a
rollback silently.
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


def run_experiment(experiment: Experiment, journal: Journal, say: Callable[[str], None]) -> Journal:
    """Run every phase, fill the journal, set its verdict. Re-raises Ctrl-C after rollback."""
    interrupted: BaseException | None = None

    def phase(name: str, activities: list[Activity], stop_on_failure: bool = True) -> bool:
        nonlocal interrupted
        ok = True
        for activity in activities:
            record = StepRecord(phase=name, name=activity.name)
            journal.steps.append(record)
            if (not ok and stop_on_failure) or (interrupted and name != "rollback"):
                record.status = "skipped"
                continue
            say(f"[{name}] {activity.name} …")
            record.started_at = utc_now()
            started = time.monotonic()
            try:
                record.output = activity.run()
                record.status = "ok"
            except KeyboardInterrupt as exc:
                record.status, record.output = "failed", "interrupted by the operator"
                interrupted = exc
                ok = False
            except ProntuarioError as exc:
                record.status, record.output = "failed", exc.one_line()
                ok = False
            except Exception as exc:  # an experiment bug must not skip the rollback
                record.status, record.output = "failed", f"unexpected {type(exc).__name__}: {exc}"
                ok = False
            finally:
                record.ended_at = utc_now()
                record.duration_s = round(time.monotonic() - started, 3)
            say(f"[{name}] {activity.name}: {record.status}" + (f" — {_brief(record.output)}" if record.status != "ok" else ""))
        return ok

    before_ok = phase("steady-state-before", experiment.steady_state())
    if not before_ok:
        journal.verdict = "aborted"
        journal.reason = _first_failure(journal, "steady-state-before") + " (nothing was changed)"
        for activity in experiment.method() + experiment.steady_state_after():
            journal.steps.append(StepRecord("method", activity.name, "skipped"))
        journal.steps.append(StepRecord("rollback", "rollback", "skipped", output="nothing was changed"))
        return _finish(experiment, journal, interrupted)

    method_ok = phase("method", experiment.method())
    after_ok = method_ok and phase("steady-state-after", experiment.steady_state_after())
    if not method_ok:
        for activity in experiment.steady_state_after():
            journal.steps.append(StepRecord("steady-state-after", activity.name, "skipped"))
    rollback_ok = phase("rollback", experiment.rollback(), stop_on_failure=False)

    journal.measurements = experiment.measurements()
    journal.targets = experiment.targets()
    if not rollback_ok:
        journal.verdict = "rollback-failed"
        journal.reason = "ROLLBACK FAILED: " + _first_failure(journal, "rollback") + " — the cluster needs attention now"
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
    return _finish(experiment, journal, interrupted)


def _finish(experiment: Experiment, journal: Journal, interrupted: BaseException | None) -> Journal:
    journal.ended_at = utc_now()
    journal.interrupted = interrupted is not None
    if interrupted is not None:
        if journal.verdict != "rollback-failed":
            journal.verdict = "failed"
        journal.reason = "interrupted by the operator; " + (journal.reason or "rollback attempted")
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
