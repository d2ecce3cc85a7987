"""A bootstrap run through the shared runbook engine: look (facts, what would change), confirm, apply.

Two steps, each audited (``bootstrap run: look``, ``bootstrap run: apply``) and journaled:
``look`` connects to every target and asks pyinfra what would change (nothing is
written); ``apply`` asks for confirmation with that plan in front of the operator, then
runs it. Bootstrap is idempotent, so a new run replaces an old journal instead of
resuming it: running again *is* the resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prontuario_cli.bootstrap import engine
from prontuario_cli.errors import ExitCode, OperationFailed, PermissionProblem, UnavailableError
from prontuario_cli.report import Table
from prontuario_cli.runbook.engine import Runbook, Step


@dataclass(frozen=True)
class BootstrapReport:
    check: bool
    hosts: tuple[engine.HostRecap, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return not any(h.failed or h.unreachable for h in self.hosts)

    def tables(self) -> list[Table]:
        rows = [(h.node, h.status, str(h.ok), str(h.changed), str(h.failed), _detail(h, self.check)) for h in self.hosts]
        title = "what would change (--check: nothing was changed)" if self.check else "recap"
        return [Table(title, ("node", "status", "ok", "changed" if not self.check else "would change", "failed", "detail"), rows)]

    def exit_code(self) -> int:
        """77 a host key refused, 69 a node unreachable, 1 a step failed, 0 otherwise."""
        if any(h.unreachable and "HOST KEY" in h.unreachable.upper() for h in self.hosts):
            return ExitCode.PERMISSION
        if any(h.unreachable for h in self.hosts):
            return ExitCode.UNAVAILABLE
        return ExitCode.OK if self.ok else ExitCode.FAILED


def _detail(h: engine.HostRecap, check: bool) -> str:
    if h.unreachable:
        return h.unreachable
    if h.failure:
        f = h.failure
        return f"step '{f.step}': {f.command[:80]} exited {f.exit_code if f.exit_code is not None else '?'}: {f.output.splitlines()[-1] if f.output else ''}"
    return ", ".join(h.changes[:6]) + (" …" if len(h.changes) > 6 else "") if h.changes else ("nothing to change" if check else "")


class Bootstrap(Runbook):
    title, command, kind = "bootstrap", "bootstrap run", "bootstrap"

    def __init__(self, inventory, nodes: list[str] | None, *, playbooks: Path | None = None, diff: bool = False,
                 accept_new: bool = False, prefix: str = "", on_event=None, **kwargs):
        self.planned = engine.plan(inventory, nodes, playbooks)  # validated before anything connects
        self.diff, self.accept_new, self.prefix, self.on_event = diff, accept_new, prefix, on_event
        self.looked: list[engine.HostRecap] = []
        self.applied: list[engine.HostRecap] = []
        super().__init__(inventory, "+".join(p.node.name for p in self.planned), **kwargs)

    def look(self) -> BootstrapReport:
        """What would change on each target (nothing is written)."""
        import time

        started = time.monotonic()
        self.looked = engine.run(self.inv, self.planned, check=True, diff=self.diff, accept_new=self.accept_new, prefix=self.prefix, on_event=self.on_event)
        return BootstrapReport(True, tuple(self.looked), round(time.monotonic() - started, 2))

    def steps(self):
        targets = ", ".join(f"{p.node.name} ({p.playbook.name}: {len(p.steps)} steps)" for p in getattr(self, "planned", ()))
        return (
            Step("look", self._look, f"connect to {targets or 'the targets'} and read what would change", repeatable=True),
            Step("apply", self._apply, "apply the playbooks, hosts in parallel; a failing step stops its host", confirm=True, skip=self._nothing_to_do),
        )

    def plan(self) -> list[str]:
        return [step.plan for step in self.steps()]  # never "(done)": a run is never a resume

    def _nothing_to_do(self) -> str | None:
        """Every target already is what its playbook says: nothing to confirm, nothing to run."""
        if self.looked and not any(h.changed or h.failed or h.unreachable for h in self.looked):
            self.applied = list(self.looked)
            return "nothing to change on " + ", ".join(h.node for h in self.looked)
        return None

    def _look(self, state) -> str:
        report = self.look()
        unreachable = [h for h in report.hosts if h.unreachable]
        if unreachable:
            text = "; ".join(f"{h.node}: {h.unreachable}" for h in unreachable)
            refused = PermissionProblem if report.exit_code() == ExitCode.PERMISSION else UnavailableError
            raise refused(text, hint="nothing was changed on any node")
        failed = [h for h in report.hosts if h.failed]
        if failed:
            self.applied = list(report.hosts)  # the recap to show: nothing was applied anywhere
            raise OperationFailed("; ".join(f"{h.node}: {_detail(h, True)}" for h in failed), hint="nothing was changed on any node")
        return ", ".join(f"{h.node}: {h.changed} to change" for h in report.hosts)

    def _apply(self, state) -> str:
        self.applied = engine.run(self.inv, self.planned, check=False, diff=False, accept_new=self.accept_new, prefix=self.prefix, on_event=self.on_event)
        summary = ", ".join(f"{h.node}: {h.status} (ok {h.ok}, changed {h.changed}, failed {h.failed})" for h in self.applied)
        failed = [h for h in self.applied if h.failed or h.unreachable]
        if failed:
            raise OperationFailed("; ".join(f"{h.node}: {_detail(h, False)}" for h in failed), hint="fix it and run bootstrap again: steps already applied change nothing")
        return summary

    def report(self, state, resumed: bool) -> BootstrapReport:
        return BootstrapReport(False, tuple(self.applied), round(sum(r.seconds or 0 for r in self.results), 2))

    def run(self, resume: bool = False):
        with self.lock():
            path = self.state_path
            if path.exists():
                path.unlink()  # idempotent: a new run, never a resume of an old one
            return self._run(False)
