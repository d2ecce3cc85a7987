"""Replication: PostgreSQL (Patroni), Redis (Sentinel) and HAProxy routing, checked at once.

:func:`check` runs every probe concurrently under one deadline
(``health_checks.timeout_s``), evaluates the facts against the inventory's
thresholds and returns a :class:`~prontuario_cli.replication.report.ReplicationReport`.
A hung or dead node costs one timeout: its probes are reported as not answering
and their threads are abandoned.
"""

from __future__ import annotations

import datetime as _dt
import time

from prontuario_cli.inventory import Inventory
from prontuario_cli.replication.report import ReplicationReport

__all__ = ["check", "ReplicationReport"]


def check(inventory: Inventory, *, record: bool = False, timeout_s: float | None = None) -> ReplicationReport:
    """Probe everything, evaluate, and (with ``record``) remember the timeline for next time.

    ``record`` is for ``replication check``: a timeline change is then reported once.
    ``replication status`` leaves the record alone, so looking never hides a failover
    from the next scheduled check. Returns within ``timeout_s`` (default: the
    inventory's health-check timeout) plus evaluation time.
    """
    from prontuario_cli import paths
    from prontuario_cli.cluster.fallback import fallback_active
    from prontuario_cli.connect import warm_up
    from prontuario_cli.connect.fanout import run_all
    from prontuario_cli.replication import state
    from prontuario_cli.replication.evaluate import evaluate
    from prontuario_cli.replication.probes import build_probes

    probes = build_probes(inventory)  # reads secrets: fails fast, before any network call
    warm_up("httpx", "psycopg", "redis")
    budget = timeout_s if timeout_s is not None else inventory.health_checks.timeout_s
    started = time.monotonic()
    outcomes = run_all(probes, started + budget)
    elapsed = time.monotonic() - started

    state_dir = paths.state_dir(inventory)
    scope = inventory.cluster.patroni_scope
    previous = state.read_timeline(state_dir, scope)
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    report = evaluate(
        inventory,
        outcomes,
        previous=previous,
        gcp_active=fallback_active(state_dir),
        checked_at=now.isoformat(),
        elapsed_s=elapsed,
    )
    if record and report.timeline is not None and (previous is None or previous.timeline != report.timeline):
        try:
            state.record_timeline(
                state_dir, state.TimelineState(scope, report.timeline, report.leader, now.isoformat())
            )
        except OSError as exc:
            from dataclasses import replace

            from prontuario_cli.replication.report import Problem
            from prontuario_cli.report import Status

            note = Problem("check", Status.WARNING, f"cannot record the timeline in {state_dir}: {exc.strerror or exc}")
            report = replace(report, problems=(*report.problems, note), status=Status.worst([report.status, Status.WARNING]))
    return report
