"""Patroni, as every capability sees it: its REST answers parsed, the cluster view asked of
every Mac at once, and a planned switchover.

Parsers never touch the network (tested with fixtures of real answers); the calls go
through ``connect/http.py``, bounded by a deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

from prontuario_cli.connect import as_int as _int
from prontuario_cli.errors import OperationFailed, UnavailableError
from prontuario_cli.inventory import Inventory

PATRONI_NODE_PATH = "/patroni"
PATRONI_CLUSTER_PATH = "/cluster"
PATRONI_CONFIG_PATH = "/config"


@dataclass(frozen=True)
class PatroniMember:
    """One member as the Patroni cluster view (GET /cluster) lists it."""

    name: str
    role: str  # leader, sync_standby, quorum_standby, replica, standby_leader
    state: str  # running, streaming, stopped, crashed, starting, ...
    host: str | None = None
    port: int | None = None
    timeline: int | None = None
    lag_bytes: int | None = None  # Patroni's own lag estimate (None when "unknown")


@dataclass(frozen=True)
class PatroniCluster:
    """A node's view of the whole cluster (GET /cluster)."""

    members: tuple[PatroniMember, ...]
    paused: bool = False

    @property
    def leader(self) -> str | None:
        leaders = [m.name for m in self.members if m.role in ("leader", "standby_leader")]
        return leaders[0] if len(leaders) == 1 else None

    def member(self, name: str) -> PatroniMember | None:
        return next((m for m in self.members if m.name == name), None)


@dataclass(frozen=True)
class PatroniNode:
    """What one Patroni says about itself (GET /patroni)."""

    name: str | None
    scope: str | None
    state: str  # running, stopped, crashed, starting, unknown, ...
    role: str  # primary / replica (Patroni 4), master on older versions
    timeline: int | None = None
    server_version: int | None = None
    paused: bool = False
    cluster_unlocked: bool = False
    sync_standby: bool = False
    replication_state: str | None = None  # streaming / in archive recovery (replicas)
    patroni_version: str | None = None
    dcs_last_seen: float | None = None  # Unix time Patroni last reached etcd (Patroni ≥ 2.1)
    failsafe_active: bool = False  # running on failsafe: etcd unreachable, members vouch for the primary


def parse_patroni_cluster(data: Mapping[str, Any]) -> PatroniCluster:
    """GET /cluster JSON -> PatroniCluster."""
    members = []
    for raw in data.get("members") or ():
        members.append(
            PatroniMember(
                name=str(raw.get("name", "")),
                role=str(raw.get("role", "")),
                state=str(raw.get("state", "")),
                host=raw.get("host"),
                port=_int(raw.get("port")),
                timeline=_int(raw.get("timeline")),
                lag_bytes=_int(raw.get("lag")),
            )
        )
    return PatroniCluster(members=tuple(members), paused=bool(data.get("pause", False)))


def parse_patroni_node(data: Mapping[str, Any]) -> PatroniNode:
    """GET /patroni JSON -> PatroniNode."""
    patroni = data.get("patroni") or {}
    role = str(data.get("role", "unknown"))
    return PatroniNode(
        name=patroni.get("name"),
        scope=patroni.get("scope"),
        state=str(data.get("state", "unknown")),
        role="primary" if role == "master" else role,
        timeline=_int(data.get("timeline")),
        server_version=_int(data.get("server_version")),
        paused=bool(data.get("pause", False)),
        cluster_unlocked=bool(data.get("cluster_unlocked", False)),
        sync_standby=bool(data.get("sync_standby", False) or data.get("quorum_standby", False)),
        replication_state=data.get("replication_state"),
        patroni_version=patroni.get("version"),
        dcs_last_seen=_float(data.get("dcs_last_seen")),
        failsafe_active=bool(data.get("failsafe_mode_is_active", False)),
    )


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def parse_failsafe_mode(config: Any) -> bool | None:
    """GET /config JSON -> is ``failsafe_mode`` on (None: not a config answer)."""
    if not isinstance(config, Mapping):
        return None
    return bool(config.get("failsafe_mode", False))


# --------------------------------------------------------------------------- calls


def rest_json(node, path: str, deadline: float) -> Any:
    """GET ``path`` of ``node``'s Patroni REST API (503 answers carry JSON too)."""
    from prontuario_cli.connect.http import get_json, url_of

    _, body = get_json(url_of(node.address, node.ports.patroni, path), deadline, accept_status=(503,))
    return body


def rest_status(node, path: str, deadline: float) -> int:
    """The status of a health endpoint (``/primary``, ``/replica``, ``/sync``: 200 or 503)."""
    from prontuario_cli.connect.http import get_status, url_of

    return get_status(url_of(node.address, node.ports.patroni, path), deadline)


def cluster_probe(node):
    """A fan-out probe: ``node``'s view of the cluster (GET /cluster)."""
    return lambda deadline: parse_patroni_cluster(rest_json(node, PATRONI_CLUSTER_PATH, deadline))


def cluster_view(inventory: Inventory, timeout_s: float = 2.0) -> PatroniCluster:
    """Patroni's /cluster, asking every Mac at once (a hung node costs nothing extra);
    a view that names a leader wins over one that does not."""
    from prontuario_cli.connect.fanout import run_all

    probes = {node.name: cluster_probe(node) for node in inventory.macs if node.ports.patroni}
    outcomes = run_all(probes, time.monotonic() + timeout_s)
    views = [o.value for o in outcomes.values() if o.ok]
    if not views:
        errors = "; ".join(o.error.one_line() if o.error else (o.bug or "no answer in time") for o in outcomes.values())
        raise UnavailableError("no Patroni REST API answered: " + errors)
    return next((v for v in views if v.leader), views[0])


def sync_standby(cluster: PatroniCluster) -> str | None:
    """The streaming synchronous standby's name, if there is one."""
    names = [m.name for m in cluster.members if m.role == "sync_standby" and m.state == "streaming"]
    return names[0] if names else None



def api_auth(inventory: Inventory) -> tuple[str, str] | None:
    """Basic auth for Patroni's write endpoints, when ``secrets.patroni_api_password`` is set."""
    from prontuario_cli.secrets import secret_or_none

    password = secret_or_none(inventory, "patroni_api_password")
    return ("patroni", password) if password else None


def switchover(inventory: Inventory, leader: str, candidate: str, timeout_s: float = 30.0) -> str:
    """A planned switchover through Patroni's REST API (POST /switchover)."""
    from prontuario_cli.connect.http import request, url_of

    node = inventory.node(leader)
    url = url_of(node.address, node.ports.patroni, "/switchover")
    answer = request(
        "POST", url, time.monotonic() + timeout_s, json_body={"leader": leader, "candidate": candidate}, auth=api_auth(inventory), accept_status=None
    )
    if answer.status != 200:
        raise OperationFailed(f"Patroni refused the switchover {leader} -> {candidate}: HTTP {answer.status} {answer.text.strip()[:200]}")
    return answer.text.strip()[:200]
