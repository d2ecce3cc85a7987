"""The Macs as the cloud fallback sees them, HAProxy's routing, and fencing.

:func:`mac_health` asks every Mac's Patroni REST API and PostgreSQL at once, bounded
by ``health_checks.timeout_s``. A Mac is *reachable* when either answers; *down* when
both refuse or cannot be reached; *no answer* when they time out (a powered-off
machine on a real network usually looks like that; a frozen one too, which is why
promote also fences the Macs in HAProxy).

HAProxy is driven through its runtime API (``haproxy.socket``, or the lab's socket).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from prontuario_cli.errors import OperationFailed, ProntuarioError
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
        from prontuario_cli.connect.http import get_json

        _, body = get_json(f"http://{_host(node.address)}:{node.ports.patroni}/patroni", deadline, accept_status=(503,))
        return str(body.get("role") or "unknown") if isinstance(body, dict) else "unknown"

    return probe


def _postgres_probe(node, inventory: Inventory, password: str | None):
    def probe(deadline: float):
        from prontuario_cli.connect.postgres import PgTarget, run_queries

        target = PgTarget(node.address, node.ports.postgresql, inventory.cluster.postgres_user, "postgres", password, "prontuario-gcp")
        (rows,) = run_queries(target, ["SELECT pg_is_in_recovery() AS r"], deadline)
        return "replica" if rows[0]["r"] else "primary"

    return probe


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def mac_health(inventory: Inventory, timeout_s: float | None = None) -> list[MacHealth]:
    """Every Mac's state, asked concurrently; returns within the timeout (plus a little)."""
    from prontuario_cli.connect import TimedOut
    from prontuario_cli.connect.fanout import run_all
    from prontuario_cli.drill.cluster import secret_or_none

    password = secret_or_none(inventory, "postgres_password")
    probes = {}
    for node in inventory.macs:
        if node.ports.patroni:
            probes[f"patroni:{node.name}"] = _patroni_probe(node)
        if node.ports.postgresql:
            probes[f"postgres:{node.name}"] = _postgres_probe(node, inventory, password)
    import httpx  # noqa: F401 - imported before the clock starts (imports are not network time)
    import psycopg  # noqa: F401

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
    from prontuario_cli.drill.actions import actions_for

    return actions_for(inventory).act(node, "postgres", "stop")


def start_node(inventory: Inventory, node: str) -> str:
    from prontuario_cli.drill.actions import actions_for

    return actions_for(inventory).act(node, "postgres", "start")


# --------------------------------------------------------------------------- HAProxy


@dataclass(frozen=True)
class Route:
    """One server of HAProxy's write or read backend."""

    proxy: str
    server: str
    status: str
    backup: bool
    check: str

    @property
    def up(self) -> bool:
        return self.status.split(" ", 1)[0] == "UP"


class HAProxy:
    """The runtime API: server states, maintenance on and off, sessions shut down."""

    def __init__(self, inventory: Inventory, timeout_s: float = 5.0):
        from prontuario_cli.replication.probes import haproxy_socket

        self.socket = haproxy_socket(inventory)
        self.write_backend = inventory.haproxy.write_backend
        self.read_backend = inventory.haproxy.read_backend
        self.timeout_s = timeout_s

    @property
    def available(self) -> bool:
        return self.socket is not None

    def command(self, text: str) -> str:
        from prontuario_cli.connect.haproxy import runtime_command

        if self.socket is None:
            raise OperationFailed("no HAProxy runtime API configured (haproxy.socket)")
        answer = runtime_command(self.socket, text, time.monotonic() + self.timeout_s).strip()
        if answer and not answer.lower().startswith(("done", "state changed")):
            raise OperationFailed(f"HAProxy refused '{text}': {answer.splitlines()[0]}")
        return answer

    def routes(self) -> list[Route]:
        from prontuario_cli.connect.haproxy import runtime_command
        from prontuario_cli.replication.facts import parse_haproxy_stat

        if self.socket is None:
            return []
        text = runtime_command(self.socket, "show stat", time.monotonic() + self.timeout_s)
        return [
            Route(s.proxy, s.server, s.status, s.backup, s.check_status)
            for s in parse_haproxy_stat(text)
            if s.proxy in (self.write_backend, self.read_backend)
        ]

    def has(self, backend: str, server: str) -> bool:
        return any(r.proxy == backend and r.server == server for r in self.routes())

    def maintenance(self, backend: str, server: str) -> str:
        """Put a server in maintenance and cut its sessions (no traffic, whatever its check says)."""
        self.command(f"disable server {backend}/{server}")
        self.command(f"shutdown sessions server {backend}/{server}")
        return f"{backend}/{server}: maintenance, sessions shut down"

    def ready(self, backend: str, server: str) -> str:
        """Take a server out of maintenance: its health check decides again."""
        self.command(f"enable server {backend}/{server}")
        return f"{backend}/{server}: enabled (health check decides)"

    def release(self, servers: list[tuple[str, str]], timeout_s: float, *, settle_s: float = 0.0, must_be_down: bool = False) -> dict[str, str]:
        """Take servers out of maintenance without a moment of unchecked traffic.

        ``enable server`` starts a server as UP until its first check fails, so a replica
        (or an unpromoted cloud replica) would briefly take writes. Instead each server goes
        to DRAIN (checked, but no new connections), waits until its check settles (DOWN,
        or DRAIN when healthy), and only then to READY. With ``must_be_down`` (a guarded
        backup), a server whose check passes is put back in maintenance and an error
        raised instead. A state left from before the maintenance is stale, so nothing is
        judged before ``settle_s`` (one check period) has passed. Returns each server's
        settled state.
        """
        for backend, server in servers:
            self.command(f"set server {backend}/{server} state drain")
        started = time.monotonic()
        deadline = started + settle_s + timeout_s
        settled: dict[str, str] = {}
        while True:
            if time.monotonic() - started >= settle_s:
                states = {(r.proxy, r.server): r.status for r in self.routes()}
                settled = {f"{b}/{s}": states.get((b, s), "missing") for b, s in servers}
                if all(v in ("DOWN", "DRAIN", "missing") for v in settled.values()):
                    break
            if time.monotonic() >= deadline:
                raise OperationFailed(f"HAProxy checks did not settle within {timeout_s:g} s: {settled}")
            time.sleep(0.2)
        if must_be_down:
            healthy = [(b, srv) for b, srv in servers if settled[f"{b}/{srv}"] == "DRAIN"]
            for backend, server in healthy:
                self.maintenance(backend, server)
            if healthy:
                names = ", ".join(f"{b}/{srv}" for b, srv in healthy)
                raise OperationFailed(
                    f"HAProxy's check passes for {names} although it must fail (split-brain risk): left in maintenance",
                    hint="its check must answer 200 only once the instance is promoted; fix it, then --resume",
                )
        for backend, server in servers:
            self.command(f"set server {backend}/{server} state ready")
        return settled

    def writer(self) -> list[str]:
        """Servers of the write backend taking writes: UP primaries, else UP backups."""
        routes = [r for r in self.routes() if r.proxy == self.write_backend]
        active = [r.server for r in routes if r.up and not r.backup]
        return active or [r.server for r in routes if r.up and r.backup]

    def wait_state(self, backend: str, server: str, want_up: bool, timeout_s: float) -> float:
        """Wait until ``backend/server`` is (or is not) UP; returns the seconds waited."""
        started = time.monotonic()
        deadline = started + timeout_s
        last = "unknown"
        while True:
            for r in self.routes():
                if r.proxy == backend and r.server == server:
                    last = f"{r.status} ({r.check})"
                    if r.up == want_up:
                        return round(time.monotonic() - started, 3)
            if time.monotonic() >= deadline:
                raise OperationFailed(f"HAProxy {backend}/{server} not {'UP' if want_up else 'out of service'} within {timeout_s:g} s (last: {last})")
            time.sleep(0.2)


def check_period_s(inventory: Inventory) -> float:
    """One full health check, whatever state the server is in (the longest interval + timeout)."""
    hc = inventory.health_checks
    return max(hc.interval_s, hc.downinter_s or 0, hc.fastinter_s or 0) + hc.timeout_s


def check_rise_s(inventory: Inventory) -> float:
    """How long HAProxy may take to mark a healthy server UP (rise checks, plus slack)."""
    hc = inventory.health_checks
    interval = max(hc.interval_s, hc.downinter_s or 0, hc.fastinter_s or 0)
    return (hc.rise + 1) * interval + hc.timeout_s + 5.0
