"""A drill's journal: every step with its times and outcome, the measurements, the targets
and the verdict. Saved as JSON (for scripts and the compliance report) and rendered as
Markdown (for people) in the reports directory.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prontuario_cli.errors import ExitCode
from prontuario_cli.report import Table, to_jsonable

# Verdicts, worst last; each has its own exit code.
VERDICT_EXIT = {
    "passed": ExitCode.OK,
    "target-missed": ExitCode.TARGET_MISSED,
    "aborted": ExitCode.ABORTED,
    "failed": ExitCode.FAILED,
    "rollback-failed": ExitCode.ROLLBACK_FAILED,
}
PHASES = ("steady-state-before", "method", "steady-state-after", "rollback")


@dataclass
class StepRecord:
    phase: str
    name: str
    status: str = "pending"  # ok | failed | skipped
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    output: Any = None


@dataclass(frozen=True)
class TargetCheck:
    """One measurement compared with its target."""

    name: str
    value: float | None
    target: float
    unit: str
    comparison: str  # "<" or "<="
    met: bool


@dataclass
class Journal:
    drill: str  # health | failover | cloud
    mode: str
    run_id: str
    inventory: str
    profile: str | None
    started_at: str
    ended_at: str | None = None
    dry_run: bool = False
    steps: list[StepRecord] = field(default_factory=list)
    measurements: dict[str, Any] = field(default_factory=dict)
    targets: list[TargetCheck] = field(default_factory=list)
    verdict: str = "failed"
    reason: str = ""
    journal_path: str | None = None
    report_path: str | None = None
    interrupted: bool = False  # a Ctrl-C stopped the drill (or abandoned its rollback)
    rollback: str = ""  # complete | failed | abandoned | not needed
    left_to_do: list[str] = field(default_factory=list)  # rollback steps that did not complete
    timeline: str = ""  # the PostgreSQL timeline change the drill caused, as recorded for the checks

    def exit_code(self) -> ExitCode:
        """The verdict's exit code; 130 only for a Ctrl-C that came before anything was changed."""
        if self.interrupted and self.verdict == "aborted":
            return ExitCode.INTERRUPTED
        return VERDICT_EXIT[self.verdict]

    # -------------------------------------------------------------- rendering

    def tables(self) -> list[Table]:
        head = Table(
            f"drill {self.drill} ({self.mode}) — {self.verdict.upper()}",
            ("run", "started (UTC)", "verdict", "why", "rollback", "journal"),
            ((self.run_id, self.started_at, self.verdict, self.reason or "-", self.rollback or "-", self.journal_path or "-"),),
        )
        steps = Table(
            "steps",
            ("phase", "step", "status", "seconds", "output"),
            tuple((s.phase, s.name, s.status, s.duration_s, _short(s.output)) for s in self.steps),
        )
        out = [head, steps]
        if self.targets:
            out.append(
                Table(
                    "targets",
                    ("measure", "value", "target", "met"),
                    tuple((t.name, _value(t.value, t.unit), f"{t.comparison} {t.target:g} {t.unit}", "ok" if t.met else "MISSED") for t in self.targets),
                )
            )
        scalars = tuple((k, v) for k, v in self.measurements.items() if not isinstance(v, (dict, list)))
        if scalars:
            out.append(Table("measurements", ("measure", "value"), scalars))
        return out

    def markdown(self) -> str:
        lines = [
            f"# Drill {self.drill} ({self.mode}): {self.verdict.upper()}",
            "",
            f"- run: `{self.run_id}`",
            f"- inventory: `{self.inventory}`" + (f" (profile {self.profile})" if self.profile else ""),
            f"- started: {self.started_at}; ended: {self.ended_at}",
            f"- verdict: **{self.verdict}**" + (f" — {self.reason}" if self.reason else ""),
        ]
        if self.rollback:
            lines.append(f"- rollback: {self.rollback}" + (f" — left to do: {'; '.join(self.left_to_do)}" if self.left_to_do else ""))
        if self.timeline:
            lines.append(f"- timeline: {self.timeline}")
        lines.append("")
        if self.targets:
            lines += ["## Targets", "", "| measure | value | target | met |", "|---|---|---|---|"]
            for t in self.targets:
                lines.append(f"| {t.name} | {_value(t.value, t.unit)} | {t.comparison} {t.target:g} {t.unit} | {'yes' if t.met else '**no**'} |")
            lines.append("")
        if self.measurements:
            lines += ["## Measurements", "", "| measure | value |", "|---|---|"]
            for key, value in self.measurements.items():
                shown = json.dumps(to_jsonable(value)) if isinstance(value, (dict, list)) else value
                lines.append(f"| {key} | {shown} |")
            lines.append("")
        lines += ["## Steps", "", "| phase | step | status | seconds | output |", "|---|---|---|---|---|"]
        for s in self.steps:
            lines.append(f"| {s.phase} | {s.name} | {s.status} | {'' if s.duration_s is None else f'{s.duration_s:.2f}'} | {_short(s.output, 160)} |")
        return "\n".join(lines) + "\n"

    # -------------------------------------------------------------- storage

    def save(self, reports_dir: Path) -> None:
        """Write ``<run_id>.json`` and ``<run_id>.md`` atomically (mode 0640)."""
        reports_dir.mkdir(parents=True, exist_ok=True)
        base = reports_dir / self.run_id
        self.journal_path = str(base.with_suffix(".json"))
        self.report_path = str(base.with_suffix(".md"))
        _atomic_write(Path(self.journal_path), json.dumps(to_jsonable(self), indent=2) + "\n")
        _atomic_write(Path(self.report_path), self.markdown())


def load_journal(path: Path) -> Journal:
    data = json.loads(path.read_text())
    steps = [StepRecord(**s) for s in data.pop("steps", [])]
    targets = [TargetCheck(**t) for t in data.pop("targets", [])]
    known = {f.name for f in dataclasses.fields(Journal)}
    return Journal(steps=steps, targets=targets, **{k: v for k, v in data.items() if k in known})


def _atomic_write(path: Path, text: str) -> None:
    from prontuario_cli.files import write_atomically

    write_atomically(path, text, 0o640)


def _value(value: float | None, unit: str) -> str:
    return "not measured" if value is None else f"{value:.2f} {unit}" if isinstance(value, float) else f"{value} {unit}"


def _short(output: Any, limit: int = 80) -> str:
    if output is None:
        return ""
    text = output if isinstance(output, str) else json.dumps(to_jsonable(output), ensure_ascii=False)
    text = text.replace("|", "/").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
