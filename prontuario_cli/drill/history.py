"""Past drills: the history listing and the quarterly / annual compliance report.

Pure functions over :class:`~prontuario_cli.drill.journal.Journal` objects (plus one
that reads a reports directory). A journal that cannot be read is an
:class:`UnreadableJournal` with its reason: it is listed, never fatal.

Schedule compliance follows the brief's cadence: a health drill every day, a failover
drill every week (ISO weeks, Monday to Sunday), a cloud drill and a DCS (etcd quorum)
drill every month. Only days,
weeks and months wholly inside the period are expected; a unit counts as kept when at
least one real (not dry-run) drill of that type started in it, whatever its verdict
(the verdicts are counted separately).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Union

from prontuario_cli.drill.journal import VERDICT_EXIT, Journal, load_journal
from prontuario_cli.errors import ExitCode, UsageError
from prontuario_cli.report import Table

DRILLS = ("health", "failover", "cloud", "dcs")
CADENCE = {"health": "daily", "failover": "weekly", "cloud": "monthly", "dcs": "monthly"}
TARGETS = {"failover": "primary_lost", "cloud": "both_lost", "dcs": "primary_lost"}  # the inventory's scenario per drill
BY_MODE = ("failover", "dcs")  # drills whose modes get their own row in the report
# The DCS drill never moves the writes: its time without writes is its longest write gap,
# which the report shows (and checks against the target) in the RTO columns.
RTO_MEASURE = {"dcs": "write_gap_s"}
UNREADABLE = "unreadable"
_RUN_ID = re.compile(r"^(\d{8}T\d{6}Z)-([a-z]+)-")


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class UnreadableJournal:
    """A ``*.json`` file in the reports directory that is not a journal we can read."""

    path: str
    reason: str
    started: _dt.datetime  # from the file name when it is a run id, else the file's mtime
    drill: str | None  # from the file name, when it is a run id


Loaded = Union[Journal, UnreadableJournal]


def read_journals(directory: Path) -> list[Loaded]:
    """Every ``*.json`` journal in ``directory`` (not recursive); unreadable ones carry their reason."""
    if not directory.is_dir():
        return []
    found: list[Loaded] = []
    for path in sorted(directory.glob("*.json")):
        if path.name.startswith("."):  # a write in progress (journal._atomic_write)
            continue
        found.append(read_journal(path))
    return found


def read_journal(path: Path) -> Loaded:
    """One journal, checked enough for the report to trust its drill, start time and verdict."""
    try:
        journal = load_journal(path)
        problem = _problem(journal)
    except json.JSONDecodeError as exc:
        problem = f"not JSON ({exc.msg} at line {exc.lineno})"
    except UnicodeDecodeError:
        problem = "not UTF-8 text"
    except OSError as exc:
        problem = f"cannot read: {exc.strerror or exc}"
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        problem = f"not a drill journal ({type(exc).__name__}: {exc})"
    if problem is None:
        journal.journal_path = str(path)
        return journal
    return _unreadable(path, problem)


def _problem(journal: Journal) -> str | None:
    if not isinstance(journal.drill, str) or not journal.drill:
        return "no drill name"
    if journal.verdict not in VERDICT_EXIT:
        return f"unknown verdict {journal.verdict!r}"
    if _parse_time(journal.started_at) is None:
        return f"started_at {journal.started_at!r} is not a date/time"
    if not isinstance(journal.measurements, dict):
        return "measurements is not an object"
    return None


def _unreadable(path: Path, reason: str) -> UnreadableJournal:
    match = _RUN_ID.match(path.stem)
    started = None
    if match:
        started = _dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.timezone.utc)
    if started is None:
        try:
            started = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.timezone.utc)
        except OSError:
            started = _dt.datetime.fromtimestamp(0, _dt.timezone.utc)
    return UnreadableJournal(str(path), reason, started, match.group(2) if match else None)


def _parse_time(text) -> _dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)


def started(item: Loaded) -> _dt.datetime:
    if isinstance(item, UnreadableJournal):
        return item.started
    return _parse_time(item.started_at)  # checked by read_journal / _problem


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class HistoryEntry:
    """One past run as ``drill history`` lists it."""

    run_id: str
    drill: str | None
    mode: str | None
    started_at: str
    duration_s: float | None
    verdict: str
    rto_s: float | None
    lost_acked_writes: int | None
    rpo_s: float | None
    dry_run: bool
    reason: str
    journal: str


@dataclass(frozen=True)
class HistoryReport:
    reports_dir: str
    entries: tuple[HistoryEntry, ...]

    def tables(self) -> list[Table]:
        rows = tuple(
            (
                e.run_id,
                e.drill,
                e.mode,
                e.started_at,
                e.duration_s,
                e.verdict + (" (dry run)" if e.dry_run else ""),
                e.rto_s,
                e.lost_acked_writes,
                e.rpo_s,
                e.reason or "",
                e.journal,
            )
            for e in self.entries
        )
        columns = ("run", "drill", "mode", "started (UTC)", "seconds", "verdict", "RTO s", "lost writes", "RPO s", "why", "journal")
        return [Table(f"drill history in {self.reports_dir} ({len(rows)} runs)", columns, rows)]


def history_entry(item: Loaded) -> HistoryEntry:
    if isinstance(item, UnreadableJournal):
        return HistoryEntry(
            run_id=Path(item.path).stem,
            drill=item.drill,
            mode=None,
            started_at=_iso(item.started),
            duration_s=None,
            verdict=UNREADABLE,
            rto_s=None,
            lost_acked_writes=None,
            rpo_s=None,
            dry_run=False,
            reason=item.reason,
            journal=item.path,
        )
    m = item.measurements
    return HistoryEntry(
        run_id=item.run_id,
        drill=item.drill,
        mode=item.mode,
        started_at=item.started_at,
        duration_s=duration_s(item),
        verdict=item.verdict,
        rto_s=_number(m.get(RTO_MEASURE.get(item.drill, "rto_s"))),
        lost_acked_writes=_number(m.get("lost_acked_writes")),
        rpo_s=_number(m.get("rpo_s")),
        dry_run=bool(item.dry_run),
        reason=item.reason or "",
        journal=item.journal_path or "",
    )


def history(
    items: Iterable[Loaded],
    *,
    since: _dt.datetime | None = None,
    drill: str | None = None,
    limit: int | None = None,
) -> list[HistoryEntry]:
    """Newest first. ``drill`` keeps unreadable files whose drill is unknown (never hide one)."""
    chosen = [
        item
        for item in items
        if (since is None or started(item) >= since)
        and (drill is None or item.drill == drill or (isinstance(item, UnreadableJournal) and item.drill is None))
    ]
    chosen.sort(key=started, reverse=True)
    if limit is not None:
        chosen = chosen[:limit]
    return [history_entry(item) for item in chosen]


def duration_s(journal: Journal) -> float | None:
    begin, end = _parse_time(journal.started_at), _parse_time(journal.ended_at)
    if begin is None or end is None:
        return None
    return round((end - begin).total_seconds(), 3)


# --------------------------------------------------------------------------- statistics


def median(values: list[float]) -> float | None:
    return percentile(values, 50)


def percentile(values: list[float], pct: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * pct / 100
    low, high = math.floor(position), math.ceil(position)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 3)


# --------------------------------------------------------------------------- compliance


@dataclass(frozen=True)
class DrillStats:
    """One drill type (mode ``all``) or one mode of the failover or DCS drill, over the period."""

    drill: str
    mode: str
    runs: int
    passed: int
    target_missed: int
    aborted: int
    failed: int
    rollback_failed: int
    rto_median_s: float | None
    rto_p95_s: float | None
    rto_max_s: float | None
    rto_target_s: float | None
    lost_acked_writes: int | None  # total over the runs that measured it
    worst_rpo_s: float | None
    rpo_target_s: float | None
    targets_met: bool | None  # worst RTO/RPO against today's inventory targets; None: nothing to compare


@dataclass(frozen=True)
class ScheduleCompliance:
    """Expected runs per the brief's cadence against the runs done."""

    drill: str
    cadence: str  # daily | weekly | monthly
    expected: int  # days / weeks / months wholly inside the period
    done: int  # of those, how many had at least one run
    runs: int  # runs of this drill in the whole period
    gaps: tuple[str, ...]  # first day (YYYY-MM-DD) of every day / week / month without a run
    kept: bool


@dataclass(frozen=True)
class RunException:
    """A run in the period that did not pass, or a journal that could not be read."""

    run_id: str
    drill: str | None
    mode: str | None
    started_at: str
    verdict: str
    reason: str
    journal: str


@dataclass(frozen=True)
class ComplianceReport:
    """``drill report``: the quarterly / annual drill compliance report."""

    since: str
    until: str
    reports_dir: str
    compliant: bool
    problems: tuple[str, ...]
    drills: tuple[DrillStats, ...]
    schedule: tuple[ScheduleCompliance, ...]
    exceptions: tuple[RunException, ...]

    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.compliant else ExitCode.TARGET_MISSED

    def tables(self) -> list[Table]:
        verdict = "compliant" if self.compliant else "NOT COMPLIANT"
        head = Table(
            "drill compliance",
            ("since (UTC)", "until (UTC)", "verdict", "problems", "journals"),
            ((self.since, self.until, verdict, len(self.problems), self.reports_dir),),
        )
        drills = Table(
            "drills",
            ("drill", "mode", "runs", "passed", "missed", "aborted", "failed", "rollback failed",
             "RTO median s", "RTO p95 s", "RTO max s", "RTO target", "lost writes", "worst RPO s", "RPO target", "targets"),
            tuple(
                (s.drill, s.mode, s.runs, s.passed, s.target_missed, s.aborted, s.failed, s.rollback_failed,
                 s.rto_median_s, s.rto_p95_s, s.rto_max_s, _target(s.rto_target_s), s.lost_acked_writes, s.worst_rpo_s,
                 _target(s.rpo_target_s, rpo=True), _met(s.targets_met))
                for s in self.drills
            ),
        )
        schedule = Table(
            "schedule",
            ("drill", "cadence", "expected", "done", "runs", "kept", "gaps"),
            tuple((c.drill, c.cadence, c.expected, c.done, c.runs, c.kept, gap_ranges(c.gaps, c.cadence) or "-") for c in self.schedule),
        )
        out = [head]
        if self.problems:
            out.append(Table("problems", ("problem",), tuple((p,) for p in self.problems)))
        out += [drills, schedule]
        if self.exceptions:
            out.append(
                Table(
                    "runs that did not pass",
                    ("run", "drill", "mode", "started (UTC)", "verdict", "why", "journal"),
                    tuple((e.run_id, e.drill, e.mode, e.started_at, e.verdict, e.reason, e.journal) for e in self.exceptions),
                )
            )
        return out

    def markdown(self) -> str:
        lines = [
            f"# Drill compliance report: {self.since} → {self.until}",
            "",
            f"- verdict: **{'compliant' if self.compliant else 'NOT compliant'}**",
            f"- journals: `{self.reports_dir}`",
            "- cadence (brief): health-check validation daily, failover weekly, cloud fallback and DCS (etcd quorum) monthly;"
            " full DR simulation (quarterly) and DR audit (yearly) are planned exercises outside this report",
            "",
        ]
        if self.problems:
            lines += ["## Problems", "", *(f"- {p}" for p in self.problems), ""]
        lines += [
            "## Drills",
            "",
            "| drill | mode | runs | passed | target missed | aborted | failed | rollback failed | RTO median | RTO p95 | RTO max | RTO target | lost ack. writes | worst RPO | RPO target | targets |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---|",
        ]
        for s in self.drills:
            lines.append(
                f"| {s.drill} | {s.mode} | {s.runs} | {s.passed} | {s.target_missed} | {s.aborted} | {s.failed} | {s.rollback_failed} "
                f"| {_seconds(s.rto_median_s)} | {_seconds(s.rto_p95_s)} | {_seconds(s.rto_max_s)} | {_target(s.rto_target_s)} "
                f"| {'-' if s.lost_acked_writes is None else s.lost_acked_writes} | {_seconds(s.worst_rpo_s)} "
                f"| {_target(s.rpo_target_s, rpo=True)} | {_met(s.targets_met)} |"
            )
        lines += ["", "## Schedule", "", "| drill | cadence | expected | done | runs | kept | gaps |", "|---|---|---:|---:|---:|---|---|"]
        for c in self.schedule:
            lines.append(f"| {c.drill} | {c.cadence} | {c.expected} | {c.done} | {c.runs} | {'yes' if c.kept else '**no**'} | {gap_ranges(c.gaps, c.cadence) or '-'} |")
        if self.exceptions:
            lines += ["", "## Runs that did not pass", "", "| run | drill | mode | started (UTC) | verdict | why | journal |", "|---|---|---|---|---|---|---|"]
            for e in self.exceptions:
                why = (e.reason or "-").replace("|", "/").replace("\n", " ")
                where = f"`{e.journal}`" if e.journal else "-"
                lines.append(f"| `{e.run_id}` | {e.drill or '?'} | {e.mode or '?'} | {e.started_at} | {e.verdict} | {why} | {where} |")
        lines += ["", "RTO p95 is interpolated linearly between the closest ranks. The dcs drill's RTO is its longest write gap",
                  "(its writes never move), against targets.primary_lost. Days, weeks (ISO, Monday to Sunday) and",
                  "months count as expected only when wholly inside the period; a unit is kept by any real run of that drill.", ""]
        return "\n".join(lines)


def compliance_report(
    items: Iterable[Loaded],
    *,
    since: _dt.datetime,
    until: _dt.datetime,
    targets=None,
    reports_dir: str = "",
) -> ComplianceReport:
    """Aggregate the runs that started in ``[since, until)``; ``targets`` is the inventory's ``Targets``."""
    if until <= since:
        raise UsageError(f"the period is empty: --until {_iso(until)} is not after --since {_iso(since)}")
    in_period = [item for item in items if since <= started(item) < until]
    journals = [j for j in in_period if isinstance(j, Journal) and not j.dry_run]
    unreadable = [u for u in in_period if isinstance(u, UnreadableJournal)]

    stats: list[DrillStats] = []
    for drill in _drill_order(journals):
        runs = [j for j in journals if j.drill == drill]
        rto_target, rpo_target = _targets_for(drill, targets)
        stats.append(_stats(drill, "all", runs, rto_target, rpo_target))
        if drill in BY_MODE:
            for mode in sorted({j.mode for j in runs}):
                stats.append(_stats(drill, mode, [j for j in runs if j.mode == mode], rto_target, rpo_target))

    schedule = tuple(_schedule(drill, [started(j) for j in journals if j.drill == drill], since, until) for drill in DRILLS)

    exceptions = [
        RunException(j.run_id, j.drill, j.mode, j.started_at, j.verdict, j.reason or "", j.journal_path or "")
        for j in journals
        if j.verdict != "passed"
    ]
    exceptions += [RunException(Path(u.path).stem, u.drill, None, _iso(u.started), UNREADABLE, u.reason, u.path) for u in unreadable]
    exceptions.sort(key=lambda e: e.started_at)

    problems: list[str] = []
    for s in stats:
        if s.mode != "all":
            continue
        bad = s.runs - s.passed
        if bad:
            problems.append(f"{s.drill}: {bad} of {s.runs} runs did not pass")
        if s.targets_met is False:
            problems.append(f"{s.drill}: worst RTO/RPO misses the inventory's target")
    for c in schedule:
        if not c.kept:
            problems.append(f"{c.drill}: {c.expected - c.done} of {c.expected} {_unit(c.cadence)}s without a run: {gap_ranges(c.gaps, c.cadence)}")
    if unreadable:
        problems.append(f"{len(unreadable)} journal file(s) could not be read")
    if not journals:  # no evidence is never compliance, however short the period
        problems.append(f"no drill ran between {_iso(since)} and {_iso(until)}: nothing shows the cluster can fail over")
    return ComplianceReport(
        since=_iso(since),
        until=_iso(until),
        reports_dir=reports_dir,
        compliant=not problems,
        problems=tuple(problems),
        drills=tuple(stats),
        schedule=schedule,
        exceptions=tuple(exceptions),
    )


def _drill_order(journals: list[Journal]) -> list[str]:
    present = {j.drill for j in journals}
    return [d for d in DRILLS if d in present] + sorted(present - set(DRILLS))


def _targets_for(drill: str, targets) -> tuple[float | None, float | None]:
    scenario = TARGETS.get(drill)
    if targets is None or scenario is None:
        return None, None
    target = getattr(targets, scenario)
    return float(target.rto_s), float(target.rpo_s)


def _stats(drill: str, mode: str, runs: list[Journal], rto_target: float | None, rpo_target: float | None) -> DrillStats:
    counts = {verdict: sum(1 for j in runs if j.verdict == verdict) for verdict in VERDICT_EXIT}
    rtos = [v for v in (_number(j.measurements.get(RTO_MEASURE.get(drill, "rto_s"))) for j in runs) if v is not None]
    lost = [v for v in (_number(j.measurements.get("lost_acked_writes")) for j in runs) if v is not None]
    rpos = [v for v in (_number(j.measurements.get("rpo_s")) for j in runs) if v is not None]
    lost_total = int(sum(lost)) if lost else None
    worst_rpo = max(rpos) if rpos else None
    rto_max = max(rtos) if rtos else None
    met: bool | None = None
    checks = []
    if rto_target is not None and rto_max is not None:
        checks.append(rto_max < rto_target)
    if rpo_target is not None:
        if rpo_target == 0 and lost_total is not None:
            checks.append(lost_total == 0)
        elif rpo_target > 0 and worst_rpo is not None:
            checks.append(worst_rpo < rpo_target)
    if checks:
        met = all(checks)
    return DrillStats(
        drill=drill,
        mode=mode,
        runs=len(runs),
        passed=counts["passed"],
        target_missed=counts["target-missed"],
        aborted=counts["aborted"],
        failed=counts["failed"],
        rollback_failed=counts["rollback-failed"],
        rto_median_s=median(rtos),
        rto_p95_s=percentile(rtos, 95),
        rto_max_s=rto_max,
        rto_target_s=rto_target,
        lost_acked_writes=lost_total,
        worst_rpo_s=worst_rpo,
        rpo_target_s=rpo_target,
        targets_met=met,
    )


def _schedule(drill: str, starts: list[_dt.datetime], since: _dt.datetime, until: _dt.datetime) -> ScheduleCompliance:
    cadence = CADENCE[drill]
    units = expected_units(cadence, since, until)
    done_units = {unit_of(cadence, when.astimezone(_dt.timezone.utc).date()) for when in starts}
    gaps = tuple(u.isoformat() for u in units if u not in done_units)
    return ScheduleCompliance(drill, cadence, len(units), len(units) - len(gaps), len(starts), gaps, not gaps)


def expected_units(cadence: str, since: _dt.datetime, until: _dt.datetime) -> list[_dt.date]:
    """First day of every day / ISO week / month wholly inside ``[since, until)`` (UTC)."""
    first = since.astimezone(_dt.timezone.utc)
    first_day = first.date() + (_dt.timedelta(days=1) if first.time() != _dt.time(0) else _dt.timedelta(0))
    end_day = until.astimezone(_dt.timezone.utc).date()  # exclusive: a partial last day is not expected
    units: list[_dt.date] = []
    unit = unit_of(cadence, first_day)
    if unit < first_day:
        unit = _next_unit(cadence, unit)
    while _next_unit(cadence, unit) <= end_day:
        units.append(unit)
        unit = _next_unit(cadence, unit)
    return units


def unit_of(cadence: str, day: _dt.date) -> _dt.date:
    """The first day of the day / week / month holding ``day``."""
    if cadence == "weekly":
        return day - _dt.timedelta(days=day.weekday())
    if cadence == "monthly":
        return day.replace(day=1)
    return day


def _next_unit(cadence: str, unit: _dt.date) -> _dt.date:
    if cadence == "weekly":
        return unit + _dt.timedelta(days=7)
    if cadence == "monthly":
        return (unit.replace(day=28) + _dt.timedelta(days=4)).replace(day=1)
    return unit + _dt.timedelta(days=1)


def gap_ranges(gaps: tuple[str, ...], cadence: str) -> str:
    """Consecutive missing units joined: ``2026-10-03..2026-10-05 (3 days), 2026-10-09``."""
    if not gaps:
        return ""
    days = [_dt.date.fromisoformat(g) for g in gaps]
    runs: list[list[_dt.date]] = [[days[0]]]
    for day in days[1:]:
        if _next_unit(cadence, runs[-1][-1]) == day:
            runs[-1].append(day)
        else:
            runs.append([day])
    unit = _unit(cadence)
    parts = []
    for run in runs:
        label = run[0].strftime("%Y-%m") if cadence == "monthly" else f"week of {run[0]}" if cadence == "weekly" else str(run[0])
        if len(run) > 1:
            last = run[-1].strftime("%Y-%m") if cadence == "monthly" else str(run[-1])
            label = f"{label}..{last} ({len(run)} {unit}s)"
        parts.append(label)
    return ", ".join(parts)


def _unit(cadence: str) -> str:
    return {"daily": "day", "weekly": "week", "monthly": "month"}[cadence]


# --------------------------------------------------------------------------- periods


def parse_until(text: str, now: _dt.datetime | None = None) -> _dt.datetime:
    """Like ``--since``; a bare date means the end of that day (the day is included)."""
    from prontuario_cli.audit_report import parse_since

    try:
        when = parse_since(text, now)
    except UsageError as exc:
        raise UsageError(exc.message.replace("--since", "--until", 1), hint=exc.hint) from None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        when += _dt.timedelta(days=1)
    return when


def _iso(when: _dt.datetime) -> str:
    return when.astimezone(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _number(value) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g} s"


def _target(value: float | None, rpo: bool = False) -> str:
    if value is None:
        return "-"
    if rpo and value == 0:
        return "0 lost writes"
    return f"< {value:g} s"


def _met(value: bool | None) -> str:
    return "-" if value is None else "met" if value else "MISSED"
