"""The emergency-mode flag: whether the platform runs on the Cloud SQL fallback.

``<state dir>/gcp-fallback.json`` (mode 0644)
    ``{"active": true, "since": ISO, "instance": ..., "reason": ..., "run_id": ...}``.
    ``gcp promote`` sets it, ``gcp failback`` clears it (earlier fields are kept, e.g.
    ``since``); ``replication check`` and ``gcp status`` read it. Missing or unreadable
    means not active. This module is its only reader and writer.

``gcp_fallback_active`` in the metrics textfile (``paths.metrics_textfile``)
    Updated in place by :func:`update_metric`; every other metric in the file (those of
    ``replication check --prometheus``) is kept.

Only foundation modules are imported here, so both ``replication`` and ``gcp`` may use it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from prontuario_cli.clock import utc_now
from prontuario_cli.errors import OperationFailed, PermissionProblem

FALLBACK_FILE = "gcp-fallback.json"
METRIC = "gcp_fallback_active"
METRIC_HELP = "1 when the Cloud SQL fallback has been promoted (emergency mode)."


def read_fallback(state_dir: str | os.PathLike) -> dict[str, Any]:
    """The flag file's content ({} when missing or unreadable)."""
    try:
        data = json.loads((Path(state_dir) / FALLBACK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def fallback_active(state_dir: str | os.PathLike) -> bool:
    """True only when the flag file says ``"active": true``."""
    return read_fallback(state_dir).get("active") in (True, 1)


def write_fallback(state_dir: str | os.PathLike, active: bool, **fields: Any) -> Path:
    """Set or clear the flag (keeps the earlier fields, e.g. ``since``); returns the file."""
    from prontuario_cli.files import write_atomically

    data = read_fallback(state_dir)
    data.update(fields)
    data["active"] = bool(active)
    data["updated_at"] = utc_now()
    path = Path(state_dir) / FALLBACK_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise PermissionProblem(f"cannot write {path}: {exc.strerror or exc}", hint="check the state dir (paths.state_dir) and its permissions") from None
    return write_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n", 0o644)


def update_metric(textfile: str | os.PathLike, active: bool) -> Path:
    """Set ``gcp_fallback_active`` in the node_exporter textfile, keeping every other metric."""
    from prontuario_cli.metrics import Family, Sample, render, write_textfile

    path = Path(textfile).expanduser()
    try:
        current = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = ""
    except OSError as exc:
        raise OperationFailed(f"cannot read {path}: {exc.strerror or exc}") from None
    ours = render([Family(METRIC, METRIC_HELP, samples=(Sample(1 if active else 0),))])
    return write_textfile(path, replace_family(current, METRIC, ours))


def replace_family(text: str, name: str, block: str) -> str:
    """``text`` (exposition format) with the family ``name`` replaced by ``block`` (or appended)."""
    kept: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if line.startswith("# ") and len(words) >= 3 and words[1] in ("HELP", "TYPE") and words[2] == name:
            continue
        metric = re.split(r"[{\s]", line, maxsplit=1)[0] if line and not line.startswith("#") else ""
        if metric == name:
            continue
        kept.append(line)
    body = "\n".join(line for line in kept if line.strip())
    return (body + "\n" if body else "") + block
