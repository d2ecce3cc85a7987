"""Writing a rendered rules file: plan first (new, replace or unchanged), then replace atomically."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from prontuario_cli.errors import OperationFailed, UsageError


@dataclass(frozen=True)
class RulesFileReport:
    """What ``monitor rules --output`` did (or, with ``--dry-run``, would do) to the file."""

    path: str
    kind: str
    alerts: tuple[str, ...]
    action: str  # create | replace | unchanged, prefixed "would " on a dry run
    bytes: int


def plan_write(path: Path, text: str) -> str:
    """``create``, ``replace`` or ``unchanged``: what writing ``text`` to ``path`` would do."""
    if path.is_dir():
        raise UsageError(f"{path} is a directory", hint="give a file name, e.g. prontuario-alerts.yaml")
    if not path.parent.is_dir():
        raise UsageError(f"directory {path.parent} does not exist", hint="create it first, or choose another --output")
    if not path.exists():
        return "create"
    try:
        current = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return "replace"
    return "unchanged" if current == text else "replace"


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, flush it to disk, then rename it over ``path``.

    A reader (Prometheus reloading, kubectl) sees the old file or the new one,
    never half of one. An existing file keeps its mode; a new one gets 0644.
    """
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OperationFailed(f"cannot write {path}: {exc.strerror or exc}", hint="check the directory's permissions and free space") from None
