"""Rows from the drill journals: each drill kind's last run and when the next one is due.

The cadence is the drill history's (health daily, failover weekly, cloud and dcs monthly, in
UTC days, ISO weeks and months) and so is what counts as a run (a real, not dry-run,
journal of that drill, whatever its verdict). A drill is *due* in the first day / week /
month wholly after its last run, and *overdue* once that unit has ended without one:
exactly when ``drill report`` would list a gap.
"""

from __future__ import annotations

import datetime as _dt
from typing import Iterable

from prontuario_cli.inventory import Inventory
from prontuario_cli.report import Perf, Status
from prontuario_cli.status.rows import Row

RUN = {
    "health": "prontuario drill health",
    "failover": "prontuario drill failover --mode kill",
    "cloud": "prontuario drill cloud",
    "dcs": "prontuario drill dcs --mode quorum",
}


def drill_rows(inventory: Inventory, deadline: float) -> list[Row]:
    """The ``drills`` source: one row per drill kind, from the reports directory."""
    from prontuario_cli.drill import reports_dir
    from prontuario_cli.drill.history import read_journals

    directory = reports_dir(inventory)
    now = _dt.datetime.now(_dt.timezone.utc)
    return rows_from_journals(read_journals(directory), now, str(directory))


def next_due(cadence: str, last_run: _dt.datetime) -> tuple[_dt.date, _dt.datetime]:
    """(first day of the unit the next run is due in, the moment it becomes overdue)."""
    from prontuario_cli.drill.history import expected_units

    after = last_run + _dt.timedelta(microseconds=1)  # the last run's own unit is kept
    units = expected_units(cadence, after, after + _dt.timedelta(days=100))  # at least two months
    return units[0], _dt.datetime.combine(units[1], _dt.time(0), tzinfo=_dt.timezone.utc)


def rows_from_journals(items: Iterable, now: _dt.datetime, reports_dir: str = "") -> list[Row]:
    """One row per drill kind (health, failover, cloud, dcs); pure."""
    from prontuario_cli.drill.history import CADENCE, DRILLS, gap_ranges, started
    from prontuario_cli.drill.journal import Journal

    journals = [j for j in items if isinstance(j, Journal) and not j.dry_run]
    rows = []
    for drill in DRILLS:
        cadence = CADENCE[drill]
        runs = [j for j in journals if j.drill == drill]
        history = f"prontuario drill history --drill {drill} --limit 1"
        if not runs:
            where = f" in {reports_dir}" if reports_dir else ""
            rows.append(
                Row(
                    "drill",
                    f"drill {drill}",
                    Status.WARNING,
                    f"NEVER RUN ({cadence})",
                    f"no {drill} drill on record{where}",
                    RUN[drill],
                    {"cadence": cadence, "last_run": None, "verdict": None, "run_id": None, "rto_s": None, "due_unit": None, "due_by": None, "overdue": True},
                    perf=(Perf(f"{drill}_drill_overdue", 1, "", warn=0, min=0, max=1),),
                )
            )
            continue
        last = max(runs, key=started)
        when = started(last)
        unit, due_by = next_due(cadence, when)
        overdue = now >= due_by
        rto = last.measurements.get("rto_s") if isinstance(last.measurements.get("rto_s"), (int, float)) else None
        ran = f"last {_short(when)} {last.verdict}" + (f", RTO {rto:g} s" if rto is not None else "")
        due = gap_ranges((unit.isoformat(),), cadence)
        problems: list[str] = []
        if overdue:
            state = f"OVERDUE since {_short(due_by)} ({cadence}); {ran}"
            problems.append(f"no {drill} drill in {due}")
        else:
            state = f"{ran}; next due {due}"
        if last.verdict != "passed":
            problems.append(f"the last run {last.verdict}" + (f": {last.reason}" if last.reason else ""))
        details = {
            "cadence": cadence,
            "last_run": last.started_at,
            "verdict": last.verdict,
            "run_id": last.run_id,
            "rto_s": rto,
            "due_unit": unit.isoformat(),
            "due_by": _iso(due_by),
            "overdue": overdue,
        }
        status = Status.WARNING if problems else Status.OK
        action = "" if not problems else RUN[drill] if overdue else history
        perf = (Perf(f"{drill}_drill_overdue", int(overdue), "", warn=0, min=0, max=1),)
        rows.append(Row("drill", f"drill {drill}", status, state, "; ".join(problems), action, details, perf=perf))
    return rows


def _short(when: _dt.datetime) -> str:
    return when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%MZ")


def _iso(when: _dt.datetime) -> str:
    return when.astimezone(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")

