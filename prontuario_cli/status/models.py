"""Rows for the models: per model, the version each Mac serves, whether they agree, damage found.

Asks each Mac's store (``prontuario models status`` there, through the node-access seam)
under the status deadline. No manifests in the inventory's manifests directory: no rows.
"""

from __future__ import annotations

import time

from prontuario_cli.inventory import Inventory
from prontuario_cli.models.local import StatusReport
from prontuario_cli.report import Status
from prontuario_cli.status.rows import Row, problem_row


def models_rows(inventory: Inventory, deadline: float) -> list[Row]:
    """The ``models`` source: one row per model with a manifest."""
    from prontuario_cli.models.nodes import known_models, macs, status_on

    if not known_models(inventory):
        return []
    report = status_on(inventory, macs(inventory), timeout_s=max(0.5, deadline - time.monotonic()))
    return rows_from_models(report)


def rows_from_models(report: StatusReport) -> list[Row]:
    """One row per model from the Macs' answers; pure."""
    rows = []
    for name in sorted({m.name for m in report.models}):
        states = [m for m in report.models if m.name == name]
        versions = sorted({m.current or "none" for m in states})
        agree = report.agree.get(name, False)
        state = (f"{versions[0]} on {len(states)} nodes" if agree else "; ".join(f"{m.node} {m.current or 'none'}" for m in states))
        problems = [(m.status, f"{m.node}: {m.note}") for m in states if m.status != Status.OK and m.note]
        if not agree and not problems:
            problems = [(Status.WARNING, "the Macs do not run the same version")]
        action = f"prontuario models status; then prontuario models sync {name} --from GOOD --to OTHER"
        details = {"versions": {m.node: m.current for m in states}, "agree": agree, "quarantined": {m.node: list(m.quarantined) for m in states if m.quarantined}}
        rows.append(problem_row("model", f"model {name}", state, problems, action, details=details))
    return rows
