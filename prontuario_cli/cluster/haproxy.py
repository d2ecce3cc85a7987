"""HAProxy as every capability drives it: where its runtime API and frontends are, server
states, maintenance on and off without a moment of unchecked traffic, and the write path.

The wire (runtime API socket, ``show stat`` CSV) is ``connect/haproxy.py``; this module
adds what the inventory says and what a safe change looks like.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from prontuario_cli.connect.haproxy import HAProxyServer
from prontuario_cli.errors import OperationFailed
from prontuario_cli.inventory import Inventory, Node


def haproxy_socket(inventory: Inventory) -> str | None:
    """The runtime API address: ``haproxy.socket``, else ``<lab.dir>/haproxy.sock`` in a lab."""
    if inventory.haproxy.socket:
        socket = inventory.haproxy.socket
        return os.path.expanduser(socket) if socket.startswith("~") else socket
    if inventory.lab is not None:
        return str(Path(inventory.lab.dir) / "haproxy.sock")
    return None


def haproxy_node(inventory: Inventory) -> Node:
    """The node whose HAProxy takes the platform's writes (``ports.haproxy_write``)."""
    for node in inventory.nodes:
        if node.ports.haproxy_write:
            return node
    raise OperationFailed("no node in the inventory has ports.haproxy_write: HAProxy's write frontend is needed here")


def frontend_target(inventory: Inventory, *, frontend: str = "write", dbname: str | None = None, user: str | None = None,
                    password: str | None = None, application_name: str = "prontuario"):
    """A PgTarget through HAProxy's write (or read) frontend: where the applications connect."""
    from prontuario_cli.connect.postgres import PgTarget
    from prontuario_cli.secrets import secret_or_none

    node = haproxy_node(inventory)
    port = node.ports.haproxy_write if frontend == "write" else node.ports.haproxy_read
    return PgTarget(
        host=node.address,
        port=port,
        user=user or inventory.cluster.postgres_user,
        dbname=dbname or inventory.cluster.database,
        password=password if user else secret_or_none(inventory, "postgres_password"),
        application_name=application_name,
    )


def pg_server(node: Node) -> str:
    """How a write acknowledged by ``node`` names its server (``inet_server_addr:port``)."""
    return f"{node.address}:{node.ports.postgresql}"


def mac_servers(inventory: Inventory) -> set[str]:
    """The server names of every Mac (see :func:`pg_server`)."""
    return {pg_server(n) for n in inventory.macs}


def check_period_s(inventory: Inventory) -> float:
    """One full health check, whatever state the server is in (the longest interval + timeout)."""
    hc = inventory.health_checks
    return max(hc.interval_s, hc.downinter_s or 0, hc.fastinter_s or 0) + hc.timeout_s


def check_rise_s(inventory: Inventory) -> float:
    """How long HAProxy may take to mark a healthy server UP (rise checks, plus slack)."""
    hc = inventory.health_checks
    interval = max(hc.interval_s, hc.downinter_s or 0, hc.fastinter_s or 0)
    return (hc.rise + 1) * interval + hc.timeout_s + 5.0


class HAProxy:
    """The runtime API: server states, maintenance on and off, sessions shut down."""

    def __init__(self, inventory: Inventory, timeout_s: float | None = None):
        self.socket = haproxy_socket(inventory)
        self.write_backend = inventory.haproxy.write_backend
        self.read_backend = inventory.haproxy.read_backend
        self.timeout_s = timeout_s if timeout_s is not None else max(2.0, inventory.health_checks.timeout_s * 2)

    @property
    def available(self) -> bool:
        return self.socket is not None

    def _require(self) -> str:
        if self.socket is None:
            raise OperationFailed("no HAProxy runtime API configured (haproxy.socket)")
        return self.socket

    def command(self, text: str) -> str:
        """A runtime API command that changes something; refuses an answer that is not an OK."""
        from prontuario_cli.connect.haproxy import runtime_command

        answer = runtime_command(self._require(), text, time.monotonic() + self.timeout_s).strip()
        if answer and not answer.lower().startswith(("done", "state changed")):
            raise OperationFailed(f"HAProxy refused '{text}': {answer.splitlines()[0]}")
        return answer

    def servers(self) -> tuple[HAProxyServer, ...]:
        """Every server of every proxy (``show stat``)."""
        from prontuario_cli.connect.haproxy import show_stat

        return show_stat(self._require(), time.monotonic() + self.timeout_s)

    def routes(self) -> list[HAProxyServer]:
        """The servers of the write and read backends (none without a runtime API)."""
        if self.socket is None:
            return []
        return [s for s in self.servers() if s.proxy in (self.write_backend, self.read_backend)]

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
        from prontuario_cli.poll import wait_for

        for backend, server in servers:
            self.command(f"set server {backend}/{server} state drain")
        started = time.monotonic()
        settled: dict[str, str] = {}

        def checks_settled() -> bool:
            nonlocal settled
            if time.monotonic() - started < settle_s:
                return False
            states = {(r.proxy, r.server): r.status for r in self.routes()}
            settled = {f"{b}/{s}": states.get((b, s), "missing") for b, s in servers}
            return all(v in ("DOWN", "DRAIN", "missing") for v in settled.values())

        wait_for(
            "HAProxy checks settle", checks_settled, settle_s + timeout_s,
            on_timeout=lambda last: OperationFailed(f"HAProxy checks did not settle within {timeout_s:g} s: {settled}"),
        )
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
        from prontuario_cli.poll import wait_for

        last = "unknown"

        def reached() -> bool:
            nonlocal last
            for r in self.routes():
                if r.proxy == backend and r.server == server:
                    last = f"{r.status} ({r.check_status})"
                    return r.up == want_up
            return False

        _, waited = wait_for(
            f"HAProxy {backend}/{server}", reached, timeout_s,
            on_timeout=lambda _: OperationFailed(f"HAProxy {backend}/{server} not {'UP' if want_up else 'out of service'} within {timeout_s:g} s (last: {last})"),
        )
        return waited
