"""The journal of one runbook run, in prontuario's state dir.

``<kind>-<subject>.json`` (mode 0600), e.g. ``gcp-promote-<instance>.json``
    Run id, the fields the runbook keeps, and each step with its status, time and
    details. Written atomically after every change, so an interrupted run continues
    exactly where it stopped. :meth:`RunState.archive` moves a finished one aside as
    ``<kind>-<subject>.<run id>.done.json``.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from prontuario_cli.clock import utc_now
from prontuario_cli.errors import OperationFailed, PermissionProblem


def safe_name(name: str) -> str:
    """``name`` usable in a file name (anything but letters, digits, ``_.-`` becomes ``_``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class RunState:
    """The journal of one run (a JSON object on disk, 0600).

    ``steps`` maps a step name to ``{"status": "done"|"failed"|"started", "at": ISO,
    "details": {...}}``; everything else is free-form fields of the run.
    """

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path = path
        self.data = data

    @classmethod
    def path_for(cls, state_dir: str | os.PathLike, kind: str, subject: str) -> Path:
        """``<state_dir>/<kind>-<subject>.json`` (``subject`` made safe for a file name)."""
        return Path(state_dir) / f"{kind}-{safe_name(subject)}.json"

    @classmethod
    def load(cls, path: Path) -> "RunState | None":
        """The journal at ``path``; None when there is none. A damaged one is an error, never ignored."""
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
        """A new journal with ``fields``, saved at once."""
        state = cls(path, {**fields, "created_at": utc_now(), "steps": {}})
        state.save()
        return state

    # ------------------------------------------------------------------ steps

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        return self.data["steps"]

    def done(self, step: str) -> bool:
        return self.steps.get(step, {}).get("status") == "done"

    def status(self, step: str) -> str | None:
        return self.steps.get(step, {}).get("status")

    def details(self, step: str) -> dict[str, Any]:
        return self.steps.get(step, {}).get("details") or {}

    def mark(self, step: str, status: str, **details: Any) -> None:
        """Record ``step``'s status (and details, merged with earlier ones); saved at once."""
        entry = self.steps.setdefault(step, {})
        entry.update(status=status, at=utc_now())
        if details:
            entry.setdefault("details", {}).update(details)
        self.save()

    # ------------------------------------------------------------------ fields

    def set(self, **fields: Any) -> None:
        self.data.update(fields)
        self.save()

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def complete(self) -> bool:
        return bool(self.data.get("completed_at"))

    # ------------------------------------------------------------------ the file

    def save(self) -> None:
        from prontuario_cli.files import write_atomically

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise PermissionProblem(f"cannot write {self.path}: {exc.strerror or exc}", hint="check the state dir (paths.state_dir) and its permissions") from None
        write_atomically(self.path, json.dumps(self.data, indent=2, sort_keys=True, default=str) + "\n", 0o600)

    def archive(self) -> Path:
        """Move the file aside as ``<name>.<run id>.done.json`` (a new run may start)."""
        run_id = safe_name(str(self.data.get("run_id", int(time.time()))))
        target = self.path.with_name(f"{self.path.stem}.{run_id}.done.json")
        try:
            os.replace(self.path, target)
        except OSError as exc:
            raise PermissionProblem(f"cannot archive {self.path}: {exc.strerror or exc}") from None
        self.path = target
        return target
