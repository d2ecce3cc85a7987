"""Which way documents go and the rsync that takes them there: pure, tested with fixtures.

The direction follows Patroni: from the leader Mac to the other one, never the reverse
(the primary wins). The rsync is ``-a --delete`` (the other Mac ends up holding exactly
the leader's documents), with a partial directory (an interrupted file resumes), an I/O
timeout, ``--max-delete`` as a brake, and, between real Macs, SSH with the host key
checked against known_hosts (``StrictHostKeyChecking=yes``). In a lab both Macs are this
machine: the same rsync runs between two local directories, no SSH.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from prontuario_cli.connect.rsync import RSYNC_EXIT, ssh_transport
from prontuario_cli.errors import UsageError
from prontuario_cli.inventory import Inventory, Node, PeerSSH

PARTIAL_DIR = ".rsync-partial"  # relative: rsync excludes it from the transfer and from deletion
NO_LIMIT = -1  # rsync_argv(max_delete=NO_LIMIT): no --max-delete at all (an operator's --allow-deletes)
REPLACED_DIR = ".prontuario-replaced"  # on the receiving Mac: what a push deleted or overwrote, per run


def docs_dir_of(inventory: Inventory, node: Node) -> str:
    """A Mac's document directory: its ``docs_dir``, else ``docs.dir``."""
    return (node.docs_dir or inventory.docs.dir).rstrip("/")


def rsync_of(inventory: Inventory) -> str:
    return inventory.docs.rsync or inventory.models.rsync


def peer_ssh_of(inventory: Inventory) -> PeerSSH:
    return inventory.docs.peer_ssh or inventory.models.peer_ssh


def other_mac(inventory: Inventory, name: str) -> Node:
    """The Mac that is not ``name`` (the push's target)."""
    macs = inventory.macs
    if name not in {m.name for m in macs}:
        raise UsageError(f"{name} is not a Mac of the inventory (documents live on {', '.join(m.name for m in macs)})")
    others = [m for m in macs if m.name != name]
    if len(others) != 1:
        raise UsageError(f"documents need exactly two Macs in the inventory, found {len(macs)}")
    return others[0]


@dataclass(frozen=True)
class Route:
    """One push: from the leader's directory to the other Mac's."""

    source: str  # the leader
    target: str
    source_dir: str
    target_dir: str
    destination: str  # what rsync is given: a local path (lab) or USER@HOST:PATH/
    over_ssh: bool


def route(inventory: Inventory, leader: str) -> Route:
    """The push from ``leader`` to the other Mac."""
    from prontuario_cli.cluster.nodes import is_lab

    source = inventory.node(leader)
    target = other_mac(inventory, leader)
    source_dir, target_dir = docs_dir_of(inventory, source), docs_dir_of(inventory, target)
    if is_lab(inventory):
        return Route(source.name, target.name, source_dir, target_dir, f"{target_dir}/", False)
    user = peer_ssh_of(inventory).user or target.ssh.user
    host = f"[{target.address}]" if ":" in target.address else target.address
    return Route(source.name, target.name, source_dir, target_dir, f"{user}@{host}:{target_dir}/", True)


def rsync_argv(
    inventory: Inventory, r: Route, *, dry_run: bool = False, max_delete: int | None = None, accept_new: bool = False, stamp: str | None = None
) -> list[str]:
    """The rsync the leader runs to push its documents (``dry_run``: only list what differs).

    ``REPLACED_DIR`` is excluded on both sides (never sent, never deleted); with
    ``docs.keep_replaced`` what the push deletes or overwrites goes into
    ``REPLACED_DIR/<stamp>/`` on the other Mac.
    """
    docs = inventory.docs
    limit = docs.max_delete if max_delete is None else max_delete
    argv = [
        rsync_of(inventory), "-a", "--delete", "--delete-delay", f"--partial-dir={PARTIAL_DIR}", f"--exclude=/{REPLACED_DIR}/",
        f"--timeout={docs.io_timeout_s}", "--itemize-changes", "--stats", "--no-human-readable",
    ]  # fmt: skip
    if limit != NO_LIMIT:
        argv.append(f"--max-delete={limit}")
    if docs.keep_replaced:
        argv += ["--backup", f"--backup-dir={REPLACED_DIR}/{stamp or replaced_stamp()}"]
    if dry_run:
        argv.append("--dry-run")
    if r.over_ssh:
        peer = peer_ssh_of(inventory)
        target = inventory.node(r.target)
        argv += ["-e", ssh_transport(peer.key, target.ssh.port, peer.known_hosts, accept_new=accept_new), f"--rsync-path={rsync_of(inventory)}"]
    return argv + [f"{r.source_dir}/", r.destination]


def replaced_stamp(now: float | None = None) -> str:
    """``20261129T031245Z``: one directory of replaced files per run."""
    import time

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


# --------------------------------------------------------------------------- rsync's answer

ITEM = re.compile(r"^(\*deleting|[<>ch.][fdLDSU][^ ]{7,9})\s+(.+)$")


@dataclass(frozen=True)
class Changes:
    """What one rsync run moved (or, with --dry-run, would move), from ``--itemize-changes``."""

    files_sent: int = 0  # regular files created or updated on the other Mac
    deleted: int = 0  # files and directories removed there (the leader no longer has them)
    other: int = 0  # directories, symlinks, attributes (times, permissions)
    paths: tuple[str, ...] = ()  # the first few, for a person

    @property
    def total(self) -> int:
        return self.files_sent + self.deleted + self.other


def parse_itemized(text: str, keep: int = 10) -> Changes:
    """rsync ``--itemize-changes`` lines -> counts (other lines, e.g. ``--stats``, are ignored)."""
    sent = deleted = other = 0
    paths: list[str] = []
    for line in text.splitlines():
        found = ITEM.match(line)
        if not found:
            continue
        code, path = found.groups()
        if code == "*deleting":
            deleted += 1
        elif code[0] in "<>" and code[1] == "f":
            sent += 1
        else:
            other += 1
        if len(paths) < keep:
            paths.append(f"{'deleting ' if code == '*deleting' else ''}{path}")
    return Changes(sent, deleted, other, tuple(paths))


def describe_exit(code: int) -> str:
    return RSYNC_EXIT.get(code, f"exit {code}")
