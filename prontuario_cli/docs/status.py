"""``docs status``: how fresh the other Mac's copy of the documents is, and which way they go.

Asked at once: Patroni's leader (the direction) and, on each Mac through the node-access
seam, whether its document directory exists and its record of its own pushes
(``docs-sync-NODE.json``). Then, unless told not to, the leader lists what differs with
``rsync --dry-run --itemize-changes`` (nothing moves). :func:`evaluate` turns what came
back into one verdict, Nagios-style; it is pure and tested with fixtures.

Freshness is the age of the leader's last successful push, measured on this machine's
clock against the time the leader recorded (the Macs keep NTP time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from prontuario_cli.docs.plan import Changes, docs_dir_of, parse_itemized, route, rsync_argv
from prontuario_cli.docs.state import PushState, look_command, node_state_dir, parse_look, state_file
from prontuario_cli.errors import ExitCode, ProntuarioError
from prontuario_cli.inventory import Docs, Inventory
from prontuario_cli.report import Nagios, Perf, Status, Table, human_bytes


@dataclass(frozen=True)
class MacLook:
    """One Mac as ``docs status`` saw it."""

    node: str
    dir: str
    dir_exists: bool | None  # None: the Mac did not answer
    state: PushState
    error: str = ""


@dataclass(frozen=True)
class DocsStatus:
    """The verdict (JSON keys are these fields; ``macs[]`` per Mac)."""

    status: Status
    summary: str
    leader: str | None
    source: str | None  # the direction now: the leader...
    target: str | None  # ...to the other Mac
    last_sync_at: str | None  # the leader's last successful push
    last_sync_age_s: float | None
    last_sync_bytes: int | None
    last_error: str | None  # the leader's last failed run, when newer than its last success
    differences: int | None  # what a push would change now (None: not compared)
    pending: dict[str, Any]
    problems: tuple[str, ...]
    set_up: bool  # False: the leader has no document directory and nothing was ever pushed
    macs: tuple[dict[str, Any], ...] = field(default=())
    thresholds: dict[str, float] = field(default_factory=dict)

    def exit_code(self) -> ExitCode:
        return ExitCode(int(self.status))

    def nagios(self) -> Nagios:
        docs = self.thresholds
        perf = (
            Perf("last_sync_age", None if self.last_sync_age_s is None else round(self.last_sync_age_s, 1), "s", docs.get("warning_s"), docs.get("critical_s"), 0),
            Perf("differences", self.differences, "", None, None, 0),
        )
        return Nagios(self.status, self.summary, perf)

    def tables(self) -> list[Table]:
        age = "never" if self.last_sync_age_s is None else f"{self.last_sync_age_s:.1f} s ago ({self.last_sync_at})"
        diff = "not compared" if self.differences is None else (
            f"{self.differences} ({self.pending.get('files_to_send', 0)} to send, {self.pending.get('to_delete', 0)} to delete)")
        rows = [
            ("status", self.status),
            ("direction", f"{self.source} → {self.target}" if self.source else "unknown (no leader)"),
            ("last sync", age),
            ("last sync sent", human_bytes(self.last_sync_bytes, "-")),
            ("differences now", diff),
        ]
        if self.last_error:
            rows.append(("last error", self.last_error))
        if self.problems:
            rows.append(("problems", "; ".join(self.problems)))
        per_mac = tuple(
            (m["node"], m["dir"], {True: "yes", False: "MISSING", None: "?"}[m["dir_exists"]], m.get("last_run") or "-", m.get("last_ok") or "never", m.get("error") or "")
            for m in self.macs
        )
        return [Table("documents", ("", ""), tuple(rows)), Table("Macs", ("node", "directory", "exists", "last run", "last push", "note"), per_mac)]


def gather(inventory: Inventory, *, compare: bool = True, timeout_s: float | None = None, now: float | None = None) -> DocsStatus:
    """Ask the Macs (and, with ``compare``, the leader's rsync) and evaluate."""
    from prontuario_cli.cluster.nodes import node_access
    from prontuario_cli.connect.fanout import run_all
    from prontuario_cli.docs.sync import find_leader

    budget = timeout_s if timeout_s is not None else max(inventory.health_checks.timeout_s, 5.0)
    deadline = time.monotonic() + budget
    access = node_access(inventory)
    states = node_state_dir(inventory)

    def look(node):
        def probe(dl: float):
            command = look_command(docs_dir_of(inventory, node), state_file(states, node.name))
            answer = access.run(node.name, command, timeout_s=max(0.1, dl - time.monotonic()))
            exists, state = parse_look(answer.stdout, node.name)
            return MacLook(node.name, docs_dir_of(inventory, node), exists, state)

        return probe

    probes = {"leader": lambda dl: find_leader(inventory)}
    probes.update({f"mac:{m.name}": look(m) for m in inventory.macs})
    outcomes = run_all(probes, deadline)
    leader_out = outcomes["leader"]
    leader = leader_out.value if leader_out.ok else None
    leader_error = "" if leader else _why(leader_out, budget)
    looks = {}
    for m in inventory.macs:
        got = outcomes[f"mac:{m.name}"]
        looks[m.name] = got.value if got.ok else MacLook(m.name, docs_dir_of(inventory, m), None, PushState(m.name), _why(got, budget))
    diff: Changes | None = None
    compare_error = ""
    if compare and leader and looks.get(leader) and looks[leader].dir_exists:
        try:
            argv = rsync_argv(inventory, route(inventory, leader), dry_run=True)
            answer = access.run(leader, argv, timeout_s=max(inventory.docs.io_timeout_s, budget))
            if answer.exit_status not in (0, 24, 25):
                compare_error = f"rsync --dry-run on {leader} exited {answer.exit_status}: {(answer.stderr.strip().splitlines() or [''])[-1][:200]}"
            else:
                diff = parse_itemized(answer.stdout)
        except ProntuarioError as exc:
            compare_error = exc.one_line()
    return evaluate(inventory.docs, leader, leader_error, looks, diff, compare_error, time.time() if now is None else now)


def _why(outcome, budget: float) -> str:
    if outcome.timed_out:
        return f"no answer within {budget:g} s"
    if outcome.error is not None:
        return outcome.error.one_line()
    return outcome.bug or "no answer"


def evaluate(docs: Docs, leader: str | None, leader_error: str, looks: dict[str, MacLook], diff: Changes | None, compare_error: str, now: float) -> DocsStatus:
    """The verdict from what was seen; pure."""
    problems: list[tuple[Status, str]] = []
    names = list(looks)
    target = next((n for n in names if n != leader), None) if leader else None
    lead = looks.get(leader) if leader else None
    last_ok = lead.state.last_ok if lead else None
    ever = any(look.state.last_ok for look in looks.values())
    age = max(0.0, now - float(last_ok["epoch"])) if last_ok and last_ok.get("epoch") is not None else None
    last_error = None
    set_up = True
    if not leader:
        problems.append((Status.UNKNOWN, f"no Patroni leader, so no direction ({leader_error})"))
    elif lead is None or lead.dir_exists is None:
        problems.append((Status.UNKNOWN, f"{leader}: could not look ({lead.error if lead else 'not a Mac of the inventory'})"))
    elif not lead.dir_exists:
        if ever:
            problems.append((Status.CRITICAL, f"{leader}: the document directory {lead.dir} is missing"))
        else:
            set_up = False
            problems.append((Status.WARNING, f"not set up: {leader} has no document directory {lead.dir} and nothing was ever pushed"))
    if lead is not None and lead.dir_exists is not None and set_up:
        error = lead.state.last_error
        if error and (not last_ok or float(error.get("epoch") or 0) > float(last_ok.get("epoch") or 0)):
            last_error = str(error.get("message") or "failed")
            problems.append((Status.WARNING, f"the last push from {leader} failed: {last_error}"))
        if lead.state.hold:
            problems.append((Status.WARNING, f"deletions on {target} on hold since {lead.state.hold.get('at', '?')}: {lead.state.hold.get('message', '')}"))
        if age is None:
            problems.append((Status.CRITICAL, f"{leader} has never pushed its documents to {target}"))
        elif age >= docs.stale_critical_s:
            problems.append((Status.CRITICAL, f"last successful sync {age:.0f} s ago (critical at {docs.stale_critical_s:g} s)"))
        elif age >= docs.stale_warning_s:
            problems.append((Status.WARNING, f"last successful sync {age:.0f} s ago (warning at {docs.stale_warning_s:g} s)"))
    if compare_error:
        problems.append((Status.WARNING, f"could not compare the Macs: {compare_error}"))
    for look in looks.values():
        if look.node != leader and look.dir_exists is None and leader:
            problems.append((Status.WARNING, f"{look.node}: could not look ({look.error})"))
    status = Status.worst([s for s, _ in problems]) if problems else Status.OK
    ordered = [text for _, text in sorted(problems, key=lambda p: {Status.CRITICAL: 0, Status.UNKNOWN: 1, Status.WARNING: 2}[p[0]])]
    pending = {}
    if diff is not None:
        pending = {"files_to_send": diff.files_sent, "to_delete": diff.deleted, "other": diff.other, "paths": list(diff.paths)}
    if ordered:
        summary = "; ".join(ordered)
    else:
        waiting = f", {diff.total} differences pending (next run within {docs.interval_s:g} s)" if diff is not None and diff.total else (
            ", no differences" if diff is not None else "")
        summary = f"documents {leader} → {target}: last sync {age:.1f} s ago{waiting}"
    macs = tuple(
        {"node": look.node, "dir": look.dir, "dir_exists": look.dir_exists,
         "last_run": _run_text(look.state.last_run), "last_ok": (look.state.last_ok or {}).get("at"), "error": look.error}
        for look in looks.values()
    )  # fmt: skip
    return DocsStatus(
        status, summary, leader, leader, target, (last_ok or {}).get("at"), None if age is None else round(age, 3),
        (last_ok or {}).get("bytes_sent"), last_error, None if diff is None else diff.total, pending, tuple(ordered), set_up, macs,
        {"warning_s": docs.stale_warning_s, "critical_s": docs.stale_critical_s, "interval_s": docs.interval_s},
    )  # fmt: skip


def _run_text(run: dict[str, Any] | None) -> str | None:
    if not run:
        return None
    return f"{run.get('outcome', '?')} at {run.get('at', '?')}" + (f" → {run['to']}" if run.get("to") else "")

