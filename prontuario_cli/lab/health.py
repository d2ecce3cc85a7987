"""Readiness probes and bounded waits: every wait is a poll with a deadline, never a blind sleep.

Probes return plain values and never raise for "not ready yet"; :func:`wait_for`
turns a deadline into an error naming the component and its log.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, TypeVar

from prontuario_cli.errors import UnavailableError

T = TypeVar("T")


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
    """Poll ``probe`` until it returns something truthy, within ``timeout_s``.

    Raises UnavailableError "COMPONENT: WHAT not reached within N s (log: PATH)".
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            state = f"; last seen: {last_state()}" if last_state else ""
            where = f" (log: {log})" if log else ""
            raise UnavailableError(
                f"{component}: {what} not reached within {timeout_s:g} s{state}{where}",
                hint=f"read it with: prontuario lab logs {component}",
            )
        time.sleep(interval_s)


# --------------------------------------------------------------------------- HTTP


def http_get(url: str, timeout_s: float = 1.0) -> tuple[int, str]:
    """(status, body) of a GET; status 0 when nothing answered."""
    return http_request("GET", url, timeout_s=timeout_s)


def http_request(method: str, url: str, body: dict | None = None, timeout_s: float = 1.0) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return 0, ""


def http_status(url: str, timeout_s: float = 1.0) -> int:
    return http_get(url, timeout_s)[0]


def http_json(url: str, timeout_s: float = 1.0) -> dict | None:
    status, body = http_get(url, timeout_s)
    if status == 0:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def tcp_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- etcd


def etcd_healthy(client_port: int) -> bool:
    data = http_json(f"http://127.0.0.1:{client_port}/health")
    return bool(data) and str(data.get("health")) == "true"


def etcd_is_leader(client_port: int) -> bool:
    """True when this member is the raft leader (from its /metrics)."""
    status, body = http_get(f"http://127.0.0.1:{client_port}/metrics", timeout_s=1.0)
    return status == 200 and "\netcd_server_is_leader 1" in body


# --------------------------------------------------------------------------- PostgreSQL


def pg_query(port: int, sql: str, *, dbname: str = "postgres", user: str = "postgres", timeout_s: float = 2.0, autocommit: bool = True):
    """First row of ``sql`` on 127.0.0.1:``port``, or None when it cannot run."""
    import psycopg

    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, user=user, dbname=dbname, connect_timeout=max(1, int(timeout_s)), autocommit=autocommit
        ) as conn:
            conn.execute(f"SET statement_timeout = {int(timeout_s * 1000)}")
            cur = conn.execute(sql)
            return cur.fetchone() if cur.description else ()
    except psycopg.Error:
        return None


def pg_in_recovery(port: int, timeout_s: float = 2.0) -> bool | None:
    row = pg_query(port, "SELECT pg_is_in_recovery()", timeout_s=timeout_s)
    return None if row is None else bool(row[0])


def standin_streaming(port: int, timeout_s: float = 2.0) -> bool:
    row = pg_query(port, "SELECT status FROM pg_stat_wal_receiver", timeout_s=timeout_s)
    return bool(row) and row[0] == "streaming"


# --------------------------------------------------------------------------- Redis and Sentinel


def redis_call(port: int, *args, timeout_s: float = 1.0):
    """Result of one Redis command, or None when it fails."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True)
    try:
        return client.execute_command(*args)
    except redis.RedisError:
        return None
    finally:
        client.close()


def redis_role(port: int) -> str | None:
    info = redis_call(port, "INFO", "replication")
    if not isinstance(info, dict):
        return None
    role = info.get("role")
    if role == "slave":
        return "replica" if info.get("master_link_status") == "up" else "replica (link down)"
    return "primary" if role == "master" else role


def sentinel_master(port: int, name: str) -> dict | None:
    """SENTINEL MASTER as a dict (redis-py parses it for us)."""
    value = redis_call(port, "SENTINEL", "MASTER", name)
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return dict(zip(value[::2], value[1::2]))
    return None


def sentinel_ready(port: int, name: str, sentinels: int = 3, replicas: int = 1) -> bool:
    info = sentinel_master(port, name)
    if not info:
        return False
    others = int(info.get("num-other-sentinels", 0))
    slaves = int(info.get("num-slaves", 0))
    if others < sentinels - 1 or slaves < replicas:
        return False
    quorum = redis_call(port, "SENTINEL", "CKQUORUM", name)
    return isinstance(quorum, (str, bool)) and (quorum is True or str(quorum).startswith("OK"))


# --------------------------------------------------------------------------- HAProxy runtime API


def haproxy_command(sock: Path, command: str, timeout_s: float = 1.0) -> str | None:
    """One command on HAProxy's runtime API unix socket; None when it does not answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(timeout_s)
            client.connect(str(sock))
            client.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                chunk = client.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError:
        return None
    return b"".join(chunks).decode("utf-8", "replace")


def haproxy_servers(sock: Path) -> dict[tuple[str, str], str]:
    """{(proxy, server): status} from ``show stat`` (status UP, DOWN, MAINT, ...)."""
    text = haproxy_command(sock, "show stat")
    if not text:
        return {}
    lines = text.strip().splitlines()
    if not lines or not lines[0].startswith("#"):
        return {}
    header = lines[0].lstrip("# ").split(",")
    out = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(",")))
        server = row.get("svname", "")
        if server in ("FRONTEND", "BACKEND") or not server:
            continue
        out[(row.get("pxname", ""), server)] = row.get("status", "")
    return out


def write_servers_up(sock: Path, proxy: str = "write") -> list[str]:
    return [server for (px, server), status in haproxy_servers(sock).items() if px == proxy and status.startswith("UP")]
