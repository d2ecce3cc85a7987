"""``prontuario drill schedule|history|report``: the drills' cron/launchd schedule, past runs, compliance."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from prontuario_cli.cli.common import audited, confirm, emit, get_env, output_options


class DrillName(str, Enum):
    health = "health"
    failover = "failover"
    cloud = "cloud"
    dcs = "dcs"


def register(app: typer.Typer) -> None:
    """Add ``schedule``, ``history`` and ``report`` to the drill sub-app."""
    app.command("schedule")(schedule)
    app.command("history")(history)
    app.command("report")(report)


# --------------------------------------------------------------------------- schedule


@output_options
def schedule(
    cron: bool = typer.Option(False, "--cron", help="Print a cron.d file (m h dom mon dow user command)."),
    launchd: bool = typer.Option(False, "--launchd", help="Print one launchd plist per drill (or write them: --output-dir)."),
    at: str = typer.Option("03:15", "--at", metavar="HH:MM", help="Start of the daily health drill; failover follows 30 min later, cloud 75 min later, dcs 195 min later."),
    weekday: str = typer.Option("tue", "--weekday", help="Day of the weekly failover drill (mon..sun or 0-7, 0 = Sunday)."),
    day: int = typer.Option(1, "--day", min=1, max=28, help="Day of the month of the monthly cloud and dcs drills (1-28)."),
    failover_mode: str = typer.Option("kill", "--failover-mode", help="Mode of the weekly failover drill: switchover, kill, stop, hang."),
    inventory_path: Optional[str] = typer.Option(None, "--inventory-path", metavar="PATH", help="Inventory to embed (default: the absolute path of the one in use)."),
    executable: Optional[str] = typer.Option(None, "--executable", metavar="PATH", help="prontuario to run (default: the absolute path of this one)."),
    user: Optional[str] = typer.Option(None, "--user", "-u", help="User the drills run as (cron: default the current user; launchd: UserName)."),
    mailto: Optional[str] = typer.Option(None, "--mailto", metavar="ADDR", help="cron only: MAILTO, who gets each run's output."),
    log_dir: str = typer.Option("/var/log/prontuario", "--log-dir", metavar="DIR", help="launchd only: where each job's log goes."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", metavar="DIR", help="launchd only: write the .plist files to DIR (atomically) instead of stdout."),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --output-dir: say what would be written; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="With --output-dir: do not ask."),
) -> None:
    """Print the brief's drill cadence for cron or launchd: health daily, failover weekly, cloud and dcs monthly.

    Health runs every day at --at (default 03:15), failover 30 min later on --weekday
    (default Tuesday), cloud 75 min later on --day of the month (default 1), and the DCS
    drill (--mode quorum) on that day once the cloud drill's 2 h window is over (195 min
    after --at): staggered so they never overlap (and the drill lock makes a late overlap safe: the later drill exits
    75 without touching anything). Every command runs with --yes --format table, NO_COLOR=1
    and stderr merged into stdout, so cron's mail holds the progress and the report.
    Without --format the cron.d file or the plists go to stdout (--json / --format table:
    the schedule as data). --output-dir writes one .plist file per drill (audited).

    Example: prontuario -i /etc/prontuario/cluster.yaml drill schedule --cron --user prontuario --mailto oncall@hospital.example > /etc/cron.d/prontuario-drills
    """
    from prontuario_cli.drill.schedule import build_schedule
    from prontuario_cli.errors import UsageError

    env = get_env()
    if cron == launchd:
        raise UsageError("choose one of --cron or --launchd")
    if cron and output_dir is not None:
        raise UsageError("--output-dir applies to --launchd only", hint="redirect stdout to /etc/cron.d/prontuario-drills")
    if launchd and mailto:
        raise UsageError("--mailto applies to --cron only", hint="launchd writes each job's output to --log-dir")
    if output_dir is None and (dry_run or yes):
        raise UsageError("--dry-run and --yes only apply with --output-dir DIR")

    plan = build_schedule(
        executable=executable or _running_executable(),
        inventory=_absolute(inventory_path) if inventory_path else _absolute(env.inventory().source),
        at=at,
        weekday=weekday,
        day=day,
        failover_mode=failover_mode,
        user=user,
        default_user=_current_user(),
        mailto=mailto,
        log_dir=log_dir,
    )
    if output_dir is not None:
        _write_plists(plan, output_dir, dry_run=dry_run, yes=yes)
        return
    if env.format is None:
        env.stdout.write(plan.cron_text() if cron else plan.launchd_text())
        env.stdout.flush()
        return
    emit(plan)


def _write_plists(plan, directory: Path, *, dry_run: bool, yes: bool) -> None:
    from prontuario_cli.drill.schedule import ScheduleFile, ScheduleFilesReport
    from prontuario_cli.errors import UsageError
    from prontuario_cli.monitor.files import plan_write, write_atomically

    env = get_env()
    if not directory.is_dir():
        raise UsageError(f"--output-dir {directory} is not a directory", hint="create it first (launchd: /Library/LaunchDaemons)")
    documents = {directory / name: text for name, text in plan.plists().items()}
    args = {"output_dir": str(directory), "at": plan.drills[0].when, "user": plan.user, "executable": plan.executable, "inventory": plan.inventory}
    with audited("drill schedule", args, dry_run=dry_run) as details:
        actions = {path: plan_write(path, text) for path, text in documents.items()}
        details["files"] = {str(path): (f"would {a}" if dry_run else a) for path, a in actions.items()}
        if dry_run:
            env.say(f"dry run: would write {sum(a != 'unchanged' for a in actions.values())} launchd job(s) in {directory}; nothing was changed")
        else:
            if any(a != "unchanged" for a in actions.values()):
                confirm(f"write {len(documents)} launchd drill jobs to {directory}?", yes=yes)
            for path, action in actions.items():
                if action != "unchanged":
                    write_atomically(path, documents[path])
            env.say(f"wrote the launchd jobs to {directory}; load each with: sudo launchctl bootstrap system <file>")
    files = tuple(ScheduleFile(str(path), f"would {a}" if dry_run else a) for path, a in actions.items())
    emit(ScheduleFilesReport(str(directory), files))


def _running_executable() -> str:
    """The absolute path of this prontuario (symlinks kept, so an upgrade behind one still works)."""
    import os
    import shutil
    import sys

    from prontuario_cli.errors import UsageError

    argv0 = sys.argv[0] if sys.argv else ""
    if Path(argv0).name == "prontuario":
        return os.path.abspath(argv0)
    beside = Path(sys.executable).parent / "prontuario"
    if beside.is_file():
        return str(beside.absolute())
    found = shutil.which("prontuario")
    if found:
        return os.path.abspath(found)
    raise UsageError("cannot find the prontuario executable", hint="give --executable /path/to/prontuario")


def _absolute(path: str) -> str:
    import os

    return os.path.abspath(os.path.expanduser(path))


def _current_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "root"


# --------------------------------------------------------------------------- history


@output_options
def history(
    since: Optional[str] = typer.Option(None, "--since", metavar="WHEN", help="Only runs started since WHEN: a date/time (UTC) or an age (12h, 7d, 13w)."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=1, help="At most N runs (the newest)."),
    drill: Optional[DrillName] = typer.Option(None, "--drill", "-d", help="Only this drill: health, failover, cloud or dcs."),
) -> None:
    """List past drills from the reports directory, newest first, with verdict, RTO and lost writes.

    Reads every journal (<reports_dir>/<run id>.json). RTO, lost acknowledged writes and
    RPO come from each run's measurements. A journal that cannot be read is listed with
    the verdict "unreadable" and the reason. Always exits 0.

    Example: prontuario -i /etc/prontuario/cluster.yaml drill history --since 30d --drill failover
    """
    from prontuario_cli import drill as drills
    from prontuario_cli.drill.history import HistoryReport, history as list_history, read_journals

    env = get_env()
    when = _since(since) if since else None
    directory = drills.reports_dir(env.inventory())
    entries = list_history(read_journals(directory), since=when, drill=drill.value if drill else None, limit=limit)
    emit(HistoryReport(str(directory), tuple(entries)))


def _since(text: str):
    from prontuario_cli.audit_report import parse_since

    return parse_since(text)


# --------------------------------------------------------------------------- report


@output_options
def report(
    since: str = typer.Option(..., "--since", metavar="DATE", help="Start of the period: a date/time (UTC) or an age (90d, 13w)."),
    until: Optional[str] = typer.Option(None, "--until", metavar="DATE", help="End of the period (a bare date includes that day; default: now)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", metavar="FILE.md", help="Also write the Markdown to FILE.md and the JSON beside it (FILE.json)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="With --output: say what would be written; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="With --output: replace existing files without asking."),
) -> None:
    """The compliance report over a period: runs, verdicts, RTO median/p95/max, lost writes, schedule kept.

    Per drill type (and per failover mode): runs and their verdicts, RTO median / p95 / max,
    lost acknowledged writes and the worst RPO, against the inventory's targets
    (targets.primary_lost for failover and dcs, whose RTO is its longest write gap; targets.both_lost for cloud). Schedule compliance
    follows the brief's cadence (health daily, failover weekly, cloud and dcs monthly): the days,
    weeks and months wholly inside the period that had no run are listed as gaps.

    Exit codes: 0 every drill in the period passed and the schedule was kept; 10 a drill
    did not pass, a target was missed, runs are missing or a journal is unreadable.

    Example: prontuario -i /etc/prontuario/cluster.yaml drill report --since 2026-10-01 --until 2026-12-31 --output /srv/compliance/drills-2026Q4.md
    """
    from prontuario_cli import drill as drills
    from prontuario_cli.drill.history import compliance_report, parse_until, read_journals
    from prontuario_cli.errors import UsageError

    env = get_env()
    if output is None and (dry_run or yes):
        raise UsageError("--dry-run and --yes only apply with --output FILE.md")
    if output is not None and output.suffix != ".md":
        raise UsageError(f"--output {output} must end in .md", hint="the JSON is written beside it with .json")
    inventory = env.inventory()
    start = _since(since)
    end = parse_until(until) if until else _now()
    directory = drills.reports_dir(inventory)
    result = compliance_report(read_journals(directory), since=start, until=end, targets=inventory.targets, reports_dir=str(directory))
    if output is not None:
        _write_report(result, output, dry_run=dry_run, yes=yes)
    emit(result)


def _now():
    import datetime as _dt

    return _dt.datetime.now(_dt.timezone.utc)


def _write_report(result, output: Path, *, dry_run: bool, yes: bool) -> None:
    import json

    from prontuario_cli.monitor.files import plan_write, write_atomically
    from prontuario_cli.report import to_jsonable

    env = get_env()
    documents = {output: result.markdown(), output.with_suffix(".json"): json.dumps(to_jsonable(result), indent=2, ensure_ascii=False) + "\n"}
    args = {"output": str(output), "since": result.since, "until": result.until}
    with audited("drill report", args, dry_run=dry_run) as details:
        actions = {path: plan_write(path, text) for path, text in documents.items()}
        details.update(compliant=result.compliant, files={str(p): (f"would {a}" if dry_run else a) for p, a in actions.items()})
        if dry_run:
            env.say("dry run: would " + ", ".join(f"{a} {p}" for p, a in actions.items()) + "; nothing was changed")
            return
        if any(a == "replace" for a in actions.values()):
            confirm(f"replace the existing report {output} (and its .json)?", yes=yes)
        for path, action in actions.items():
            if action != "unchanged":
                write_atomically(path, documents[path])
    env.say("wrote " + " and ".join(str(p) for p in documents))
