"""What the cloud fallback remembers between runs, in prontuario's state dir.

``gcp-promote-<instance>.json`` / ``gcp-failback-<instance>.json`` (mode 0600)
    A run's journal: run id, reason, each completed step with its time and details,
    the promoteReplica operation, the measured lag, RTO/RPO. Written atomically after
    every step, so an interrupted run continues with ``--resume`` exactly where it
    stopped (a step recorded as done is never run again). A finished run's file is
    kept; failback archives both as ``*.<run id>.done.json``.

``gcp-fallback.json`` (mode 0644)
    ``{"active": true, "since": ISO, "instance": ..., "reason": ..., "run_id": ...}``: the
    emergency mode flag. ``replication check`` reads it to report
    ``gcp_fallback_active``; ``gcp promote`` sets it, ``gcp failback`` clears it.

``gcp.lock``
    An exclusive flock: one promote or failback at a time on this machine.

The metrics textfile (``paths.metrics_textfile``) gets ``gcp_fallback_active`` updated in
place: other metrics in the file (``replication check --prometheus``) are kept.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

from prontuario_cli.errors import LockedError, OperationFailed, PermissionProblem

FALLBACK_FILE = "gcp-fallback.json"  # the name replication/state.py reads
LOCK_FILE = "gcp.lock"
METRIC = "gcp_fallback_active"
METRIC_HELP = "1 when the Cloud SQL fallback has been promoted (emergency mode)."


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _write_atomically(path: Path, text: str, mode: int) -> None:
    from prontuario_cli.files import write_atomically

    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise PermissionProblem(f"cannot write {path}: {exc.strerror or exc}", hint="check the state dir (paths.state_dir) and its permissions") from None
    write_atomically(path, text, mode)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class RunState:
    """The journal of one promote or failback run (a JSON object on disk, 0600).

    ``steps`` maps a step name to ``{"status": "done"|"failed"|"started", "at": ISO,
    "details": {...}}``; everything else is free-form fields of the run.
    """

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path = path
        self.data = data

    @classmethod
    def path_for(cls, state_dir: Path, kind: str, instance: str) -> Path:
        return Path(state_dir) / f"gcp-{kind}-{_safe_name(instance)}.json"

    @classmethod
    def load(cls, path: Path) -> "RunState | None":
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PermissionProblem(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or not isinstance(data.get("steps"), dict):
                raise ValueError("not a run state")
        except ValueError as exc:
            raise OperationFailed(f"{path} is damaged ({exc})", hint="read it, then move it aside to start over") from None
        return cls(path, data)

    @classmethod
    def create(cls, path: Path, **fields: Any) -> "RunState":
        state = cls(path, {**fields, "created_at": utc_now(), "steps": {}})
        state.save()
        return state

    # ------------------------------------------------------------------ steps

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        return self.data["steps"]

    def done(self, step: str) -> bool:
        return self.steps.get(step, {}).get("status") == "done"

    def details(self, step: str) -> dict[str, Any]:
        return self.steps.get(step, {}).get("details") or {}

    def mark(self, step: str, status: str, **details: Any) -> None:
        entry = self.steps.setdefault(step, {})
        entry.update(status=status, at=utc_now())
        if details:
            entry.setdefault("details", {}).update(details)
        self.save()

    def set(self, **fields: Any) -> None:
        self.data.update(fields)
        self.save()

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def complete(self) -> bool:
        return bool(self.data.get("completed_at"))

    def save(self) -> None:
        _write_atomically(self.path, json.dumps(self.data, indent=2, sort_keys=True, default=str) + "\n", 0o600)

    def archive(self) -> Path:
        """Move the file aside as ``<name>.<run id>.done.json`` (a new run may start)."""
        target = self.path.with_name(f"{self.path.stem}.{_safe_name(str(self.data.get('run_id', int(time.time()))))}.done.json")
        try:
            os.replace(self.path, target)
        except OSError as exc:
            raise PermissionProblem(f"cannot archive {self.path}: {exc.strerror or exc}") from None
        self.path = target
        return target


# --------------------------------------------------------------------------- the lock


@contextlib.contextmanager
def gcp_lock(state_dir: Path, what: str) -> Iterator[None]:
    """One promote/failback at a time on this machine (non-blocking flock)."""
    try:
        Path(state_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(Path(state_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise PermissionProblem(f"cannot open the lock in {state_dir}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "unknown"
            raise LockedError(f"another cloud fallback command is running ({holder})", hint="wait for it; never run two at once") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {what}, since {utc_now()}".encode(), 0)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- the emergency flag


def read_fallback(state_dir: Path) -> dict[str, Any]:
    """The flag file's content ({} when missing or unreadable)."""
    try:
        data = json.loads((Path(state_dir) / FALLBACK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_fallback(state_dir: Path, active: bool, **fields: Any) -> Path:
    """Set or clear the emergency flag (keeps the earlier fields, e.g. ``since``)."""
    data = read_fallback(state_dir)
    data.update(fields)
    data["active"] = bool(active)
    data["updated_at"] = utc_now()
    path = Path(state_dir) / FALLBACK_FILE
    _write_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n", 0o644)
    return path


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


def run_tables(what: str, completed: bool, rows, steps, notes) -> list:
    """The tables of a promote or failback report: summary, steps, notes."""
    from prontuario_cli.report import Table

    out = [
        Table(f"{what} " + ("complete" if completed else "INCOMPLETE"), ("key", "value"), tuple(rows)),
        Table("steps", ("step", "status", "seconds", "detail"), tuple((s.step, s.status, s.seconds, s.detail) for s in steps)),
    ]
    if notes:
        out.append(Table("notes", ("note",), tuple((n,) for n in notes)))
    return out
