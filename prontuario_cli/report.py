"""What core functions return: plain dataclasses, plus the small types every renderer knows.

A report may offer ``tables()`` (how it looks on a terminal), ``nagios()`` (the
Nagios plugin line for checks) and ``exit_code()``. Anything else is rendered
generically from its fields. Nothing here imports typer or rich.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import math
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from prontuario_cli.errors import ExitCode


@dataclass(frozen=True)
class Table:
    """One table: a title, column names and rows of plain values."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Perf:
    """One Nagios perfdata item: ``label=value[uom];warn;crit;min;max``."""

    label: str
    value: float | int | None
    uom: str = ""
    warn: float | None = None
    crit: float | None = None
    min: float | None = None
    max: float | None = None

    def render(self) -> str:
        def num(v):
            if v is None:
                return ""
            if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
                return "U"
            return f"{v:g}" if isinstance(v, float) else str(v)

        value = "U" if self.value is None else num(self.value)
        label = f"'{self.label}'" if any(c in self.label for c in " =';") else self.label
        text = f"{label}={value}{self.uom};{num(self.warn)};{num(self.crit)};{num(self.min)};{num(self.max)}"
        return text.rstrip(";")


class Status(enum.IntEnum):
    """A check's verdict, numerically equal to the Nagios exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @classmethod
    def worst(cls, statuses) -> "Status":
        """UNKNOWN ranks between WARNING and CRITICAL, as Nagios aggregates it."""
        order = {cls.OK: 0, cls.WARNING: 1, cls.UNKNOWN: 2, cls.CRITICAL: 3}
        return max(statuses, key=order.__getitem__, default=cls.OK)


@dataclass(frozen=True)
class Nagios:
    status: Status
    summary: str
    perfdata: tuple[Perf, ...] = ()

    def line(self, service: str = "PRONTUARIO") -> str:
        text = f"{service} {self.status.name} - {self.summary}"
        if self.perfdata:
            text += " | " + " ".join(p.render() for p in self.perfdata)
        return text


@dataclass(frozen=True)
class Message:
    """A report that is only a sentence (and, for scripts, the same sentence in JSON)."""

    message: str
    details: dict[str, Any] = field(default_factory=dict)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, paths and datetimes to plain JSON values, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.metadata.get("json", True)
        }
    if isinstance(value, enum.Enum):
        return value.name.lower() if isinstance(value, (Status, ExitCode)) else value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def human_bytes(n: int | float | None, unknown: str = "?") -> str:
    """1536 -> "1.5 KiB" (bytes as B, KiB, MiB, GiB)."""
    if n is None:
        return unknown
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
