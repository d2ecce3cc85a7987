"""Where prontuario keeps its own files, with one override each.

- state: ``$PRONTUARIO_STATE_DIR``, else ``/var/lib/prontuario`` as root, else
  ``$XDG_STATE_HOME/prontuario`` (``~/.local/state/prontuario``).
- audit log: ``$PRONTUARIO_AUDIT_LOG``, else the one a command names (the lab's own log
  for ``lab up/down/install``), else the inventory's ``paths.audit_log``, else
  ``/var/log/prontuario/audit.jsonl`` as root, else ``<state>/audit.jsonl``.
- audit key (the HMAC key that authenticates the log): ``$PRONTUARIO_AUDIT_KEY``, else the
  inventory's ``paths.audit_key``, else ``<log>.key`` beside the log. Kept apart from
  the log on purpose: whoever may append to the log need not be able to read the key.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir(inventory=None) -> Path:
    if os.environ.get("PRONTUARIO_STATE_DIR"):
        return Path(os.environ["PRONTUARIO_STATE_DIR"]).expanduser()
    if inventory is not None and inventory.paths.state_dir:
        return Path(inventory.paths.state_dir).expanduser()
    if os.geteuid() == 0:
        return Path("/var/lib/prontuario")
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "prontuario"


def audit_log_path(inventory=None, own: Path | None = None) -> Path:
    if os.environ.get("PRONTUARIO_AUDIT_LOG"):
        return Path(os.environ["PRONTUARIO_AUDIT_LOG"]).expanduser()
    if own is not None:
        return Path(own)
    if inventory is not None and inventory.paths.audit_log:
        return Path(inventory.paths.audit_log).expanduser()
    if os.geteuid() == 0 and not os.environ.get("PRONTUARIO_STATE_DIR"):
        return Path("/var/log/prontuario/audit.jsonl")
    return state_dir(inventory) / "audit.jsonl"


def audit_key_path(inventory=None, log: Path | None = None) -> Path:
    """The audit log's HMAC key: ``$PRONTUARIO_AUDIT_KEY``, ``paths.audit_key``, else ``<log>.key``."""
    if os.environ.get("PRONTUARIO_AUDIT_KEY"):
        return Path(os.environ["PRONTUARIO_AUDIT_KEY"]).expanduser()
    if inventory is not None and getattr(inventory.paths, "audit_key", None):
        return Path(inventory.paths.audit_key).expanduser()
    log = Path(log) if log is not None else audit_log_path(inventory)
    return log.with_name(log.name + ".key")
