"""What a Mac remembers of its own pushes: ``<state dir>/docs-sync-NODE.json``.

Written by ``docs sync`` on the Mac that pushed (atomically, every run that led), read
back by ``docs status`` and ``prontuario status`` through the node-access seam. It holds
the last run (whatever its outcome), the last successful one and the last error: the age
of the last success is the documents' freshness on the other Mac.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prontuario_cli.inventory import Inventory

STATE_NAME = "docs-sync-{node}.json"
LOCK_NAME = "docs-sync.lock"


def state_file(directory: str | Path, node: str) -> Path:
    return Path(directory) / STATE_NAME.format(node=node)


def node_state_dir(inventory: Inventory) -> Path:
    """The state directory on the Macs, as read from elsewhere.

    A lab's Macs are this machine (its state dir, ``$PRONTUARIO_STATE_DIR`` first); a real
    Mac's is ``paths.state_dir``, else ``/var/lib/prontuario`` (the job runs as root).
    """
    from prontuario_cli.cluster.nodes import is_lab
    from prontuario_cli.paths import state_dir

    if is_lab(inventory):
        return state_dir(inventory)
    return Path(inventory.paths.state_dir or "/var/lib/prontuario")


@dataclass(frozen=True)
class PushState:
    """One Mac's record of its pushes (None fields: never happened)."""

    node: str
    last_run: dict[str, Any] | None = None  # at, epoch, outcome, to, message
    last_ok: dict[str, Any] | None = None  # at, epoch, to, files_sent, deleted, bytes_sent, seconds
    last_error: dict[str, Any] | None = None  # at, epoch, to, message
    hold: dict[str, Any] | None = None  # at, epoch, message: deletions on the other Mac held since then

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "last_run": self.last_run, "last_ok": self.last_ok, "last_error": self.last_error, "hold": self.hold}


def parse_state(text: str, node: str) -> PushState | None:
    """The JSON of a state file -> PushState; None when empty or not ours."""
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None

    def part(key: str) -> dict[str, Any] | None:
        value = data.get(key)
        return value if isinstance(value, dict) else None

    return PushState(str(data.get("node") or node), part("last_run"), part("last_ok"), part("last_error"), part("hold"))


def load_local(directory: Path, node: str) -> PushState:
    try:
        found = parse_state(state_file(directory, node).read_text(encoding="utf-8"), node)
    except OSError:
        found = None
    return found or PushState(node)


def last_run_here(inventory: Inventory, node: str) -> dict[str, Any] | None:
    """This machine's record of ``node``'s last run (the job runs on the node itself)."""
    from prontuario_cli.paths import state_dir

    return load_local(state_dir(inventory), node).last_run


def same_failure_as_before(previous: dict[str, Any] | None, message: str) -> bool:
    """True when the run before this one failed the same way (the job repeats every few seconds:
    a failure is audited when it starts, not on every run while it lasts)."""
    return bool(previous) and previous.get("outcome") in ("failed", "refused") and previous.get("message") == message


def record(
    directory: Path, node: str, run: dict[str, Any], *, ok: dict[str, Any] | None = None, error: str | None = None, hold: str | None = None
) -> PushState:
    """Add one run to ``node``'s record (atomically); the new record.

    ``hold`` puts deletions on the other Mac on hold (kept across other failures); a
    successful run (``ok``) releases it.
    """
    from prontuario_cli.clock import iso
    from prontuario_cli.files import write_atomically

    now = time.time()
    stamp = {"at": iso(now), "epoch": round(now, 3)}
    before = load_local(directory, node)
    after = PushState(
        node,
        last_run={**stamp, **run},
        last_ok={**stamp, **ok} if ok is not None else before.last_ok,
        last_error={**stamp, "to": run.get("to"), "message": error} if error is not None else before.last_error,
        hold={**stamp, "message": hold} if hold is not None else (None if ok is not None else before.hold),
    )
    write_atomically(state_file(directory, node), json.dumps(after.to_json(), indent=2) + "\n", 0o644)
    return after


# --------------------------------------------------------------------------- read back over the seam

DIR_MARK = "prontuario-docs-dir: "


def look_command(docs_dir: str, state_path: Path) -> str:
    """One shell line for a Mac: does its document directory exist, and its state file."""
    d, s = shlex.quote(docs_dir), shlex.quote(str(state_path))
    return f"if [ -d {d} ]; then echo '{DIR_MARK}yes'; else echo '{DIR_MARK}no'; fi; cat {s} 2>/dev/null || true"


def parse_look(text: str, node: str) -> tuple[bool | None, PushState]:
    """``look_command``'s output -> (directory exists, the state: empty when there is none)."""
    lines = text.splitlines()
    exists = None
    if lines and lines[0].startswith(DIR_MARK):
        exists = lines[0][len(DIR_MARK):].strip() == "yes"
        lines = lines[1:]
    return exists, parse_state("\n".join(lines), node) or PushState(node)
