"""Rows from etcd: is every member healthy, and does Patroni's store keep its quorum?

Each member's ``/health`` (HTTP on its client port) is asked concurrently under the
status deadline. All healthy: OK. A majority healthy: WARNING (one more loss and Patroni
cannot hold a leader). Fewer: CRITICAL when the others are known to be down or
unhealthy, UNKNOWN when some simply did not answer in time.
"""

from __future__ import annotations

from typing import Mapping

from prontuario_cli.connect.fanout import Outcome
from prontuario_cli.inventory import Inventory
from prontuario_cli.report import Perf, Status
from prontuario_cli.status.rows import Row

HEALTH_PATH = "/health"


def etcd_rows(inventory: Inventory, deadline: float) -> list[Row]:
    """The ``etcd`` source: one row for the etcd cluster (none when no node lists an etcd port)."""
    from prontuario_cli.connect.fanout import run_all
    from prontuario_cli.connect.http import url_of

    members = [n for n in inventory.nodes if n.ports.etcd_client]
    if not members:
        return []
    urls = {n.name: url_of(n.address, n.ports.etcd_client, HEALTH_PATH) for n in members}
    outcomes = run_all({name: _health_probe(url) for name, url in urls.items()}, deadline)
    endpoints = ",".join(url.removesuffix(HEALTH_PATH) for url in urls.values())
    return [etcd_row(outcomes, endpoints, inventory.health_checks.timeout_s)]


def _health_probe(url: str):
    def probe(deadline: float) -> bool:
        from prontuario_cli.connect.http import get_json

        _, body = get_json(url, deadline, accept_status=(503,))
        return isinstance(body, dict) and str(body.get("health")).lower() == "true"

    return probe


def etcd_row(outcomes: Mapping[str, Outcome], endpoints: str, timeout_s: float) -> Row:
    """The etcd row from each member's ``/health`` outcome (by node name); pure."""
    from prontuario_cli.connect import Refused, TimedOut

    healthy: list[str] = []
    why: dict[str, str] = {}
    silent = 0
    for name, outcome in outcomes.items():
        if outcome.ok and outcome.value:
            healthy.append(name)
        elif outcome.ok:
            why[name] = "unhealthy (no leader or no quorum)"
        elif outcome.timed_out or isinstance(outcome.error, TimedOut):
            why[name] = f"no answer within {timeout_s:g} s"
            silent += 1
        elif isinstance(outcome.error, Refused):
            why[name] = "down (connection refused)"
        else:
            why[name] = outcome.error.message if outcome.error else f"unexpected answer ({outcome.bug})"
    total = len(outcomes)
    majority = total // 2 + 1
    if len(healthy) == total:
        status = Status.OK
    elif len(healthy) >= majority:
        status = Status.WARNING
    elif total - len(healthy) - silent >= majority or not silent:
        status = Status.CRITICAL
    else:
        status = Status.UNKNOWN
    state = f"{len(healthy)}/{total} members healthy" + ("" if status == Status.OK else f", quorum needs {majority}")
    problem = "; ".join(f"{name}: {text}" for name, text in why.items())
    if status == Status.CRITICAL:
        problem = "no quorum: Patroni cannot hold or elect a leader; " + problem
    action = "" if status == Status.OK else f"etcdctl --endpoints={endpoints} endpoint health"
    details = {"healthy": healthy, "unhealthy": why, "total": total}
    perf = (Perf("etcd_healthy", len(healthy), "", min=0, max=total),)
    return Row("etcd", "etcd", status, state, problem, action, details, perf=perf)
