"""The row for document storage: how fresh the other Mac's copy is, and which way documents go.

Reads each Mac's record of its pushes and Patroni's leader under the status deadline
(no rsync comparison here: ``prontuario docs status`` does that). A cluster whose leader
has no document directory and never pushed has not set documents up: no row.
"""

from __future__ import annotations

import time

from prontuario_cli.inventory import Inventory
from prontuario_cli.status.rows import Row


def docs_rows(inventory: Inventory, deadline: float) -> list[Row]:
    """The ``docs`` source: one row, document freshness."""
    from prontuario_cli.docs.status import gather

    report = gather(inventory, compare=False, timeout_s=max(0.2, deadline - time.monotonic()))
    return row_from_docs(report)


def row_from_docs(report) -> list[Row]:
    """The row from a :class:`~prontuario_cli.docs.status.DocsStatus`; pure."""
    from prontuario_cli.report import Perf, Status

    if not report.set_up:
        return []
    if report.last_sync_age_s is None:
        state = f"{report.source} → {report.target}: never synced" if report.source else "direction unknown"
    else:
        state = f"{report.source} → {report.target}, last sync {report.last_sync_age_s:.0f} s ago"
    details = {"leader": report.leader, "source": report.source, "target": report.target, "last_sync_at": report.last_sync_at,
               "last_sync_age_s": report.last_sync_age_s, "last_error": report.last_error}
    perf = (Perf("docs_sync_age", report.last_sync_age_s, "s", report.thresholds.get("warning_s"), report.thresholds.get("critical_s"), 0),)
    action = "" if report.status == Status.OK else "prontuario docs status"
    return [Row("docs", "documents", report.status, state, "; ".join(report.problems), action, details, perf=perf)]
