"""PostgreSQL through psycopg 3, with every call bounded.

libpq's ``connect_timeout`` is in whole seconds (at least 2) and does not bound
queries; ``statement_timeout`` is enforced by the server, which does nothing if
the server is hung (SIGSTOP accepts TCP connections and never answers). So each
session also arms a watchdog that shuts the socket down at the deadline: the
blocked query then fails at once with a connection error, converted here to
:class:`~prontuario_cli.connect.TimedOut`.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

from prontuario_cli.connect import InFlight, Refused, TimedOut
from prontuario_cli.errors import OperationFailed, PermissionProblem, UnavailableError


@dataclass(frozen=True)
class PgTarget:
    """Where one PostgreSQL server is and who to log in as (the password, if any, in memory only)."""

    host: str
    port: int
    user: str = "postgres"
    dbname: str = "postgres"
    password: str | None = None
    application_name: str = "prontuario"

    @property
    def where(self) -> str:
        return f"PostgreSQL {self.host}:{self.port}"


class Watchdog:
    """Shuts a connection's socket down at a deadline unless disarmed first."""

    def __init__(self, fd: int, deadline: float):
        self._fd = fd
        self._lock = threading.Lock()
        self._armed = True
        self.fired = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if not self._armed:
                return
            self.fired = True
            try:
                # A duplicate of the descriptor shares the socket: shutting it down wakes
                # the thread blocked on the original.
                sock = socket.socket(fileno=os.dup(self._fd))
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                finally:
                    sock.close()
            except OSError:
                pass

    def disarm(self) -> None:
        """Called before the connection closes, so a recycled descriptor is never touched."""
        with self._lock:
            self._armed = False
        self._timer.cancel()


def run_queries(target: PgTarget, queries: Sequence[str], deadline: float) -> list[list[dict[str, Any]]]:
    """Run read-only ``queries`` in one session; each result is a list of dict rows.

    Raises Refused, TimedOut, UnavailableError, PermissionProblem or OperationFailed.
    """
    with session(target, deadline) as pg:
        return [pg.execute(sql) for sql in queries]


class session:
    """``with session(target, deadline) as pg: pg.execute(sql)``: one bounded connection.

    Autocommit, ``statement_timeout`` set to the time left, a watchdog that cuts the
    socket at the deadline, and ``default_transaction_read_only`` unless ``read_only``
    is False (the cloud fallback's emergency writes).
    """

    def __init__(self, target: PgTarget, deadline: float, *, read_only: bool = True):
        self.target = target
        self.deadline = deadline
        self.read_only = read_only
        self.conn = None
        self.watchdog: Watchdog | None = None

    @property
    def where(self) -> str:
        return self.target.where

    def __enter__(self) -> "session":
        import psycopg

        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimedOut(f"{self.target.where}: no time left to connect")
        try:
            self.conn = psycopg.connect(**connect_options(self.target, left, read_only=self.read_only))
        except psycopg.Error as exc:
            raise convert_error(exc, self.target, timed_out=time.monotonic() >= self.deadline) from None
        self.watchdog = Watchdog(self.conn.pgconn.socket, self.deadline)
        return self

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """One query; its rows as dicts (empty for statements without a result)."""
        import psycopg

        try:
            cur = self.conn.execute(sql, params or None)
            return list(cur.fetchall()) if cur.description else []
        except psycopg.errors.QueryCanceled:
            raise TimedOut(f"{self.target.where}: query cancelled by statement_timeout") from None
        except psycopg.Error as exc:
            cut = self.watchdog is not None and self.watchdog.fired
            raise convert_error(exc, self.target, timed_out=cut or time.monotonic() >= self.deadline) from None

    def __exit__(self, *exc_info) -> None:
        if self.watchdog is not None:
            self.watchdog.disarm()
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection is best effort
                pass


def connect_options(target: PgTarget, timeout_s: float, *, read_only: bool, dict_rows: bool = True) -> dict[str, Any]:
    """psycopg.connect() options: autocommit, every statement, lock wait and TCP send bounded by ``timeout_s``."""
    from psycopg.rows import dict_row, tuple_row

    millis = max(1, int(timeout_s * 1000))
    options: dict[str, Any] = dict(
        host=target.host,
        port=target.port,
        user=target.user,
        dbname=target.dbname,
        application_name=target.application_name,
        connect_timeout=max(2, math.ceil(timeout_s)),  # libpq's floor; the caller's deadline still applies
        options=f"-c statement_timeout={millis} -c lock_timeout={millis}" + (" -c default_transaction_read_only=on" if read_only else ""),
        tcp_user_timeout=millis,
        autocommit=True,
        row_factory=dict_row if dict_rows else tuple_row,
    )
    if target.password is not None:
        options["password"] = target.password
    return options


# SQLSTATE classes after which a statement certainly did not commit (data, integrity,
# transaction state, authorization, catalog, syntax, resources, limits).
NOT_COMMITTED_CLASSES = ("22", "23", "25", "28", "3D", "40", "42", "53", "54")


class Connection:
    """A long-lived autocommit connection for probes that write or read many times a second.

    Each statement is bounded by ``timeout_s`` (statement_timeout, TCP user timeout, and
    a watchdog that cuts the socket: a frozen server cannot hold it). A broken
    connection is dropped and made again on the next statement. Failures are converted
    with the one distinction a write probe needs: :class:`~prontuario_cli.connect.InFlight`
    when the statement may have committed (the connection broke mid-statement), any
    other ProntuarioError when it certainly did not.
    """

    def __init__(self, target: PgTarget, timeout_s: float):
        self.target = target
        self.timeout_s = timeout_s
        self.conn = None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        import psycopg

        if self.conn is None or self.conn.closed:
            started = time.monotonic()
            try:
                self.conn = psycopg.connect(**connect_options(self.target, self.timeout_s, read_only=False, dict_rows=False))
            except psycopg.Error as exc:
                self.conn = None
                raise convert_error(exc, self.target, timed_out=time.monotonic() - started >= self.timeout_s) from None
        watchdog = Watchdog(self.conn.pgconn.socket, time.monotonic() + self.timeout_s)
        try:
            cur = self.conn.execute(sql, params or None)
            return list(cur.fetchall()) if cur.description else []
        except psycopg.Error as exc:
            self.close()
            state = getattr(exc, "sqlstate", None) or ""
            if state[:2] in NOT_COMMITTED_CLASSES:
                raise convert_error(exc, self.target, timed_out=False) from None
            text = f"no answer within {self.timeout_s:g} s" if watchdog.fired else " ".join(str(exc).split()) or type(exc).__name__
            raise InFlight(f"{self.target.where}: {text}") from None
        finally:
            watchdog.disarm()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection is best effort
                pass
        self.conn = None


def convert_error(exc, target: PgTarget, *, timed_out: bool) -> UnavailableError | OperationFailed:
    import psycopg

    text = " ".join(str(exc).split()) or type(exc).__name__
    lowered = text.lower()
    if timed_out:
        return TimedOut(f"{target.where}: no answer within the health-check timeout")
    if isinstance(exc, psycopg.OperationalError):
        if "refused" in lowered or "no such file" in lowered:
            return Refused(f"{target.where}: connection refused", hint="is PostgreSQL (or Patroni) running there?")
        if "password authentication failed" in lowered or "no pg_hba.conf entry" in lowered:
            return PermissionProblem(f"{target.where}: login refused for {target.user}: {text}")
        if "timeout" in lowered or "timed out" in lowered:
            return TimedOut(f"{target.where}: no answer within the health-check timeout")
        return UnavailableError(f"{target.where}: {text}")
    return OperationFailed(f"{target.where}: query failed: {text}")

