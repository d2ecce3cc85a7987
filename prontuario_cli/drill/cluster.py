"""Small, bounded questions a drill asks the cluster, and the one way it waits for an answer."""

from __future__ import annotations

import time
from typing import Any, Callable

from prontuario_cli.errors import OperationFailed, ProntuarioError, UnavailableError
from prontuario_cli.inventory import Inventory, Node


def wait_for(what: str, condition: Callable[[], Any], timeout_s: float, poll_s: float = 0.2) -> tuple[Any, float]:
    """Poll ``condition`` until it returns something truthy, within ``timeout_s``.

    Returns (the value, seconds waited). Errors raised by the condition count as "not
    yet"; the last one is named if time runs out.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    last_error = ""
    while True:
        try:
            value = condition()
            if value:
                return value, round(time.monotonic() - started, 3)
        except ProntuarioError as exc:
            last_error = exc.one_line()
        if time.monotonic() >= deadline:
            raise OperationFailed(f"{what}: not within {timeout_s:g} s" + (f" (last: {last_error})" if last_error else ""))
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))


def rest_get(host: str, port: int, path: str, deadline: float) -> tuple[int, bytes]:
    """A plain, cheap HTTP GET of a REST endpoint (drills poll several times a second; no TLS)."""
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=max(0.05, deadline - time.monotonic()))
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise UnavailableError(f"http://{host}:{port}{path}: {exc or type(exc).__name__}") from None
    finally:
        conn.close()


def rest_json(host: str, port: int, path: str, deadline: float):
    import json

    status, body = rest_get(host, port, path, deadline)
    try:
        return json.loads(body)
    except ValueError:
        raise UnavailableError(f"http://{host}:{port}{path}: HTTP {status}, not JSON") from None


def secret_or_none(inventory: Inventory, name: str) -> str | None:
    from prontuario_cli.secrets import read_secret

    ref = getattr(inventory.secrets, name)
    return read_secret(ref, name) if ref is not None else None


def haproxy_node(inventory: Inventory) -> Node:
    for node in inventory.nodes:
        if node.ports.haproxy_write:
            return node
    raise OperationFailed("no node in the inventory has ports.haproxy_write: the drill needs HAProxy's write frontend")


def pg_target(inventory: Inventory, *, frontend: str = "write", dbname: str | None = None):
    """A PgTarget through HAProxy's write (or read) frontend."""
    from prontuario_cli.connect.postgres import PgTarget

    node = haproxy_node(inventory)
    port = node.ports.haproxy_write if frontend == "write" else node.ports.haproxy_read
    return PgTarget(
        host=node.address,
        port=port,
        user=inventory.cluster.postgres_user,
        dbname=dbname or inventory.cluster.database,
        password=secret_or_none(inventory, "postgres_password"),
        application_name="prontuario-drill",
    )


def pg_server(node: Node) -> str:
    """How a write acknowledged by ``node`` names its server (``inet_server_addr:port``)."""
    return f"{node.address}:{node.ports.postgresql}"


def cluster_view(inventory: Inventory, timeout_s: float = 2.0):
    """Patroni's /cluster, asking every Mac at once (a hung node costs nothing extra);
    a view that names a leader wins over one that does not."""
    from prontuario_cli.connect.fanout import run_all
    from prontuario_cli.replication.facts import parse_patroni_cluster

    probes = {
        node.name: (lambda deadline, n=node: parse_patroni_cluster(rest_json(n.address, n.ports.patroni, "/cluster", deadline)))
        for node in inventory.macs
        if node.ports.patroni
    }
    outcomes = run_all(probes, time.monotonic() + timeout_s)
    views = [o.value for o in outcomes.values() if o.ok]
    if not views:
        errors = "; ".join(o.error.one_line() if o.error else (o.bug or "no answer in time") for o in outcomes.values())
        raise UnavailableError("no Patroni REST API answered: " + errors)
    return next((v for v in views if v.leader), views[0])


def sync_standby(cluster) -> str | None:
    names = [m.name for m in cluster.members if m.role == "sync_standby" and m.state == "streaming"]
    return names[0] if names else None


def switchover(inventory: Inventory, leader: str, candidate: str, timeout_s: float = 30.0) -> str:
    """A planned switchover through Patroni's REST API (POST /switchover)."""
    import httpx

    node = inventory.node(leader)
    url = f"http://{node.address}:{node.ports.patroni}/switchover"
    auth = None
    password = secret_or_none(inventory, "patroni_api_password")
    if password:
        auth = ("patroni", password)
    try:
        with httpx.Client(timeout=timeout_s, trust_env=False) as client:
            response = client.post(url, json={"leader": leader, "candidate": candidate}, auth=auth)
    except httpx.HTTPError as exc:
        raise UnavailableError(f"{url}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise OperationFailed(f"Patroni refused the switchover {leader} -> {candidate}: HTTP {response.status_code} {response.text.strip()[:200]}")
    return response.text.strip()[:200]


def paused(inventory: Inventory) -> bool:
    return bool(cluster_view(inventory).paused)
