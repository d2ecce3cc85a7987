"""Reports over audit entries (``audit show``)."""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

from prontuario_cli.errors import UsageError
from prontuario_cli.report import Table


@dataclass(frozen=True)
class EntriesReport:
    log: str
    entries: tuple[dict, ...]

    def tables(self) -> list[Table]:
        rows = tuple(
            (e.get("seq"), e.get("time"), e.get("operator"), e.get("host"), _command_line(e), e.get("outcome"), e.get("duration_s"))
            for e in self.entries
        )
        return [Table(f"audit log {self.log}", ("seq", "time (UTC)", "operator", "host", "command", "outcome", "seconds"), rows)]


def _command_line(entry: dict) -> str:
    args = entry.get("args") or {}
    shown = " ".join(f"{k}={v}" for k, v in args.items() if v not in (None, False, "", [])) if isinstance(args, dict) else str(args)
    return f"{entry.get('command')} {shown}".strip()


def entries_report(log: str, entries: list[dict]) -> EntriesReport:
    return EntriesReport(log=log, entries=tuple(entries))


_AGE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: _dt.datetime | None = None) -> _dt.datetime:
    """An ISO date/time (naive = UTC) or an age such as 30m, 12h, 7d."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    match = _AGE.match(text.strip())
    if match:
        return now - _dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    try:
        when = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since {text!r} is neither a date/time nor an age", hint="e.g. 2026-11-01, 2026-11-01T03:00, 12h, 7d") from None
    return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)
