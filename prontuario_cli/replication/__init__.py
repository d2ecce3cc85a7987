"""Replication: PostgreSQL (Patroni), Redis (Sentinel) and HAProxy routing, checked at once.

:func:`check` runs every probe concurrently under one deadline
(``health_checks.timeout_s``), evaluates the facts against the inventory's
thresholds and returns a :class:`~prontuario_cli.replication.report.ReplicationReport`.
A hung or dead node costs one timeout: its probes are reported as not answering
and their threads are abandoned.

Timeline changes (see :mod:`prontuario_cli.replication.state`): :func:`check` with
``record`` remembers a new timeline; an unexpected change is then reported by every
check and status until its window ends or :func:`acknowledge_timeline`; a drill
announces the change it caused with :func:`record_drill_timeline`.
"""

from __future__ import annotations

import datetime as _dt
import time

from prontuario_cli.inventory import Inventory
from prontuario_cli.replication.report import ReplicationReport

__all__ = ["check", "ReplicationReport", "acknowledge_timeline", "record_drill_timeline"]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def check(inventory: Inventory, *, record: bool = False, timeout_s: float | None = None) -> ReplicationReport:
    """Probe everything, evaluate, and (with ``record``) remember a new timeline.

    ``record`` is for ``replication check``: a new timeline is written down with the
    time it was first seen, and reported as WARNING by every caller (``check``,
    ``status``, a drill's precondition) for the window or until acknowledged — never
    consumed by the first look. Returns within ``timeout_s`` (default: the
    inventory's health-check timeout) plus evaluation time.
    """
    from prontuario_cli import paths
    from prontuario_cli.cluster.fallback import fallback_active
    from prontuario_cli.connect import warm_up
    from prontuario_cli.connect.fanout import run_all
    from prontuario_cli.errors import ProntuarioError
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
    now = _now()
    samples = state.read_wal_samples(state_dir)
    primary = _primary_position(outcomes)
    if primary is not None:  # this look counts too: a replica behind since now is behind by ~0 s
        samples = state.add_wal_sample(samples, time.time(), primary)
    report = evaluate(
        inventory,
        outcomes,
        previous=previous,
        gcp_active=fallback_active(state_dir),
        checked_at=now,
        elapsed_s=elapsed,
        cloud_samples=samples,
    )
    if record and primary is not None:
        try:
            state.record_wal_samples(state_dir, samples)
        except OSError as exc:
            report = _with_note(report, f"cannot record the primary's WAL position in {state_dir}: {_why(exc)}")
    if record and report.timeline is not None:
        try:
            state.update_timeline(state_dir, scope, lambda current: state.observe(current, scope, report.timeline, report.leader, now))
        except (OSError, ProntuarioError) as exc:
            report = _with_note(report, f"cannot record the timeline in {state_dir}: {_why(exc)}")
    return report


def _primary_position(outcomes) -> int | None:
    """The primary's current WAL position, from whichever PostgreSQL probe found the primary."""
    from prontuario_cli.replication import facts

    for name, outcome in outcomes.items():
        fact = getattr(outcome, "value", None)
        if name.startswith("postgres:") and name != "postgres:cloud" and isinstance(fact, facts.PgNode) and not fact.in_recovery:
            return facts.lsn_to_int(fact.wal_lsn)
    return None


def acknowledge_timeline(inventory: Inventory, by: str | None = None) -> str:
    """Stop reporting the unexpected timeline change now reported; returns what was done.

    ``by`` defaults to the operator (the sudo user, else the login name).
    """
    import getpass
    import os

    from prontuario_cli import paths
    from prontuario_cli.replication import state

    if by is None:
        try:
            by = os.environ.get("SUDO_USER") or getpass.getuser()
        except (KeyError, OSError):
            by = str(os.getuid())
    state_dir = paths.state_dir(inventory)
    scope = inventory.cluster.patroni_scope
    now = _now()
    done: list = []

    def ack(current):
        new, change = state.acknowledge(current, by, now)
        done.append(change)
        return new

    state.update_timeline(state_dir, scope, ack)
    change = done[0] if done else None
    if change is None:
        return "no unexpected timeline change to acknowledge"
    return f"acknowledged: timeline {change.from_timeline}→{change.to_timeline} (first seen {change.first_seen}) by {by}"


def timeline_now(inventory: Inventory) -> tuple[int | None, str | None]:
    """(timeline, leader) as a replication check sees them now; (None, None) when unknown."""
    from prontuario_cli.errors import ProntuarioError

    try:
        report = check(inventory)
    except ProntuarioError:
        return None, None
    return report.timeline, report.leader


def record_drill_timeline(inventory: Inventory, before: int | None, cause: str) -> str:
    """After a drill: record the timeline change it caused (``before`` → now) as expected.

    The next checks then do not warn for it; a change that happened before the drill
    and no check had seen stays reported. Returns a sentence for the journal.
    """
    from prontuario_cli import paths
    from prontuario_cli.replication import state

    after, leader = timeline_now(inventory)
    if before is None or after is None:
        return f"timeline not recorded (before {before if before is not None else 'unknown'}, after {after if after is not None else 'unknown'})"
    if before == after:
        return f"timeline {after} unchanged"
    state_dir = paths.state_dir(inventory)
    scope = inventory.cluster.patroni_scope
    now = _now()
    state.update_timeline(state_dir, scope, lambda current: state.record_expected(current, scope, before, after, leader, cause, now))
    return f"timeline {before}→{after} recorded as expected ({cause})"


def record_operation_timeline(inventory: Inventory, cause: str) -> str:
    """After an operation that restarts the Mac cluster on purpose (``gcp failback``): the
    change from the last recorded timeline to the current one is expected (``cause``)."""
    from prontuario_cli import paths
    from prontuario_cli.replication import state

    recorded = state.read_timeline(paths.state_dir(inventory), inventory.cluster.patroni_scope)
    return record_drill_timeline(inventory, recorded.timeline if recorded else None, cause)


def _why(exc: BaseException) -> str:
    one_line = getattr(exc, "one_line", None)
    return one_line() if callable(one_line) else (getattr(exc, "strerror", None) or str(exc))


def _with_note(report: ReplicationReport, message: str) -> ReplicationReport:
    from dataclasses import replace

    from prontuario_cli.replication.report import Problem
    from prontuario_cli.report import Status

    note = Problem("check", Status.WARNING, message)
    return replace(report, problems=(*report.problems, note), status=Status.worst([report.status, Status.WARNING]))
