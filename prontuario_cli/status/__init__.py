"""``prontuario status``: the whole platform on one screen, worst first, each problem with its next action.

An aggregator above the capabilities: it reads replication (both Macs and the witness,
PostgreSQL, Redis, Sentinels, HAProxy, the cloud replica), etcd, the emergency-mode flag,
the drill journals and the audit chain, through the sources registered in
:mod:`prontuario_cli.status.sources` (the interface is :mod:`prontuario_cli.status.rows`).

:func:`collect` asks every source at once under one deadline (``health_checks.timeout_s``
unless given): a frozen node costs one timeout. A source still running at the deadline
(plus :data:`GRACE_S` for evaluating what came back) is reported as not answering and
abandoned, like a probe of ``replication check``.
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Iterable, Mapping

from prontuario_cli.connect.fanout import Outcome
from prontuario_cli.inventory import Inventory
from prontuario_cli.report import Status
from prontuario_cli.status.report import StatusReport
from prontuario_cli.status.rows import Row, Source, source_failed, worst_first

__all__ = ["collect", "assemble", "Row", "Source", "StatusReport", "GRACE_S"]

GRACE_S = 0.5  # after the deadline: time for sources to evaluate what their probes returned


def collect(inventory: Inventory, *, timeout_s: float | None = None, sources: Iterable[Source] | None = None) -> StatusReport:
    """Ask every source concurrently; return the report within ``timeout_s`` + :data:`GRACE_S`."""
    from prontuario_cli.connect import warm_up
    from prontuario_cli.connect.fanout import run_all
    from prontuario_cli.status.sources import SOURCES

    chosen = tuple(SOURCES if sources is None else sources)
    warm_up("httpx", "psycopg", "redis")  # imports are not network time
    budget = timeout_s if timeout_s is not None else inventory.health_checks.timeout_s
    started = time.monotonic()
    deadline = started + budget

    def bind(source: Source):
        return lambda _outer_deadline: source.rows(inventory, deadline)

    outcomes = run_all({source.name: bind(source) for source in chosen}, deadline + GRACE_S)
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    return assemble(chosen, outcomes, checked_at=now.isoformat(), elapsed_s=time.monotonic() - started, timeout_s=budget)


def assemble(sources: Iterable[Source], outcomes: Mapping[str, Outcome], *, checked_at: str, elapsed_s: float, timeout_s: float) -> StatusReport:
    """The report from each source's outcome (rows, an error, a bug or silence); pure."""
    rows: list[Row] = []
    bugs: list[tuple[str, str]] = []
    for source in sources:
        outcome = outcomes.get(source.name)
        if outcome is None or outcome.timed_out:
            rows.append(source_failed(source.name, f"the {source.name} source did not answer within {timeout_s + GRACE_S:g} s"))
        elif outcome.error is not None:
            rows.append(source_failed(source.name, outcome.error.one_line()))
        elif outcome.bug is not None or not _all_rows(outcome.value):
            bug = outcome.bug or f"returned {type(outcome.value).__name__}, not a list of rows"
            rows.append(source_failed(source.name, f"unexpected error ({bug}): this is a bug in prontuario"))
            bugs.append((source.name, outcome.traceback or bug))
        else:
            rows.extend(_from(source.name, row) for row in outcome.value)
    ordered = tuple(worst_first(rows))
    status = Status.worst([r.status for r in ordered]) if ordered else Status.UNKNOWN
    counts = {s.name.lower(): sum(1 for r in ordered if r.status == s) for s in (Status.OK, Status.WARNING, Status.CRITICAL, Status.UNKNOWN)}
    actions = tuple(dict.fromkeys(r.action for r in ordered if r.action and r.status != Status.OK))
    return StatusReport(
        status=status,
        summary=summarize(ordered),
        checked_at=checked_at,
        elapsed_s=round(elapsed_s, 3),
        timeout_s=timeout_s,
        counts=counts,
        rows=ordered,
        actions=actions,
        bugs=tuple(bugs),
    )


def summarize(rows: tuple[Row, ...]) -> str:
    """One line: the problems, worst first (three at most), or what all-OK looks like."""
    if not rows:
        return "no source said anything"
    bad = [r for r in rows if r.status != Status.OK]
    if not bad:
        headline = next((r.state for r in rows if r.component == "postgres"), "")
        return f"all {len(rows)} checks OK" + (f": PostgreSQL {headline}" if headline else "")
    shown = "; ".join(f"{r.name}: {r.problem or r.state}" for r in bad[:3])
    more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
    return f"{len(bad)} problem{'s' if len(bad) != 1 else ''}: {shown}{more}"


def _all_rows(value) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(row, Row) for row in value)


def _from(source: str, row: Row) -> Row:
    from dataclasses import replace

    return replace(row, source=source)
