"""Reports over audit entries (``audit show``): one row per operation, not per line.

The log holds an intent and an outcome entry per operation; a reader wants "who ran
what, and how it ended". :func:`operations` pairs them by ``id``; an intent with no
outcome shows as ``no outcome recorded``. Legacy entries (one per operation, written
after it) pass through as they are.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

from prontuario_cli.errors import UsageError
from prontuario_cli.report import Table

NO_OUTCOME = "no outcome recorded"
_CHAIN_FIELDS = ("prev", "mac", "hash", "key_id", "phase")


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


def operations(entries: list[dict], since: _dt.datetime | None = None) -> list[dict]:
    """One dict per operation, in the order they started; with ``since``, those started then or later.

    An operation's dict is its outcome entry with ``seq`` and ``time`` of its intent (when
    it started), plus ``ended`` and ``outcome_seq``; the chain's own fields are left out.
    """
    rows: list[dict] = []
    started: dict[str, int] = {}  # id -> index in rows
    for entry in entries:
        phase = entry.get("phase")
        plain = {k: v for k, v in entry.items() if k not in _CHAIN_FIELDS}
        if phase == "intent" and isinstance(entry.get("id"), str):
            started[entry["id"]] = len(rows)
            rows.append({**plain, "outcome": NO_OUTCOME})
        elif phase == "outcome" and isinstance(entry.get("id"), str) and entry["id"] in started:
            index = started.pop(entry["id"])
            intent = rows[index]
            rows[index] = {**plain, "seq": intent.get("seq"), "time": intent.get("time"), "ended": entry.get("time"), "outcome_seq": entry.get("seq")}
        else:
            rows.append(plain)  # a legacy entry (or an outcome whose intent was lost)
    if since is None:
        return rows
    from prontuario_cli.audit import parse_time

    return [row for row in rows if parse_time(row.get("time")) >= since]


def entries_report(log: str, entries: list[dict]) -> EntriesReport:
    return EntriesReport(log=log, entries=tuple(entries))


_AGE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_HINT = "e.g. 2026-11-01, 2026-11-01T03:00, 12h, 7d"


def parse_since(text: str, now: _dt.datetime | None = None) -> _dt.datetime:
    """An ISO date/time (naive = UTC) or an age such as 30m, 12h, 7d.

    An age reaching before year 1 (``99999999d``) is a usage error, not an overflow.
    """
    now = now or _dt.datetime.now(_dt.timezone.utc)
    match = _AGE.match(text.strip())
    if match:
        try:
            return now - _dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
        except (OverflowError, ValueError):
            raise UsageError(f"--since {text!r} reaches further back than any date", hint=_HINT) from None
    try:
        when = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since {text!r} is neither a date/time nor an age", hint=_HINT) from None
    return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)
