"""Writing a rendered rules file: plan first (new, replace or unchanged), then replace atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prontuario_cli.errors import UsageError


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
    """Replace ``path`` atomically; an existing file keeps its mode, a new one gets 0644."""
    from prontuario_cli.files import write_atomically as write

    write(path, text)
