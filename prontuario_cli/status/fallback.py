"""The emergency fallback's row: is the platform running on the Cloud SQL fallback?

Read from the flag ``gcp promote`` sets and ``gcp failback`` clears
(:mod:`prontuario_cli.cluster.fallback`); a local file, no network.
"""

from __future__ import annotations

from typing import Any

from prontuario_cli.inventory import Inventory
from prontuario_cli.report import Perf, Status
from prontuario_cli.status.rows import Row

GCP_STATUS = "prontuario gcp status"


def fallback_rows(inventory: Inventory, deadline: float) -> list[Row]:
    """The ``fallback`` source: the emergency-mode flag in the state directory."""
    from prontuario_cli.cluster.fallback import read_fallback
    from prontuario_cli.paths import state_dir

    return [row_from_flag(read_fallback(state_dir(inventory)))]


def row_from_flag(flag: dict[str, Any]) -> Row:
    """One row from the flag file's content ({} when there is none); pure."""
    active = flag.get("active") in (True, 1)
    details = {"active": active, "since": flag.get("since"), "instance": flag.get("instance"), "reason": flag.get("reason")}
    perf = (Perf("gcp_fallback_active", int(active), "", crit=0, min=0, max=1),)
    if not active:
        return Row("fallback", "emergency fallback", Status.OK, "off: the Macs serve", details=details, perf=perf)
    state = f"ACTIVE since {flag.get('since') or '?'}" + (f" on {flag['instance']}" if flag.get("instance") else "")
    problem = "emergency mode: the platform runs on the Cloud SQL fallback" + (f" ({flag['reason']})" if flag.get("reason") else "")
    return Row("fallback", "emergency fallback", Status.CRITICAL, state, problem, GCP_STATUS, details, perf=perf)
