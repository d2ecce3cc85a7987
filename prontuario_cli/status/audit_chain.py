"""The audit chain's row: is the keyed audit log intact (what ``audit verify`` checks)?"""

from __future__ import annotations

from prontuario_cli.audit import VerifyReport
from prontuario_cli.inventory import Inventory
from prontuario_cli.report import Perf, Status
from prontuario_cli.status.rows import Row

VERIFY = "prontuario audit verify"


def audit_rows(inventory: Inventory, deadline: float) -> list[Row]:
    """The ``audit`` source: verify the chain of the audit log this inventory uses."""
    from prontuario_cli.audit import log_for

    from prontuario_cli.errors import ProntuarioError

    log = log_for(inventory)
    try:
        report = log.verify()
    except (OSError, ProntuarioError) as exc:  # an unreadable log, an unsafe key
        why = f"cannot read {log.path}: {exc.strerror or exc}" if isinstance(exc, OSError) else exc.one_line()
        return [Row("audit", "audit log", Status.UNKNOWN, "not readable", why, VERIFY, {"log": str(log.path), "entries": None, "intact": None, "problems": None})]
    return [row_from_verify(report)]


def row_from_verify(report: VerifyReport) -> Row:
    """One row from ``audit verify``'s report; pure."""
    details = {"log": report.log, "entries": report.entries, "intact": report.intact, "problems": len(report.problems),
               "warnings": len(report.warnings)}
    perf = (Perf("audit_entries", report.entries, "", min=0), Perf("audit_problems", len(report.problems), "", crit=0, min=0))
    if report.intact:
        # Warnings (an operation with no outcome, legacy unkeyed entries, a head one entry
        # behind after a crash) are lasting facts, not alarms: OK, and said.
        state = f"{report.entries} entries, chain intact" if report.entries else "no entries yet"
        if not report.warnings:
            return Row("audit", "audit log", Status.OK, state, details=details, perf=perf)
        count = len(report.warnings)
        more = f" (+{count - 1} more)" if count > 1 else ""
        return Row("audit", "audit log", Status.OK, f"{state}, {count} warning{'s' if count != 1 else ''}",
                   f"{report.warnings[0].message}{more}", VERIFY, details, perf=perf)
    first = report.problems[0].message
    more = f" (+{len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
    state = f"BROKEN: {len(report.problems)} problem{'s' if len(report.problems) != 1 else ''} in {report.entries} entries"
    return Row("audit", "audit log", Status.CRITICAL, state, f"{first}{more}", VERIFY, details, perf=perf)
