"""Drills: prove on a schedule, by measuring, that the cluster meets the brief's targets.

:func:`run` takes an experiment (health, failover, cloud), holds the drill lock, runs the
engine, records the PostgreSQL timeline change the drill caused (so the replication
checks after it do not warn for it), saves the journal and its Markdown report, and
returns the journal.
"""

from __future__ import annotations

import contextlib
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


def run(inventory: Inventory, experiment, say: Callable[[str], None], *, profile: str | None = None, progress: Callable[[dict], None] | None = None) -> Journal:
    """Run one drill under the lock; the journal is saved whatever happens.

    ``progress`` receives structured events (steps started and done, the watcher's
    events, the write probe's counters); ``say`` the rest, as text.
    """
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
            try:
                before = timeline_before(inventory)
            except KeyboardInterrupt:
                journal.verdict, journal.interrupted, journal.rollback = "aborted", True, "not needed"
                journal.reason = "interrupted by the operator before the fault (nothing was changed)"
                journal.ended_at = utc_now()
                return journal
            run_experiment(experiment, journal, say, progress)
            if journal.verdict != "aborted":
                journal.timeline = record_timeline(inventory, before, journal.run_id)
                with contextlib.suppress(KeyboardInterrupt):  # the verdict is decided: one more Ctrl-C changes nothing
                    say(journal.timeline)
        finally:
            journal.save(reports_dir(inventory))
    return journal


def timeline_before(inventory: Inventory) -> int | None:
    """The PostgreSQL timeline before the drill touches anything (None when unknown)."""
    from prontuario_cli.replication import timeline_now

    return timeline_now(inventory)[0]


def record_timeline(inventory: Inventory, before: int | None, run_id: str) -> str:
    """Record the timeline change the drill caused as expected ("drill RUN_ID"); a sentence."""
    from prontuario_cli.errors import ProntuarioError
    from prontuario_cli.replication import record_drill_timeline

    try:
        return record_drill_timeline(inventory, before, f"drill {run_id}")
    except (OSError, ProntuarioError) as exc:
        return f"timeline not recorded: {getattr(exc, 'strerror', None) or exc}"
    except KeyboardInterrupt:  # the drill's verdict stands; the next check will warn instead
        return "timeline not recorded: interrupted by the operator"


def lab_profile(inventory: Inventory) -> str | None:
    """The lab's profile name (seed/fast) when the inventory is a lab."""
    from prontuario_cli.cluster.nodes import node_access

    return node_access(inventory).profile
