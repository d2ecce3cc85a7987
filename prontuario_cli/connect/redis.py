"""Redis and Sentinel through redis-py, one bounded connection per call, no retries.

Replies come back raw (no redis-py response callbacks), so parsers in core code
see exactly what the server sent. A hung server (accepts TCP, never answers) hits
the socket timeout; a refused connection is :class:`~prontuario_cli.connect.Refused`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

from prontuario_cli.connect import InFlight, Refused, TimedOut
from prontuario_cli.errors import OperationFailed, PermissionProblem, UnavailableError


@dataclass(frozen=True)
class RedisTarget:
    host: str
    port: int
    password: str | None = None
    kind: str = "Redis"  # "Redis" or "Sentinel", for messages

    @property
    def where(self) -> str:
        return f"{self.kind} {self.host}:{self.port}"


class ReplyError(OperationFailed):
    """The server answered a command with an error reply (e.g. ``-NOQUORUM ...``)."""

    def __init__(self, message: str, reply: str):
        super().__init__(message)
        self.reply = reply


def _open(target: RedisTarget, timeout_s: float, *, decode: bool = True):
    """An unconnected redis-py Connection: one try (no retries, no backoff), bounded sockets."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    options = dict(
        host=target.host,
        port=target.port,
        password=target.password,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        decode_responses=decode,
        client_name="prontuario",
    )
    try:  # no CLIENT SETINFO round trip (redis-py >= 7 spells it driver_info)
        return redis.Connection(driver_info=None, **options)
    except TypeError:
        return redis.Connection(lib_name=None, lib_version=None, **options)


def _convert(exc, target: RedisTarget):
    """A redis-py exception as the ProntuarioError that says what failed."""
    import redis

    if isinstance(exc, redis.exceptions.AuthenticationError):
        return PermissionProblem(f"{target.where}: authentication failed: {exc}")
    if isinstance(exc, redis.exceptions.TimeoutError):
        return TimedOut(f"{target.where}: no answer within the health-check timeout")
    if isinstance(exc, redis.exceptions.ConnectionError):
        text = str(exc)
        if "refused" in text.lower():
            return Refused(f"{target.where}: connection refused", hint="is the service running there?")
        if "timeout" in text.lower() or "timed out" in text.lower():
            return TimedOut(f"{target.where}: no answer within the health-check timeout")
        return UnavailableError(f"{target.where}: {text}")
    return OperationFailed(f"{target.where}: {type(exc).__name__}: {exc}")


def _disconnect(conn) -> None:
    try:
        conn.disconnect()
    except Exception:  # noqa: BLE001 - closing is best effort
        pass


def commands(target: RedisTarget, calls: Sequence[Sequence[str]], deadline: float) -> list[Any]:
    """Send each command in ``calls`` on one connection; return the raw decoded replies.

    An error reply is returned as a :class:`ReplyError` in its slot (not raised), so
    one refused command does not hide the others' answers.
    """
    import redis

    left = deadline - time.monotonic()
    if left <= 0:
        raise TimedOut(f"{target.where}: no time left to connect")
    conn = _open(target, left)
    replies: list[Any] = []
    try:
        conn.connect()
        for call in calls:
            if time.monotonic() >= deadline:
                raise TimedOut(f"{target.where}: no answer within the health-check timeout")
            conn.send_command(*call)
            try:
                replies.append(conn.read_response())
            except redis.exceptions.ResponseError as exc:
                text = str(exc)
                replies.append(ReplyError(f"{target.where}: {' '.join(call)}: {text}", text))
    except redis.exceptions.RedisError as exc:
        raise _convert(exc, target) from None
    finally:
        _disconnect(conn)
    return replies


class Connection:
    """A long-lived connection for probes that write many times a second.

    ``call(*command)`` returns the reply; an error reply (READONLY, ...) raises
    :class:`ReplyError` (not applied); a failure to connect raises Refused / TimedOut /
    UnavailableError (nothing was sent); a connection that breaks after the command was
    sent raises :class:`~prontuario_cli.connect.InFlight` (it may have been applied).
    The connection is dropped after any failure and made again on the next call.
    """

    def __init__(self, target: RedisTarget, timeout_s: float):
        self.target = target
        self.timeout_s = timeout_s
        self.conn = None

    def call(self, *command: Any) -> Any:
        import redis

        if self.conn is None:
            conn = _open(self.target, self.timeout_s)
            try:
                conn.connect()
            except redis.exceptions.RedisError as exc:
                _disconnect(conn)
                raise _convert(exc, self.target) from None
            self.conn = conn
        try:
            self.conn.send_command(*command)
            return self.conn.read_response()
        except redis.exceptions.ResponseError as exc:
            self.close()
            raise ReplyError(f"{self.target.where}: {command[0]}: {exc}", str(exc)) from None
        except redis.exceptions.RedisError as exc:
            self.close()
            raise InFlight(f"{self.target.where}: {_convert(exc, self.target).message}") from None

    def close(self) -> None:
        if self.conn is not None:
            _disconnect(self.conn)
        self.conn = None


def master_address(sentinels: Sequence[tuple[str, int]], master: str, timeout_s: float) -> tuple[str, int]:
    """Where the Sentinels say ``master`` is now: the first Sentinel that answers wins
    (a Sentinel-aware client does the same on every reconnect)."""
    errors = []
    for host, port in sentinels:
        target = RedisTarget(host, port, kind="Sentinel")
        try:
            (reply,) = commands(target, [("SENTINEL", "get-master-addr-by-name", master)], time.monotonic() + timeout_s)
        except UnavailableError as exc:
            errors.append(exc.message)
            continue
        if isinstance(reply, (list, tuple)) and len(reply) == 2:
            return str(reply[0]), int(reply[1])
        errors.append(f"{target.where}: no master named {master!r}")
    raise UnavailableError(f"no Sentinel knows the master {master!r}: " + "; ".join(errors))


# --------------------------------------------------------------------------- reply shapes


def info_fields(reply: Any) -> dict[str, str]:
    """An INFO reply (``key:value`` lines under ``# Section`` headers) as a dict of strings.

    Anything that is not INFO text (an error reply, nothing) gives an empty dict.
    """
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", errors="replace")
    if not isinstance(reply, str):
        return {}
    out: dict[str, str] = {}
    for line in reply.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        out[key] = value
    return out


def reply_pairs(reply: Any) -> dict[str, str]:
    """A flat ``[key, value, key, value, ...]`` reply (SENTINEL MASTER, CONFIG GET) as a dict of strings.

    Anything that is not such a list (an error reply, nothing) gives an empty dict.
    """
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    if not isinstance(reply, (list, tuple)):
        return {}
    items = list(reply)
    return {str(items[i]): str(items[i + 1]) for i in range(0, len(items) - 1, 2)}
