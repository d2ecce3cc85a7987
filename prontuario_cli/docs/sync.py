"""``docs sync --once``: the leader Mac pushes its documents to the other Mac with rsync.

Two ways in:

- **On a Mac** (``--node NAME``, what each Mac's launchd job runs every ``docs.interval_s``):
  :func:`sync_here`. Patroni says who leads; a Mac that does not lead does nothing and says
  why (the other Mac's job does the push). The leader takes a lock (a run still going makes
  the next one exit 75 at once, never two at the same time), refuses to push a missing
  directory, runs rsync from its directory to the other Mac, and records the run in
  ``<state dir>/docs-sync-NODE.json``. Nothing changed costs a Patroni look, rsync's
  quick check (size + mtime) and one small file write.
- **From anywhere** (no ``--node``): :func:`sync_via` finds the leader and runs the above
  on it through the node-access seam; ``--from NODE`` names the source you expect, and
  is refused (exit 14) when it is not the leader.

Deletions have a brake. An empty leader directory is pushed with ``--max-delete=0``: if
the other Mac holds documents it keeps them and the run is refused (an unmounted volume
must not erase the other Mac). A run that would delete more than ``docs.max_delete`` stops
deleting there. Either refusal puts deletions **on hold**: later runs still send what is
new but delete nothing (``--max-delete=0``) until a run finds nothing left to delete or an
operator, having looked, runs ``docs sync --once --node LEADER --allow-deletes``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prontuario_cli.docs.plan import NO_LIMIT, Route, describe_exit, parse_itemized, peer_ssh_of, route, rsync_argv, rsync_of
from prontuario_cli.errors import IntegrityError, LockedError, OperationFailed, ProntuarioError, RefusedError, UnavailableError
from prontuario_cli.inventory import Inventory
from prontuario_cli.report import Table, human_bytes

Say = Callable[[str], None]

# Outcomes: synced (something moved), unchanged (nothing differed), skipped (this Mac does
# not lead: nothing pushed), dry-run (only listed what would move).
OUTCOMES = ("synced", "unchanged", "skipped", "dry-run")


@dataclass(frozen=True)
class SyncResult:
    """What one ``docs sync --once`` did (JSON keys are these fields)."""

    outcome: str
    node: str  # the Mac the run was for
    leader: str | None
    source: str | None = None  # the direction: source -> target
    target: str | None = None
    source_dir: str = ""
    target_dir: str = ""
    files_sent: int = 0
    deleted: int = 0
    other_changes: int = 0
    bytes_sent: int = 0  # what rsync sent (rsync's "Total bytes sent": data, checksums, file list)
    literal_bytes: int = 0  # file data sent as is
    seconds: float = 0.0
    rsync: str = ""
    message: str = ""
    changed: tuple[str, ...] = field(default=())  # the first few paths sent or deleted

    def tables(self) -> list[Table]:
        direction = f"{self.source} → {self.target}" if self.source else "-"
        rows = [
            ("outcome", self.outcome),
            ("direction", direction),
            ("leader", self.leader or "none"),
        ]
        if self.outcome != "skipped":
            rows += [
                ("directories", f"{self.source_dir} → {self.target_dir}"),
                ("files", f"{self.files_sent} sent, {self.deleted} deleted, {self.other_changes} other changes"),
                ("over the wire", f"{human_bytes(self.bytes_sent)} ({human_bytes(self.literal_bytes)} of file data)"),
                ("took", f"{self.seconds:.2f} s"),
            ]
        rows.append(("", self.message))
        return [Table("", ("", ""), tuple(rows))]


class DeletionsHeld(RefusedError):
    """A push would have deleted more on the other Mac than allowed: deletions are on hold."""


def find_leader(inventory: Inventory) -> str:
    """The Patroni leader now (every Mac asked at once, within ``health_checks.timeout_s``)."""
    from prontuario_cli.cluster.patroni import cluster_view

    view = cluster_view(inventory, timeout_s=inventory.health_checks.timeout_s)
    if not view.leader:
        raise UnavailableError("Patroni names no leader: no direction for documents, nothing pushed", hint="prontuario replication status")
    return view.leader


def plan_lines(inventory: Inventory, leader: str) -> list[str]:
    r = route(inventory, leader)
    how = "over SSH (host key checked against known_hosts)" if r.over_ssh else "between this lab's directories"
    return [
        f"{r.source} leads: push {r.source}:{r.source_dir}/ to {r.target}:{r.target_dir}/ with rsync -a --delete {how}",
        f"at most {inventory.docs.max_delete} deletions on {r.target}; record the run in {r.source}'s state dir",
    ]


def sync_here(
    inventory: Inventory,
    node: str,
    *,
    leader: str | None = None,
    dry_run: bool = False,
    accept_new: bool = False,
    allow_deletes: bool = False,
    state_dir: Path | None = None,
    say: Say | None = None,
) -> SyncResult:
    """One pass on ``node`` itself: push its documents to the other Mac if it leads, else nothing.

    ``leader`` skips asking Patroni (tests, and callers that just asked). Errors are
    recorded in the state file, then raised. ``allow_deletes``: no ``--max-delete`` brake
    for this run (releases a hold).
    """
    from prontuario_cli.docs.plan import other_mac
    from prontuario_cli.docs.state import load_local, record
    from prontuario_cli.paths import state_dir as default_state_dir

    say = say or (lambda text: None)
    other_mac(inventory, node)  # node must be one of the two Macs
    directory = state_dir or default_state_dir(inventory)
    if leader is None:
        try:
            leader = find_leader(inventory)
        except ProntuarioError as exc:
            record(directory, node, {"outcome": "failed", "to": None, "message": exc.one_line()}, error=exc.one_line())
            raise
    if leader != node:
        return SyncResult("skipped", node, leader, leader, node,
                          message=f"{node} is not the leader ({leader} is): documents only go from the leader; nothing pushed here")
    r = route(inventory, leader)
    held = None if allow_deletes else load_local(directory, node).hold
    if dry_run:
        return _push(inventory, r, dry_run=True, accept_new=accept_new, held=held, allow_deletes=allow_deletes, say=say)
    from prontuario_cli.docs.state import LOCK_NAME
    from prontuario_cli.files import exclusive_lock

    def busy(holder: str) -> ProntuarioError:
        return LockedError(f"another docs sync is running on {node} ({holder}): this one does nothing", hint="it ends within docs.timeout_s")

    with exclusive_lock(directory / LOCK_NAME, f"docs sync {r.source} -> {r.target}", busy):
        try:
            result = _push(inventory, r, dry_run=False, accept_new=accept_new, held=held, allow_deletes=allow_deletes, say=say)
        except ProntuarioError as exc:
            outcome = "refused" if isinstance(exc, RefusedError) else "failed"
            record(directory, node, {"outcome": outcome, "to": r.target, "message": exc.one_line()}, error=exc.one_line(),
                   hold=exc.message if isinstance(exc, DeletionsHeld) and not held else None)
            raise
        ok = {"to": r.target, "files_sent": result.files_sent, "deleted": result.deleted, "bytes_sent": result.bytes_sent, "seconds": result.seconds}
        record(directory, node, {"outcome": result.outcome, "to": r.target, "message": result.message}, ok=ok)
    return result


def _push(inventory: Inventory, r: Route, *, dry_run: bool, accept_new: bool, held: dict | None, allow_deletes: bool, say: Say) -> SyncResult:
    """rsync the leader's directory to the other Mac, here (this process runs on the leader)."""
    from prontuario_cli.cluster.nodes import run_local
    from prontuario_cli.connect.rsync import check_rsync, host_key_refused, stat_number

    started = time.monotonic()
    rsync = rsync_of(inventory)
    here = run_local([rsync, "--version"], timeout_s=30, where=f"{rsync} --version")
    version = check_rsync(here.stdout + here.stderr, f"{r.source}: {rsync}", setting="docs.rsync (or models.rsync)")
    source = Path(r.source_dir)
    if not source.is_dir():
        raise OperationFailed(f"{r.source}: the document directory {r.source_dir} does not exist: nothing pushed",
                              hint="create it (or mount its volume); check docs.dir / the node's docs_dir")
    empty = not any(source.iterdir())
    limit = NO_LIMIT if allow_deletes else (0 if empty or held else None)
    argv = rsync_argv(inventory, r, dry_run=dry_run, max_delete=limit, accept_new=accept_new)
    say(f"rsync {r.source}:{r.source_dir}/ -> {r.target}:{r.target_dir}/{' (dry run)' if dry_run else ''}")
    result = run_local(argv, timeout_s=inventory.docs.timeout_s, where=f"rsync to {r.target}")
    code = result.exit_status
    changes = parse_itemized(result.stdout)
    note = ""
    if code == 24:
        note = " (some files vanished while sent: the next run settles them)"
    elif code == 25 and not dry_run:
        release = f"prontuario docs sync --once --node {r.source} --allow-deletes --yes"
        if empty:
            raise DeletionsHeld(f"{r.source}: the document directory {r.source_dir} is empty but {r.target} holds documents: not deleting them",
                                hint=f"an unmounted volume? check {r.source}; if they must go: {release}")
        if held:
            raise DeletionsHeld(f"deletions on {r.target} are on hold since {held.get('at', '?')} ({held.get('message', '')[:160]}): new files sent, nothing deleted",
                                hint=f"check {r.source}:{r.source_dir}, then {release}")
        raise DeletionsHeld(f"pushing to {r.target} would delete more than docs.max_delete ({inventory.docs.max_delete}) files: stopped there, "
                            "deletions on hold", hint=f"check {r.source}:{r.source_dir}, then {release}")
    elif code not in (0, 25):
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])[:400]
        if host_key_refused(result.stderr):
            raise IntegrityError(f"rsync to {r.target}: its host key does not match {peer_ssh_of(inventory).known_hosts}: refused",
                                 hint="check the host; never just delete the known_hosts line")
        failure = UnavailableError if code in (10, 30, 35, 255) else OperationFailed
        raise failure(f"rsync to {r.target} exited {code} ({describe_exit(code)}): {tail}", hint="the next run sends the rest: partial files resume")
    outcome = "dry-run" if dry_run else ("synced" if changes.total else "unchanged")
    verb = "would send" if dry_run else "sent"
    message = (f"{r.source} → {r.target}: {verb} {changes.files_sent} files, "
               f"{'would delete' if dry_run else 'deleted'} {changes.deleted}" if changes.total else f"{r.source} → {r.target}: already identical")
    return SyncResult(
        outcome, r.source, r.source, r.source, r.target, r.source_dir, r.target_dir,
        changes.files_sent, changes.deleted, changes.other, stat_number(result.stdout, "Total bytes sent"),
        stat_number(result.stdout, "Literal data"), round(time.monotonic() - started, 3), version, message + note, changes.paths,
    )  # fmt: skip


# --------------------------------------------------------------------------- from anywhere


def sync_via(
    inventory: Inventory, *, source: str | None = None, leader: str | None = None, dry_run: bool = False, accept_new: bool = False, allow_deletes: bool = False
) -> SyncResult:
    """Run the sync on the leader through the node-access seam (``prontuario docs sync --once --node LEADER`` there).

    ``source``: the Mac the operator expects to push; refused when it is not the leader.
    """
    from prontuario_cli.cluster.nodes import is_lab, node_access

    leader = leader or find_leader(inventory)
    if source is not None and source != leader:
        raise RefusedError(f"{source} is not the leader ({leader} is): documents only go from the leader (the primary wins); nothing pushed",
                           hint=f"prontuario docs sync --once (pushes from {leader})")
    argv = [inventory.models.prontuario]
    if is_lab(inventory) and inventory.source:
        argv += ["-i", str(Path(inventory.source).resolve())]  # real Macs use their own inventory
    argv += ["docs", "sync", "--once", "--node", leader, "--yes", "--json"] + (["--dry-run"] if dry_run else []) + (["--accept-new"] if accept_new else [])
    argv += ["--allow-deletes"] if allow_deletes else []
    answer = node_access(inventory).run(leader, argv, timeout_s=inventory.docs.timeout_s + 30)
    try:
        data = json.loads(answer.stdout) if answer.stdout.strip() else None
    except ValueError:
        data = None
    if answer.exit_status != 0 or not isinstance(data, dict) or "outcome" not in data:
        said = answer.stderr.strip().splitlines()
        why = said[-1] if said else f"exit {answer.exit_status}, no output"
        error = OperationFailed(f"{leader}: docs sync failed: {why[:400]}")
        error.exit_code = _exit_of(answer.exit_status, error.exit_code)
        raise error
    fields = {k: data.get(k) for k in SyncResult.__dataclass_fields__ if k in data}
    fields["changed"] = tuple(fields.get("changed") or ())
    return SyncResult(**fields)


def _exit_of(status: int, default):
    """The node's own exit code when it is one of ours (75 locked, 14 refused, ...)."""
    from prontuario_cli.errors import ExitCode

    try:
        return ExitCode(status)
    except ValueError:
        return default

