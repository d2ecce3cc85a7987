"""Redis and Sentinel through redis-py, one bounded connection per call, no retries.

Replies come back raw (no redis-py response callbacks), so parsers in core code
see exactly what the server sent. A hung server (accepts TCP, never answers) hits
the socket timeout; a refused connection is :class:`~prontuario_cli.connect.Refused`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

from prontuario_cli.connect import Refused, TimedOut
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


def commands(target: RedisTarget, calls: Sequence[Sequence[str]], deadline: float) -> list[Any]:
    """Send each command in ``calls`` on one connection; return the raw decoded replies.

    An error reply is returned as a :class:`ReplyError` in its slot (not raised), so
    one refused command does not hide the others' answers.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    left = deadline - time.monotonic()
    if left <= 0:
        raise TimedOut(f"{target.where}: no time left to connect")
    options = dict(
        host=target.host,
        port=target.port,
        password=target.password,
        socket_timeout=left,
        socket_connect_timeout=left,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
        client_name="prontuario",
    )
    try:  # no CLIENT SETINFO round trip (redis-py >= 7 spells it driver_info)
        conn = redis.Connection(driver_info=None, **options)
    except TypeError:
        conn = redis.Connection(lib_name=None, lib_version=None, **options)
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
    except redis.exceptions.AuthenticationError as exc:
        raise PermissionProblem(f"{target.where}: authentication failed: {exc}") from None
    except redis.exceptions.TimeoutError:
        raise TimedOut(f"{target.where}: no answer within the health-check timeout") from None
    except redis.exceptions.ConnectionError as exc:
        text = str(exc)
        if "refused" in text.lower():
            raise Refused(f"{target.where}: connection refused", hint="is the service running there?") from None
        if "timeout" in text.lower() or "timed out" in text.lower():
            raise TimedOut(f"{target.where}: no answer within the health-check timeout") from None
        raise UnavailableError(f"{target.where}: {text}") from None
    except redis.exceptions.RedisError as exc:
        raise OperationFailed(f"{target.where}: {type(exc).__name__}: {exc}") from None
    finally:
        try:
            conn.disconnect()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
    return replies


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
