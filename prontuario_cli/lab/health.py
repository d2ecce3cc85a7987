"""Readiness probes and the lab's bounded wait: every wait is a poll with a deadline, never a blind sleep.

Every probe calls a connector (``prontuario_cli.connect``) and never raises for "not
ready yet": the connector's ProntuarioError becomes the probe's falsy answer (status
0, None, False, nothing). :func:`wait_for` is :func:`prontuario_cli.poll.wait_for`
with the lab's error, naming the component, what was awaited, what was seen last
and the log to read. The connectors (and their libraries) are imported inside the
probes, so importing this module costs nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

from prontuario_cli.errors import ProntuarioError, UnavailableError

if TYPE_CHECKING:
    from prontuario_cli.connect.haproxy import HAProxyServer

T = TypeVar("T")

HOST = "127.0.0.1"  # every lab service listens on loopback


class StopWaiting(Exception):
    """Raised by a probe to end a wait at once with ``error`` (e.g. the process died).

    Deliberately not a ProntuarioError: :func:`prontuario_cli.poll.wait_for` counts
    those as "not yet" and polls on.
    """

    def __init__(self, error: ProntuarioError):
        super().__init__(error.message)
        self.error = error


def wait_for(
    what: str,
    probe: Callable[[], T],
    timeout_s: float,
    *,
    component: str,
    log: Path | None = None,
    interval_s: float = 0.2,
    last_state: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe`` until it returns something truthy, within ``timeout_s``; return that.

    Raises UnavailableError "COMPONENT: WHAT not reached within N s; last seen: ...
    (log: PATH)" on time-out, or the error of a :class:`StopWaiting` the probe raised.
    """
    from prontuario_cli.poll import wait_for as poll_until

    def timed_out(last: str) -> UnavailableError:
        state = f"; last seen: {last}" if last else ""
        where = f" (log: {log})" if log else ""
        return UnavailableError(
            f"{component}: {what} not reached within {timeout_s:g} s{state}{where}",
            hint=f"read it with: prontuario lab logs {component}",
        )

    try:
        value, _ = poll_until(f"{component}: {what}", probe, timeout_s, interval_s=interval_s, last_state=last_state, on_timeout=timed_out)
    except StopWaiting as stop:
        raise stop.error from None
    return value


def _or_default(default: Any, call: Callable[[], T]) -> T | Any:
    """``call()``, or ``default`` when a connector says the service is not there (yet)."""
    try:
        return call()
    except ProntuarioError:
        return default


def _deadline(timeout_s: float) -> float:
    return time.monotonic() + timeout_s


# --------------------------------------------------------------------------- HTTP


def lab_url(port: int, path: str) -> str:
    """``http://127.0.0.1:PORT/PATH``: where a lab service answers HTTP."""
    from prontuario_cli.connect.http import url_of

    return url_of(HOST, port, path)


def http_status(url: str, timeout_s: float = 1.0) -> int:
    """The status of a GET whatever it is (200, 503...); 0 when nothing answered."""
    from prontuario_cli.connect.http import get_status

    return _or_default(0, lambda: get_status(url, _deadline(timeout_s)))


def http_json(url: str, timeout_s: float = 1.0) -> dict | None:
    """The JSON object a GET answers, whatever its status; None when nothing (or no JSON object) answered."""
    from prontuario_cli.connect.http import request

    def call() -> dict | None:
        value = request("GET", url, _deadline(timeout_s), accept_status=None).json(url)
        return value if isinstance(value, dict) else None

    return _or_default(None, call)


# --------------------------------------------------------------------------- etcd


def etcd_healthy(client_port: int, timeout_s: float = 1.0) -> bool:
    data = http_json(lab_url(client_port, "/health"), timeout_s)
    return bool(data) and str(data.get("health")) == "true"


def etcd_is_leader(client_port: int, timeout_s: float = 1.0) -> bool:
    """True when this member is the raft leader (from its /metrics)."""
    from prontuario_cli.connect.http import get_text

    text = _or_default("", lambda: get_text(lab_url(client_port, "/metrics"), _deadline(timeout_s)))
    return "\netcd_server_is_leader 1" in text


# --------------------------------------------------------------------------- PostgreSQL


def pg_query(
    port: int,
    sql: str,
    params: Sequence[Any] = (),
    *,
    dbname: str = "postgres",
    user: str = "postgres",
    read_only: bool = True,
    timeout_s: float = 2.0,
) -> tuple | None:
    """First row of ``sql`` on 127.0.0.1:``port`` as a tuple; () when it returned no row;
    None when it could not run. ``read_only=False`` for statements that change something
    (e.g. CREATE DATABASE; each statement runs in autocommit)."""
    from prontuario_cli.connect.postgres import PgTarget, session

    def call() -> tuple:
        with session(PgTarget(HOST, port, user=user, dbname=dbname), _deadline(timeout_s), read_only=read_only) as pg:
            rows = pg.execute(sql, params)
        return tuple(rows[0].values()) if rows else ()

    return _or_default(None, call)


def pg_rows(port: int, sql: str, *, dbname: str = "postgres", timeout_s: float = 2.0) -> list[dict[str, Any]] | None:
    """Every row of ``sql`` on 127.0.0.1:``port`` as dicts; None when it could not run."""
    from prontuario_cli.connect.postgres import PgTarget, session

    def call() -> list[dict[str, Any]]:
        with session(PgTarget(HOST, port, dbname=dbname), _deadline(timeout_s), read_only=True) as pg:
            return pg.execute(sql)

    return _or_default(None, call)


def pg_in_recovery(port: int, timeout_s: float = 2.0) -> bool | None:
    row = pg_query(port, "SELECT pg_is_in_recovery()", timeout_s=timeout_s)
    return bool(row[0]) if row else None


def standin_subscription(port: int, database: str, name: str, timeout_s: float = 2.0) -> str | None:
    """The stand-in's pglogical subscription status (initializing, replicating, down,
    disabled); None when there is none or the stand-in does not answer."""
    row = pg_query(port, "SELECT status FROM pglogical.show_subscription_status(%s)", (name,), dbname=database, timeout_s=timeout_s)
    return str(row[0]) if row else None


def standin_replicating(port: int, database: str, name: str, timeout_s: float = 2.0) -> bool:
    return standin_subscription(port, database, name, timeout_s) == "replicating"


# --------------------------------------------------------------------------- Redis and Sentinel


def _redis(port: int, calls: Sequence[Sequence[str]], timeout_s: float, kind: str = "Redis") -> list | None:
    """The raw replies of ``calls`` on one connection; None when the server did not answer."""
    from prontuario_cli.connect.redis import RedisTarget, commands

    return _or_default(None, lambda: commands(RedisTarget(HOST, port, kind=kind), calls, _deadline(timeout_s)))


def redis_role(port: int, timeout_s: float = 1.0) -> str | None:
    """primary, replica, "replica (link down)"; None when Redis does not answer."""
    from prontuario_cli.connect.redis import info_fields

    replies = _redis(port, [("INFO", "replication")], timeout_s)
    info = info_fields(replies[0]) if replies else {}
    role = info.get("role")
    if role == "slave":
        return "replica" if info.get("master_link_status") == "up" else "replica (link down)"
    return "primary" if role == "master" else role


def redis_replication(port: int, timeout_s: float = 1.0) -> dict[str, str] | None:
    """``INFO replication`` as a dict (role, master_host, master_link_status...); None when Redis does not answer."""
    from prontuario_cli.connect.redis import info_fields

    replies = _redis(port, [("INFO", "replication")], timeout_s)
    return (info_fields(replies[0]) or None) if replies else None


def sentinel_master(port: int, name: str, timeout_s: float = 1.0) -> dict[str, str] | None:
    """SENTINEL MASTER ``name`` as a dict (ip, port, flags, num-slaves, num-other-sentinels...);
    None when the Sentinel does not answer or does not monitor ``name``."""
    from prontuario_cli.connect.redis import reply_pairs

    replies = _redis(port, [("SENTINEL", "MASTER", name)], timeout_s, kind="Sentinel")
    return (reply_pairs(replies[0]) or None) if replies else None


def describe_sentinel(info: dict[str, str] | None) -> str:
    """One line for a time-out message: what a Sentinel said last about its master."""
    if not info:
        return "no answer"
    return (
        f"master {info.get('ip')}:{info.get('port')}, flags {info.get('flags')}, "
        f"{info.get('num-other-sentinels')} other sentinels, {info.get('num-slaves')} replicas"
    )


def sentinel_ready(port: int, name: str, sentinels: int = 3, replicas: int = 1, timeout_s: float = 1.0) -> bool:
    """The Sentinel knows the other ``sentinels - 1``, at least ``replicas`` replicas, and CKQUORUM is OK."""
    from prontuario_cli.connect import as_int
    from prontuario_cli.connect.redis import reply_pairs

    replies = _redis(port, [("SENTINEL", "MASTER", name), ("SENTINEL", "CKQUORUM", name)], timeout_s, kind="Sentinel")
    if not replies:
        return False
    info, quorum = reply_pairs(replies[0]), replies[1]
    return (
        (as_int(info.get("num-other-sentinels")) or 0) >= sentinels - 1
        and (as_int(info.get("num-slaves")) or 0) >= replicas
        and isinstance(quorum, str)
        and quorum.startswith("OK")
    )


# --------------------------------------------------------------------------- HAProxy runtime API


def haproxy_servers(sock: Path, timeout_s: float = 1.0) -> tuple[HAProxyServer, ...]:
    """Every server of every proxy (``show stat``); () when the runtime API does not answer."""
    from prontuario_cli.connect.haproxy import show_stat

    return _or_default((), lambda: show_stat(str(sock), _deadline(timeout_s)))


def servers_up(servers: Sequence[HAProxyServer], proxy: str = "write") -> list[str]:
    """The names of ``proxy``'s servers taking traffic."""
    return [s.server for s in servers if s.proxy == proxy and s.up]


def write_servers_up(sock: Path, proxy: str = "write") -> list[str]:
    return servers_up(haproxy_servers(sock), proxy)


# --------------------------------------------------------------------------- Patroni


def patroni_url(spec, node: str, path: str) -> str:
    return lab_url(spec.node_ports(node).patroni, path)


def patch_pause(spec, node: str, pause: bool, timeout_s: float = 5.0) -> str | None:
    """PATCH Patroni's /config ``{"pause": ...}`` on ``node``; None when it answered 200, else what went wrong."""
    return patch_config(spec, node, {"pause": pause}, timeout_s)


def patch_config(spec, node: str, change: dict, timeout_s: float = 5.0) -> str | None:
    """PATCH Patroni's dynamic configuration on ``node``; None when it answered 200, else what went wrong."""
    from prontuario_cli.connect.http import request

    url = patroni_url(spec, node, "/config")
    try:
        answer = request("PATCH", url, time.monotonic() + timeout_s, json_body=change, accept_status=None)
    except ProntuarioError as exc:
        return exc.message
    return None if answer.status == 200 else f"HTTP {answer.status}: {answer.text[:200]}"
