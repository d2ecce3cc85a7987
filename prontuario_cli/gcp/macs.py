"""The Macs as the cloud fallback sees them, and fencing.

:func:`mac_health` asks every Mac's Patroni REST API and PostgreSQL at once, bounded
by ``health_checks.timeout_s``. A Mac is *reachable* when either answers; *down* when
both refuse or cannot be reached; *no answer* when they time out (a powered-off
machine on a real network usually looks like that; a frozen one too, which is why
promote also fences the Macs in HAProxy).

HAProxy's routing is :mod:`prontuario_cli.cluster.haproxy`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from prontuario_cli.errors import ProntuarioError
from prontuario_cli.inventory import Inventory

DOWN, NO_ANSWER, PRIMARY, REPLICA, UP = "down", "no answer", "primary", "replica", "up"


@dataclass(frozen=True)
class MacHealth:
    node: str
    state: str  # down | no answer | primary | replica | up (answered, role unknown)
    patroni: str  # what Patroni's REST API said (role) or why it did not
    postgres: str  # "primary", "replica", or why it did not answer

    @property
    def reachable(self) -> bool:
        return self.state in (PRIMARY, REPLICA, UP)


def _patroni_probe(node):
    def probe(deadline: float):
        from prontuario_cli.cluster.patroni import rest_json

        body = rest_json(node, "/patroni", deadline)
        return str(body.get("role") or "unknown") if isinstance(body, dict) else "unknown"

    return probe


def _postgres_probe(node, inventory: Inventory, password: str | None):
    def probe(deadline: float):
        from prontuario_cli.connect.postgres import PgTarget, run_queries

        target = PgTarget(node.address, node.ports.postgresql, inventory.cluster.postgres_user, "postgres", password, "prontuario-gcp")
        (rows,) = run_queries(target, ["SELECT pg_is_in_recovery() AS r"], deadline)
        return "replica" if rows[0]["r"] else "primary"

    return probe


def mac_health(inventory: Inventory, timeout_s: float | None = None) -> list[MacHealth]:
    """Every Mac's state, asked concurrently; returns within the timeout (plus a little)."""
    from prontuario_cli.connect import TimedOut
    from prontuario_cli.connect.fanout import run_all
    from prontuario_cli.secrets import secret_or_none

    password = secret_or_none(inventory, "postgres_password")
    probes = {}
    for node in inventory.macs:
        if node.ports.patroni:
            probes[f"patroni:{node.name}"] = _patroni_probe(node)
        if node.ports.postgresql:
            probes[f"postgres:{node.name}"] = _postgres_probe(node, inventory, password)
    from prontuario_cli.connect import warm_up

    warm_up("httpx", "psycopg")

    budget = timeout_s if timeout_s is not None else inventory.health_checks.timeout_s
    outcomes = run_all(probes, time.monotonic() + budget)
    result = []
    for node in inventory.macs:
        words, answered, timed_out, roles = [], False, False, []
        for kind in ("patroni", "postgres"):
            outcome = outcomes.get(f"{kind}:{node.name}")
            if outcome is None:
                words.append("not configured")
                continue
            if outcome.ok:
                answered = True
                roles.append(outcome.value)
                words.append(str(outcome.value))
            elif outcome.timed_out or isinstance(outcome.error, TimedOut):
                timed_out = True
                words.append("no answer in time")
            elif outcome.error is not None and not _is_unreachable(outcome.error):
                answered = True  # it answered, with an error (e.g. login refused): it is up
                words.append(outcome.error.one_line())
            else:
                words.append(outcome.error.one_line() if outcome.error else (outcome.bug or "error"))
        if answered:
            if any(r in ("primary", "master") for r in roles):
                state = PRIMARY
            elif any(r in ("replica", "standby_leader") for r in roles):
                state = REPLICA
            else:
                state = UP
        else:
            state = NO_ANSWER if timed_out else DOWN
        result.append(MacHealth(node.name, state, words[0], words[1] if len(words) > 1 else "not configured"))
    return result


def _is_unreachable(error: ProntuarioError) -> bool:
    from prontuario_cli.errors import UnavailableError

    return isinstance(error, UnavailableError)


# --------------------------------------------------------------------------- fencing


def fence_node(inventory: Inventory, node: str) -> str:
    """Stop Patroni and PostgreSQL on ``node`` (lab: by PID; real nodes: the playbook over SSH)."""
    from prontuario_cli.cluster.nodes import node_access

    return node_access(inventory).act(node, "postgres", "stop")


def start_node(inventory: Inventory, node: str) -> str:
    from prontuario_cli.cluster.nodes import node_access

    return node_access(inventory).act(node, "postgres", "start")
