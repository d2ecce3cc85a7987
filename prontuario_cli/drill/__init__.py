"""Drills: prove on a schedule, by measuring, that the cluster meets the brief's targets.

:func:`run` takes an experiment (health, failover, cloud), holds the drill lock, runs the
engine, saves the journal and its Markdown report, and returns the journal.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
from pathlib import Path
from typing import Callable

from prontuario_cli.drill.engine import drill_lock, run_experiment
from prontuario_cli.clock import utc_now
from prontuario_cli.drill.journal import Journal
from prontuario_cli.inventory import Inventory


def reports_dir(inventory: Inventory) -> Path:
    from prontuario_cli.paths import state_dir

    if inventory.paths.reports_dir:
        return Path(inventory.paths.reports_dir).expanduser()
    return state_dir(inventory) / "reports"


def new_run_id(drill: str, mode: str) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{drill}-{mode}-{socket.gethostname().split('.')[0]}-{os.getpid()}"


def run(inventory: Inventory, experiment, say: Callable[[str], None], *, profile: str | None = None) -> Journal:
    """Run one drill under the lock; the journal is saved whatever happens."""
    from prontuario_cli.paths import state_dir

    journal = Journal(
        drill=experiment.drill,
        mode=experiment.mode,
        run_id=experiment.run_id,
        inventory=inventory.source,
        profile=profile,
        started_at=utc_now(),
    )
    with drill_lock(state_dir(inventory), f"{experiment.drill} {experiment.mode}"):
        try:
            run_experiment(experiment, journal, say)
        finally:
            journal.save(reports_dir(inventory))
    return journal


def lab_profile(inventory: Inventory) -> str | None:
    """The lab's profile name (seed/fast) when the inventory is a lab."""
    from prontuario_cli.cluster.nodes import node_access

    return node_access(inventory).profile
