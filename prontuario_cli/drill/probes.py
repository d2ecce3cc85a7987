"""Probes that run during a drill: sequenced writes through HAProxy's write frontend,
reads through the read frontend, and Redis writes through Sentinel's current master.

Every write is classified as **acked** (the client saw the commit), **failed** (it
certainly did not commit: no connection, or the server refused it) or **unknown** (the
connection broke while the commit was in flight: it may or may not have committed).
Loops are bounded in count and time; each attempt is bounded by its connector
(``connect.postgres.Connection``, ``connect.redis.Connection``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from prontuario_cli.engines import PROBE_SCHEMA as SCHEMA
from prontuario_cli.engines import PROBE_TABLE as TABLE
from prontuario_cli.engines import PROBE_TABLE_DDL


@dataclass
class Attempt:
    seq: int
    sent: float  # seconds since the probe's start (monotonic)
    done: float
    outcome: str  # acked | failed | unknown
    error: str | None = None
    server: str | None = None  # which server acknowledged it ("addr:port")


@dataclass
class ProbeLog:
    """What one probe saw; times are seconds since ``started_mono``."""

    name: str
    started_wall: float = 0.0
    started_mono: float = 0.0
    attempts: list[Attempt] = field(default_factory=list)

    def rel(self, mono: float) -> float:
        return mono - self.started_mono

    def counts(self) -> dict[str, int]:
        out = {"acked": 0, "failed": 0, "unknown": 0}
        for a in self.attempts:
            out[a.outcome] += 1
        return out

    def first_ack_sent_after(self, t: float, not_server: str | None = None) -> Attempt | None:
        """The first acknowledged write sent at or after ``t`` (by a server other than ``not_server``)."""
        return next((a for a in self.attempts if a.outcome == "acked" and a.sent >= t and (not_server is None or a.server != not_server)), None)

    def last_ack_before(self, t: float) -> Attempt | None:
        acked = [a for a in self.attempts if a.outcome == "acked" and a.done <= t]
        return acked[-1] if acked else None

    def errors_after(self, t: float) -> int:
        return sum(1 for a in self.attempts if a.sent >= t and a.outcome != "acked")

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time between consecutive acks in [start, end] (0 when no gap)."""
        acks = [a.done for a in self.attempts if a.outcome == "acked" and start <= a.done <= end]
        points = [start, *acks, end] if acks else [start, end]
        return max((b - a for a, b in zip(points, points[1:])), default=0.0)


def tally(log: ProbeLog, present: set[int]) -> dict[str, Any]:
    """Acknowledged writes checked against what the new primary holds: the RPO numbers."""
    acked = {a.seq: a for a in log.attempts if a.outcome == "acked"}
    unknown = {a.seq for a in log.attempts if a.outcome == "unknown"}
    lost = sorted(set(acked) - present)
    counts = log.counts()
    out: dict[str, Any] = {
        "writes_acked": counts["acked"],
        "writes_failed": counts["failed"],
        "writes_unknown": counts["unknown"],
        "unknown_committed": len(unknown & present),
        "lost_acked_writes": len(lost),
        "rpo_s": round(acked[lost[-1]].done - acked[lost[0]].done, 3) if lost else 0.0,
    }
    if lost:
        out["lost_seqs"] = lost[:50]
    return out


class _Loop:
    """A bounded background loop calling ``attempt(seq)`` every ``interval_s``."""

    def __init__(self, name: str, attempt: Callable[[int], tuple[str, str | None]], interval_s: float, max_duration_s: float):
        self.log = ProbeLog(name)
        self._attempt = attempt
        self._interval = interval_s
        self._max_duration = max_duration_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"probe-{name}", daemon=True)

    def start(self) -> None:
        self.log.started_wall = time.time()
        self.log.started_mono = time.monotonic()
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> ProbeLog:
        self._stop.set()
        self._thread.join(timeout_s)
        return self.log

    def _run(self) -> None:
        seq = 0
        max_count = int(self._max_duration / self._interval) + 1
        deadline = self.log.started_mono + self._max_duration
        next_at = time.monotonic()
        while not self._stop.is_set() and seq < max_count and time.monotonic() < deadline:
            seq += 1
            sent = time.monotonic()
            try:
                outcome, detail = self._attempt(seq)
            except Exception as exc:  # noqa: BLE001 - a probe bug is recorded, never kills the loop
                outcome, detail = "failed", f"probe error {type(exc).__name__}: {exc}"
            done = time.monotonic()
            error, server = (None, detail) if outcome == "acked" else (detail, None)
            self.log.attempts.append(Attempt(seq, round(self.log.rel(sent), 4), round(self.log.rel(done), 4), outcome, error, server))
            next_at = max(next_at + self._interval, done)
            self._stop.wait(max(0.0, next_at - time.monotonic()))


# --------------------------------------------------------------------------- PostgreSQL


class PgWriter:
    """Sequenced inserts on one reusable connection (``connect.postgres.Connection``:
    each statement bounded, a broken connection made again on the next attempt)."""

    def __init__(self, target, run_id: str, attempt_timeout_s: float):
        from prontuario_cli.connect.postgres import Connection

        self.run_id = run_id
        self.connection = Connection(target, attempt_timeout_s)

    def attempt(self, seq: int) -> tuple[str, str | None]:
        from prontuario_cli.connect import InFlight
        from prontuario_cli.errors import ProntuarioError

        try:
            return "acked", self.statement(seq)
        except InFlight as exc:
            return self.in_flight, _one_line(exc.message)
        except ProntuarioError as exc:
            return "failed", _one_line(exc.message)

    in_flight = "unknown"  # a write whose connection broke mid-commit may have committed

    def statement(self, seq: int) -> str:
        """Insert one sequenced row; return the server that acknowledged it."""
        (row,) = self.connection.execute(
            f"INSERT INTO {TABLE} (run_id, seq) VALUES (%s, %s) RETURNING inet_server_addr()::text || ':' || inet_server_port()",
            (self.run_id, seq),
        )
        return str(row[0]).replace("/32", "")

    def close(self) -> None:
        self.connection.close()


class PgReader(PgWriter):
    """``SELECT 1`` through the read frontend; a read either answered or it failed."""

    in_flight = "failed"

    def statement(self, seq: int) -> str:
        (row,) = self.connection.execute("SELECT inet_server_addr()::text || ':' || inet_server_port()")
        return str(row[0]).replace("/32", "")


def prepare_table(target, deadline_s: float = 10.0) -> None:
    """Create the drill schema and table on the primary (idempotent)."""
    from prontuario_cli.connect.postgres import session
    from prontuario_cli.errors import ProntuarioError, UnavailableError

    try:
        with session(target, time.monotonic() + deadline_s, read_only=False) as pg:
            pg.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            pg.execute(PROBE_TABLE_DDL)
    except ProntuarioError as exc:
        raise UnavailableError(f"cannot prepare the drill table through {target.where}: {_one_line(exc.message)}") from None


def committed_seqs(target, run_id: str, timeout_s: float = 10.0) -> set[int]:
    """Which of this run's writes the (new) primary holds."""
    from prontuario_cli.connect.postgres import session
    from prontuario_cli.errors import ProntuarioError, UnavailableError

    try:
        with session(target, time.monotonic() + timeout_s) as pg:
            rows = pg.execute(f"SELECT seq FROM {TABLE} WHERE run_id = %s", (run_id,))
    except ProntuarioError as exc:
        raise UnavailableError(f"cannot read the drill table through {target.where}: {_one_line(exc.message)}") from None
    return {row["seq"] for row in rows}


def pg_write_probe(target, run_id: str, *, interval_s: float = 0.02, attempt_timeout_s: float = 2.0, max_duration_s: float = 300) -> "_Probe":
    return _Probe(PgWriter(target, run_id, attempt_timeout_s), "writes", interval_s, max_duration_s)


def pg_read_probe(target, *, interval_s: float = 0.1, attempt_timeout_s: float = 2.0, max_duration_s: float = 300) -> "_Probe":
    return _Probe(PgReader(target, "", attempt_timeout_s), "reads", interval_s, max_duration_s)


class _Probe:
    def __init__(self, client, name: str, interval_s: float, max_duration_s: float):
        self.client = client
        self.loop = _Loop(name, client.attempt, interval_s, max_duration_s)

    @property
    def log(self) -> ProbeLog:
        return self.loop.log

    def start(self) -> "_Probe":
        self.loop.start()
        return self

    def stop(self) -> ProbeLog:
        log = self.loop.stop()
        self.client.close()
        return log


# --------------------------------------------------------------------------- Redis


class RedisWriter:
    """Writes ``drill:<run>:<seq>`` to the master Sentinel names, as a Sentinel-aware client does:
    ask the Sentinels on (re)connect, drop the connection on any error."""

    def __init__(self, sentinels: list[tuple[str, int]], master: str, run_id: str, attempt_timeout_s: float, password: str | None = None):
        self.sentinels = sentinels
        self.master = master
        self.run_id = run_id
        self.timeout = attempt_timeout_s
        self.password = password
        self._connection = None
        self._address: str | None = None

    def attempt(self, seq: int) -> tuple[str, str | None]:
        from prontuario_cli.connect import InFlight
        from prontuario_cli.connect.redis import Connection, RedisTarget, master_address
        from prontuario_cli.errors import ProntuarioError

        try:
            if self._connection is None:
                host, port = master_address(self.sentinels, self.master, self.timeout)
                self._address = f"{host}:{port}"
                self._connection = Connection(RedisTarget(host, port, self.password), self.timeout)
            self._connection.call("SET", f"drill:{self.run_id}:{seq}", "1", "EX", 86400)
            return "acked", self._address
        except InFlight as exc:  # the command may have reached the server
            self.close()
            return "unknown", _one_line(exc.message)
        except ProntuarioError as exc:  # never connected, or READONLY and friends: certainly not written
            self.close()
            return "failed", _one_line(exc.message)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None


def redis_write_probe(sentinels, master: str, run_id: str, *, password: str | None = None, interval_s: float = 0.02, attempt_timeout_s: float = 1.0, max_duration_s: float = 120) -> _Probe:
    return _Probe(RedisWriter(sentinels, master, run_id, attempt_timeout_s, password), "redis-writes", interval_s, max_duration_s)


def redis_present(host: str, port: int, run_id: str, seqs: list[int], password: str | None = None, timeout_s: float = 5.0) -> set[int]:
    """Which of this run's Redis writes ``host:port`` holds."""
    from prontuario_cli.connect.redis import RedisTarget, ReplyError, commands

    target = RedisTarget(host, port, password)
    present = set()
    chunk = 500
    for i in range(0, len(seqs), chunk):
        part = seqs[i : i + chunk]
        (values,) = commands(target, [("MGET", *(f"drill:{run_id}:{s}" for s in part))], time.monotonic() + timeout_s)
        if isinstance(values, ReplyError):
            raise values
        present.update(s for s, v in zip(part, values) if v is not None)
    return present


def _one_line(text: str) -> str:
    from prontuario_cli.secrets import redact

    return redact(" ".join(str(text).split()))[:300]
