"""Small state files in prontuario's state dir that the replication check reads or keeps.

``replication-timeline.json`` (written by ``replication check`` and by drills)
    The PostgreSQL timeline last known, and what the checks must say about a change::

        {"scope": "prontuario", "timeline": 4, "leader": "mac-studio-2", "recorded_at": ISO,
         "unexpected": {"from": 2, "to": 3, "first_seen": ISO, "leader_before": ..., "leader": ...,
                        "acknowledged_at": null, "acknowledged_by": null} | null,
         "expected": {"from": 3, "to": 4, "first_seen": ISO, "cause": "drill RUN_ID", ...} | null}

    A new timeline nobody announced (a failover or switchover prontuario did not cause)
    becomes the ``unexpected`` change: every check and status reports it as WARNING
    from the moment it is first seen until :data:`WARN_WINDOW` has passed or someone
    acknowledges it (``replication check --ack-timeline``); it is not consumed by the
    first caller. A drill records the change it caused as ``expected`` (``cause``:
    ``drill RUN_ID``) at its end, so the checks after a drill do not warn for it.

``gcp-fallback.json`` (written by ``gcp promote`` / ``gcp failback``)
    The emergency-mode flag; its one reader is :mod:`prontuario_cli.cluster.fallback`
    (``fallback_active`` feeds ``gcp_fallback_active``).

The rules are pure functions of (state, what was seen, now) — :func:`observe`,
:func:`pending_change`, :func:`record_expected`, :func:`acknowledge` — and
:func:`update_timeline` applies one under a lock, so a check and a drill ending at the
same moment cannot overwrite each other.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

TIMELINE_FILE = "replication-timeline.json"
WARN_WINDOW_HOURS = 24
WARN_WINDOW = _dt.timedelta(hours=WARN_WINDOW_HOURS)  # an unexpected timeline change stays WARNING this long


@dataclass(frozen=True)
class TimelineChange:
    """A move from one timeline to another, and who (if anyone) owns it."""

    from_timeline: int
    to_timeline: int
    first_seen: str  # ISO 8601 (UTC)
    leader_before: str | None = None
    leader: str | None = None
    cause: str | None = None  # "drill RUN_ID" when prontuario caused it
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None

    def warn_until(self, window: _dt.timedelta = WARN_WINDOW) -> str | None:
        seen = parse_time(self.first_seen)
        return (seen + window).isoformat() if seen else None


@dataclass(frozen=True)
class TimelineState:
    scope: str
    timeline: int
    leader: str | None = None
    recorded_at: str | None = None
    unexpected: TimelineChange | None = None
    expected: TimelineChange | None = None


# --------------------------------------------------------------------------- the rules (pure)


def parse_time(text: str | None) -> _dt.datetime | None:
    """ISO 8601 (with ``Z`` or an offset) -> aware datetime; None for None or garbage."""
    if not text:
        return None
    try:
        value = _dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)


def pending_change(state: TimelineState | None, now: str | None, window: _dt.timedelta = WARN_WINDOW) -> TimelineChange | None:
    """The unexpected change to report now: not acknowledged, first seen less than ``window`` ago.

    Without a clock (``now`` None or unreadable) an unacknowledged change is reported.
    """
    change = state.unexpected if state else None
    if change is None or change.acknowledged_at:
        return None
    seen, at = parse_time(change.first_seen), parse_time(now)
    if seen is not None and at is not None and at - seen >= window:
        return None
    return change


def observe(state: TimelineState | None, scope: str, timeline: int | None, leader: str | None, now: str) -> TimelineState | None:
    """The state after a check saw ``timeline`` at ``now``.

    The first look only records. A timeline other than the recorded one is an
    unexpected change, first seen now; if an earlier one is still reported, the two
    are merged (from the older start, the window counted from now).
    """
    if timeline is None:
        return state
    if state is None:
        return TimelineState(scope, timeline, leader, now)
    if timeline == state.timeline:
        return state
    change = _unseen_change(state, timeline, now, leader)
    return replace(state, timeline=timeline, leader=leader, recorded_at=now, unexpected=change)


def _unseen_change(state: TimelineState, to_timeline: int, now: str, leader: str | None = None) -> TimelineChange:
    """A change nobody expected, from the earliest timeline still pending (or the recorded one)."""
    earlier = pending_change(state, now)
    return TimelineChange(
        from_timeline=earlier.from_timeline if earlier else state.timeline,
        to_timeline=to_timeline,
        first_seen=now,
        leader_before=earlier.leader_before if earlier else state.leader,
        leader=leader,
    )


def record_expected(
    state: TimelineState | None, scope: str, before: int | None, after: int | None, leader: str | None, cause: str, now: str
) -> TimelineState | None:
    """The state after a drill that started on timeline ``before`` ended on ``after``.

    The drill's own change (``before`` → ``after``) is recorded as expected, so no check
    warns for it, even one that ran during the drill and saw it first. A change nobody
    had seen *before* the drill (the record is older than ``before``) stays unexpected.
    """
    if after is None or before is None or after == before:
        return state  # nothing changed (a check will still see any change made before the drill)
    leader_before = state.leader if state is not None and state.timeline == before else None
    expected = TimelineChange(before, after, now, leader_before=leader_before, leader=leader, cause=cause)
    if state is None:
        return TimelineState(scope, after, leader, now, expected=expected)
    unexpected = state.unexpected
    if state.timeline < before or state.timeline > after:
        # The timeline had moved before the drill started and no check saw it.
        unexpected = _unseen_change(state, before, now)
    elif unexpected is not None and unexpected.to_timeline > before:
        # A check during the drill saw (part of) the drill's change: it was expected.
        if unexpected.from_timeline >= before:
            unexpected = None
        else:
            unexpected = replace(unexpected, to_timeline=before)
    return TimelineState(scope, after, leader, now, unexpected=unexpected, expected=expected)


def acknowledge(state: TimelineState | None, by: str, now: str) -> tuple[TimelineState | None, TimelineChange | None]:
    """Mark the reported change as acknowledged; returns (new state, the change acknowledged or None)."""
    change = pending_change(state, now)
    if state is None or change is None:
        return state, None
    done = replace(change, acknowledged_at=now, acknowledged_by=by)
    return replace(state, unexpected=done), done


# --------------------------------------------------------------------------- the file


def read_timeline(state_dir: Path, scope: str) -> TimelineState | None:
    """The recorded timeline state of ``scope``; None if never recorded (or unreadable)."""
    try:
        data = json.loads((Path(state_dir) / TIMELINE_FILE).read_text(encoding="utf-8"))
        if data.get("scope") != scope:
            return None
        return TimelineState(
            scope=scope,
            timeline=int(data["timeline"]),
            leader=data.get("leader"),
            recorded_at=data.get("recorded_at"),
            unexpected=_change(data.get("unexpected")),
            expected=_change(data.get("expected")),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _change(data) -> TimelineChange | None:
    if not isinstance(data, dict):
        return None
    return TimelineChange(
        from_timeline=int(data["from"]),
        to_timeline=int(data["to"]),
        first_seen=str(data.get("first_seen") or ""),
        leader_before=data.get("leader_before"),
        leader=data.get("leader"),
        cause=data.get("cause"),
        acknowledged_at=data.get("acknowledged_at"),
        acknowledged_by=data.get("acknowledged_by"),
    )


def change_json(change: TimelineChange | None) -> dict | None:
    if change is None:
        return None
    return {
        "from": change.from_timeline,
        "to": change.to_timeline,
        "first_seen": change.first_seen,
        "leader_before": change.leader_before,
        "leader": change.leader,
        "cause": change.cause,
        "acknowledged_at": change.acknowledged_at,
        "acknowledged_by": change.acknowledged_by,
    }


def record_timeline(state_dir: Path, state: TimelineState) -> None:
    """Write the timeline state atomically (temp file + rename). Raises OSError."""
    body = json.dumps(
        {
            "scope": state.scope,
            "timeline": state.timeline,
            "leader": state.leader,
            "recorded_at": state.recorded_at,
            "unexpected": change_json(state.unexpected),
            "expected": change_json(state.expected),
        },
        indent=2,
    )
    write_atomically(Path(state_dir) / TIMELINE_FILE, body + "\n")


def update_timeline(
    state_dir: Path, scope: str, change: Callable[[TimelineState | None], TimelineState | None], *, wait_s: float = 2.0
) -> TimelineState | None:
    """Read, change and write the state under a lock (bounded by ``wait_s``); returns the new state.

    Nothing is written when ``change`` returns the state unchanged.
    """
    with _locked(Path(state_dir) / (TIMELINE_FILE + ".lock"), wait_s):
        before = read_timeline(state_dir, scope)
        after = change(before)
        if after is not None and after != before:
            record_timeline(state_dir, after)
        return after


@contextlib.contextmanager
def _locked(path: Path, wait_s: float) -> Iterator[None]:
    """A blocking flock, polled for at most ``wait_s`` (then OSError)."""
    import fcntl
    import os
    import time

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OSError(f"{path} is held by another prontuario for more than {wait_s:g} s") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never half.

    Raises OSError, like every other write here, so a caller that can live without its
    state file (a check that still reports, with a warning) catches one kind of error.
    """
    from prontuario_cli.errors import OperationFailed
    from prontuario_cli.files import write_atomically as write

    try:
        write(path, text, mode)
    except OperationFailed as exc:
        cause = exc.__context__
        if isinstance(cause, OSError):
            raise cause from None
        raise OSError(exc.message) from None


# --------------------------------------------------------------------------- the cloud replica's lag in seconds

CLOUD_LAG_FILE = "replication-cloud-wal.json"
SAMPLES_KEEP_S = 2 * 3600  # older positions cannot matter: past the RPO target many times over
SAMPLES_MAX = 2000


def read_wal_samples(state_dir: Path) -> list[tuple[float, int]]:
    """The primary's WAL positions the checks saw: ``[(unix time, byte position), ...]``, oldest first."""
    try:
        data = json.loads((Path(state_dir) / CLOUD_LAG_FILE).read_text())
        return sorted((float(t), int(p)) for t, p in data.get("samples", []))
    except (OSError, ValueError, TypeError, AttributeError):
        return []


def add_wal_sample(samples: list[tuple[float, int]], now: float, position: int) -> list[tuple[float, int]]:
    """``samples`` with the primary at ``position`` at ``now``; old ones dropped (pure).

    A position lower than the last one (a new primary on a new timeline resumes from its
    own, possibly earlier, end of WAL) starts the series again: positions from different
    histories must not be compared.
    """
    kept = [(t, p) for t, p in samples if now - t <= SAMPLES_KEEP_S and t <= now]
    if kept and position < kept[-1][1]:
        kept = []
    if not kept or kept[-1][1] != position:
        kept.append((now, position))
    return kept[-SAMPLES_MAX:]


def lag_seconds(samples: list[tuple[float, int]], confirmed: int, now: float) -> float | None:
    """How long the cloud replica has been missing WAL, from the checks' own samples.

    The replica confirmed everything up to ``confirmed``. The first time a check saw the
    primary past that position is when the replica began to fall behind: the lag is the
    time since then (0 when no sample is past it). None when the samples cannot say (none
    older than the confirmed position: the series started after it, e.g. just after a
    failover). Its resolution is the interval between checks.
    """
    if not samples:
        return None
    past = [t for t, p in samples if p > confirmed]
    if not past:
        return 0.0
    if samples[0][1] > confirmed and len(samples) == len(past):
        return max(0.0, now - samples[0][0])  # behind since at least the oldest sample
    return max(0.0, now - past[0])


def record_wal_samples(state_dir: Path, samples: list[tuple[float, int]]) -> None:
    write_atomically(Path(state_dir) / CLOUD_LAG_FILE, json.dumps({"samples": [[round(t, 3), p] for t, p in samples]}) + "\n")
