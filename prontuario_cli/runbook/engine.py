"""The runbook engine: ordered named steps, planned first, confirmed, audited, journaled.

A runbook subclasses :class:`Runbook` and lists its :class:`Step` objects; the engine
does the rest, the same way for every runbook::

    class Rotate(Runbook):
        title, command, kind = "rotation", "cert rotate", "cert-rotate"

        def steps(self):
            return (Step("check", self._check, "check the certificates", repeatable=True),
                    Step("swap", self._swap, "install the new certificate", confirm=True))

    rotate = Rotate(inventory, "mac-studio-1", say=print, confirm=ask)
    for line in rotate.plan():        # printed before anything changes
        print(line)
    report = rotate.run(resume=False)  # run(resume=True) continues an interrupted run

Per step, in order:

- a step the journal records as done is not run again on resume, unless it is
  ``repeatable`` (a check, a fence: cheap and safe to redo);
- ``skip`` may say the step has nothing to do on this run (``skipped``, not journaled);
- a ``confirm`` step asks the caller's ``confirm`` callback first (it raises to stop);
- ``precondition`` steps run on every run, before the journal is created or opened: a
  refusal there is audited but leaves no journal behind;
- ONE audited operation ``"<command>: <step>"`` per step: its intent entry is written
  before the step acts (if it cannot be, the step does not run), its outcome after (ok,
  failed, interrupted); the journal says ``started`` once the intent is on record, then
  ``done`` (detail, seconds) or ``failed`` (error, seconds);
- ``stop_after`` (a step name, or one of a step's ``parts`` reached through
  :meth:`Runbook.checkpoint`) raises :class:`Interrupted` right after it was recorded:
  tests and rehearsals use it to practise a resume. It is given to the constructor only.
"""

from __future__ import annotations

import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from prontuario_cli.clock import utc_now
from prontuario_cli.errors import LockedError, ProntuarioError, RefusedError, UsageError
from prontuario_cli.inventory import Inventory
from prontuario_cli.runbook.state import RunState


class Interrupted(KeyboardInterrupt):
    """Raised by the stop-after hook: behaves like Ctrl-C right after a step was recorded."""


@dataclass(frozen=True)
class Step:
    """One named step of a runbook.

    ``action(state)`` does the work and returns a one-line detail (a precondition gets
    the journal of the run being resumed, or None). ``plan`` is its line in the plan.
    """

    name: str
    action: Callable[[Any], str]
    plan: str
    repeatable: bool = False
    confirm: bool = False
    precondition: bool = False
    skip: Callable[[], str | None] | None = None
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepResult:
    """What one step did in this run (a report's ``steps`` rows)."""

    step: str
    status: str  # done, already done, skipped, failed, not run
    seconds: float | None
    detail: str


def describe_failure(exc: BaseException) -> str:
    """One line for a step's failure, as the journal and the report keep it."""
    if isinstance(exc, ProntuarioError):
        return exc.one_line()
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"


def report_tables(what: str, completed: bool, rows, steps: Sequence[StepResult], notes: Sequence[str]) -> list:
    """The tables of a runbook's report: summary (``rows``), steps, notes."""
    from prontuario_cli.report import Table

    out = [
        Table(f"{what} " + ("complete" if completed else "INCOMPLETE"), ("key", "value"), tuple(rows)),
        Table("steps", ("step", "status", "seconds", "detail"), tuple((s.step, s.status, s.seconds, s.detail) for s in steps)),
    ]
    if notes:
        out.append(Table("notes", ("note",), tuple((n,) for n in notes)))
    return out


def new_run_id() -> str:
    """``20261125T030000Z-a1b2c3``: when the run started, and six random hex digits."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"


class Runbook:
    """The engine. Subclasses set the class attributes, implement :meth:`steps` and
    :meth:`report`, and may override the hooks (``admit``, ``new_run``, ``opened``,
    ``complete``, ``audit_args``, ``lock``).

    A subclass sets its own attributes first and calls ``super().__init__`` last:
    the constructor validates ``stop_after`` against :meth:`steps`.
    """

    title: str  # "promotion": in messages ("a promotion of X is already in progress")
    command: str  # "gcp promote": audit entries are "<command>: <step>"
    kind: str  # "gcp-promote": the journal is <state dir>/<kind>-<subject>.json

    def __init__(
        self,
        inventory: Inventory,
        subject: str,
        *,
        say: Callable[[str], None] | None = None,
        confirm: Callable[[str], None] | None = None,
        stop_after: str | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.inv = inventory
        self.subject = subject
        self.say = say or (lambda text: None)
        # Structured progress (``{"kind": "step" | "done", ...}``, see cli/progress.py); when
        # set, steps are reported through it instead of ``say``. Settable after construction.
        self.progress = progress
        self.confirm = confirm or (lambda question: None)
        self.results: list[StepResult] = []
        self._part_of: dict[str, str] = {}
        self.stop_after = self._stop_point(stop_after)

    def _stop_point(self, name: str | None) -> str | None:
        steps = self.steps()
        self._part_of = {part: step.name for step in steps for part in step.parts}
        if not name:
            return None
        known = [step.name for step in steps] + list(self._part_of)
        if name not in known:
            raise UsageError(f"stop_after={name!r} is not a step of the {self.title}", hint=f"one of: {', '.join(known)}")
        return name

    # ------------------------------------------------------------------ what a subclass provides

    def steps(self) -> Sequence[Step]:
        """The steps, in order (built on each call: plan lines may reflect what was seen)."""
        raise NotImplementedError

    def report(self, state: RunState, resumed: bool):
        """The run's report (a dataclass the CLI renders)."""
        raise NotImplementedError

    def new_run(self) -> dict[str, Any]:
        """Fields of a new journal, besides ``run_id`` and ``started_at``."""
        return {}

    def admit(self, state: RunState | None, resume: bool) -> None:
        """Refuse to start (raise) before anything runs. ``state`` is the existing journal."""
        if resume and state is None:
            raise UsageError(f"nothing to resume: no {self.title} of {self.subject} was started here ({self.state_path})", hint="start one without --resume")
        if state is not None and not resume and state.complete:
            raise RefusedError(
                f"a {self.title} of {self.subject} already completed (run {state.get('run_id')}, completed {state.get('completed_at')})",
                hint=f"its journal is {self.state_path}",
            )
        if state is not None and not resume:
            raise RefusedError(
                f"a {self.title} of {self.subject} is already in progress (run {state.get('run_id')}, started {state.get('started_at')})",
                hint=f"continue it with: prontuario {self.command} --resume",
            )

    def opened(self, state: RunState) -> None:
        """Called once the journal is created or loaded, before the steps are recorded."""

    def complete(self, state: RunState) -> None:
        """Record the end of a run whose steps all went through."""
        if not state.complete:
            state.set(completed_at=utc_now())

    def audit_args(self, state: RunState | None) -> dict[str, Any]:
        """The ``args`` of each step's audit entry."""
        return {"subject": self.subject, "run_id": state.get("run_id") if state is not None else None}

    def lock(self) -> AbstractContextManager:
        """One run of this kind at a time on this machine (``<kind>.lock`` in the state dir)."""
        from prontuario_cli.files import exclusive_lock

        return exclusive_lock(
            self.state_dir / f"{self.kind}.lock",
            f"{self.command} {self.subject}",
            lambda holder: LockedError(f"another {self.command} is running ({holder})", hint="wait for it; never run two at once"),
        )

    # ------------------------------------------------------------------ where

    @property
    def state_dir(self) -> Path:
        from prontuario_cli.paths import state_dir

        return state_dir(self.inv)

    @property
    def state_path(self) -> Path:
        return RunState.path_for(self.state_dir, self.kind, self.subject)

    # ------------------------------------------------------------------ plan and run

    def plan(self) -> list[str]:
        """One line per step, in order; ``(done)`` marks a step a resume will not run again."""
        state = RunState.load(self.state_path)
        return [step.plan + (" (done)" if state is not None and self._will_not_rerun(state, step) else "") for step in self.steps()]

    @staticmethod
    def _will_not_rerun(state: RunState, step: Step) -> bool:
        return state.done(step.name) and not step.repeatable and not step.precondition

    def run(self, resume: bool = False):
        """Run (or with ``resume`` continue) the runbook under its lock; returns the report.

        Refusals are raised before anything changes; a failing step raises its error
        with the journal saved: run again with ``resume``.
        """
        with self.lock():
            return self._run(resume)

    def _run(self, resume: bool):
        state = RunState.load(self.state_path)
        self.admit(state, resume)
        if state is not None and state.complete:
            self.say(f"{self.title} of {self.subject} already complete (run {state.get('run_id')})")
            return self.report(state, resumed=True)
        steps = self.steps()
        checked = [(step, *self._precondition(state, step)) for step in steps if step.precondition]
        if state is None:
            state = RunState.create(self.state_path, run_id=new_run_id(), started_at=utc_now(), **self.new_run())
        else:
            self.say(f"resuming {self.title} {state.get('run_id')} of {self.subject}")
        self.opened(state)
        for step, detail, seconds in checked:
            self._record(state, step.name, detail, seconds)
        for step in steps:
            if not step.precondition:
                self.execute(state, step)
        self.complete(state)
        return self.report(state, resumed=resume)

    def _precondition(self, state: RunState | None, step: Step) -> tuple[str, float]:
        started = time.monotonic()
        self._step_started(step.name, step.plan)
        with self.audited(step.name, state) as details:
            detail = step.action(state)
            details["detail"] = detail
        return detail, time.monotonic() - started

    def execute(self, state: RunState, step: Step) -> None:
        """Run one step: skip it if done (and not repeatable), ask, audit, journal."""
        name = step.name
        if state.done(name) and not step.repeatable:
            self._already_done(state, name)
            return
        reason = step.skip() if step.skip is not None else None
        if reason is not None:
            if state.done(name):
                self._already_done(state, name)
            else:
                self.results.append(StepResult(name, "skipped", None, reason))
            return
        if step.confirm:  # the question comes with the step's plan; then its live line
            self.say(f"→ {name}: {step.plan}")
            self.confirm(f"{self.title} step '{name}': go on?")
            if self.progress is not None:
                self.progress({"kind": "step", "name": f"{name}: {step.plan}"})
        else:
            self._step_started(name, step.plan)
        started = time.monotonic()
        try:
            with self.audited(name, state) as details:
                state.mark(name, "started")  # only once the intent is on record
                detail = step.action(state)
                details["detail"] = detail
        except BaseException as exc:
            seconds = round(time.monotonic() - started, 3)
            message = describe_failure(exc)
            state.mark(name, "failed", error=message, seconds=seconds)
            self._finished(StepResult(name, "failed", seconds, message))
            raise
        self._record(state, name, detail, time.monotonic() - started)

    def _step_started(self, name: str, plan: str) -> None:
        """Report a step starting: a live line with progress; else one "→" line (the "✓" follows)."""
        if self.progress is not None:
            self.progress({"kind": "step", "name": f"{name}: {plan}"})
        else:
            self.say(f"→ {name}: {plan}")

    def _finished(self, result: StepResult) -> None:
        """Keep a step's result and report it once: to the live view, else one line."""
        self.results.append(result)
        failed = result.status == "failed"
        if self.progress is not None:
            self.progress({"kind": "done", "name": result.step, "status": "failed" if failed else "ok", "seconds": result.seconds, "detail": result.detail})
        elif failed:
            self.say(f"✗ {result.step}: {result.detail}")
        else:
            self.say(f"✓ {result.step} ({result.seconds:.1f} s): {result.detail}")

    def _already_done(self, state: RunState, name: str) -> None:
        details = state.details(name)
        self.results.append(StepResult(name, "already done", details.get("seconds"), details.get("detail", "")))

    def _record(self, state: RunState, name: str, detail: str, seconds: float) -> None:
        seconds = round(seconds, 3)
        state.mark(name, "done", detail=detail, seconds=seconds)
        self._finished(StepResult(name, "done", seconds, detail))
        if self.stop_after == name:
            raise Interrupted(f"stopped after {name} (stop_after)")

    def checkpoint(self, part: str) -> None:
        """A step's ``part`` was just recorded: the stop-after hook may stop the run here."""
        if self.stop_after == part:
            raise Interrupted(f"stopped after {self._part_of.get(part, '?')} part {part} (stop_after)")

    def audited(self, step: str, state: RunState | None):
        """Audit one step (``"<command>: <step>"``): intent before it acts, outcome after."""
        from prontuario_cli import audit

        return audit.action(audit.log_for(self.inv), f"{self.command}: {step}", self.audit_args(state))

    def step_results(self, state: RunState) -> list[StepResult]:
        """This run's results; for a run that did nothing here, what the journal says."""
        if self.results:
            return list(self.results)
        out = []
        for step in self.steps():
            details = state.details(step.name)
            status = "done" if state.done(step.name) else (state.status(step.name) or "not run")
            out.append(StepResult(step.name, status, details.get("seconds"), details.get("detail", "")))
        return out
