"""The daily health-check validation drill (brief: 5 min, 0 s downtime).

It proves each health check really works, without harming a node:

- Patroni's REST endpoints answer their contracts (leader: /primary 200, /replica 503;
  sync standby: /primary 503, /replica 200, /sync 200; /health 200 on both);
- HAProxy marks a server DOWN within its detection budget and UP again within its
  recovery budget: the replica's read check is pointed at a closed port through the
  runtime API (``set server read/NODE check-port``), then restored;
- the Sentinels agree on the Redis master and have quorum;
- writes (and reads) flow throughout: not one write may fail.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Callable

from prontuario_cli.cluster import haproxy as ha
from prontuario_cli.cluster import patroni
from prontuario_cli.drill.engine import Activity, StepFailed
from prontuario_cli.drill.journal import TargetCheck
from prontuario_cli.drill.probes import pg_read_probe, pg_write_probe, prepare_table
from prontuario_cli.inventory import Inventory
from prontuario_cli.poll import wait_for

CONTRACTS = {
    "leader": {"/primary": 200, "/replica": 503, "/health": 200},
    "sync_standby": {"/primary": 503, "/replica": 200, "/sync": 200, "/health": 200},
}


class HealthDrill:
    drill = "health"
    mode = "checks"

    def __init__(self, inventory: Inventory, run_id: str, say: Callable[[str], None], progress: Callable[[dict], None] | None = None):
        self.inv = inventory
        self.run_id = run_id
        self.say = say
        self.progress = progress
        self.hc = inventory.health_checks
        self.leader: str | None = None
        self.replica: str | None = None
        self.writes = None
        self.reads = None
        self.check_port_changed = False
        self.m: dict[str, Any] = {}

    # budgets from the inventory's HAProxy checks (+ one timeout and a second of slack)
    @property
    def down_budget_s(self) -> float:
        step = self.hc.fastinter_s or self.hc.interval_s
        return self.hc.interval_s + (self.hc.fall - 1) * step + self.hc.timeout_s + 1.0

    @property
    def up_budget_s(self) -> float:
        first = self.hc.downinter_s or self.hc.interval_s
        step = self.hc.fastinter_s or self.hc.interval_s
        return first + (self.hc.rise - 1) * step + self.hc.timeout_s + 1.0

    def plan(self) -> list[str]:
        return [
            "check: a Patroni leader with a streaming sync standby; Sentinel quorum",
            "start a write probe (every 20 ms) and a read probe through HAProxy; they run throughout",
            "check Patroni's REST contracts on the leader and on the sync standby",
            f"point HAProxy's read check of the replica at a closed port; expect DOWN within {self.down_budget_s:g} s",
            f"restore the check port; expect UP within {self.up_budget_s:g} s",
            "check the Sentinels agree and have quorum; stop the probes: no write may have failed",
            "rollback (always): restore the check port if it was changed",
        ]

    def steady_state(self) -> list[Activity]:
        return [Activity("a Patroni leader with a streaming sync standby", self._roles)]

    def _roles(self) -> str:
        view = patroni.cluster_view(self.inv)
        if not view.leader or not patroni.sync_standby(view):
            raise StepFailed(f"need a leader and a streaming sync standby; members: {[(m.name, m.role, m.state) for m in view.members]}")
        self.leader, self.replica = view.leader, patroni.sync_standby(view)
        return f"leader {self.leader}, sync standby {self.replica}"

    def method(self) -> list[Activity]:
        return [
            Activity("start the write and read probes", self._start),
            Activity("Patroni REST contracts on the leader", lambda: self._contracts(self.leader, "leader")),
            Activity("Patroni REST contracts on the sync standby", lambda: self._contracts(self.replica, "sync_standby")),
            Activity("HAProxy marks the replica's read server DOWN when its check fails", self._fail_check, target_s=round(self.down_budget_s, 1), label="DOWN"),
            Activity("HAProxy marks it UP again when the check passes", self._restore_check, target_s=round(self.up_budget_s, 1), label="UP"),
            Activity("Sentinels agree on the master and have quorum", self._sentinels),
            Activity("stop the probes: writes and reads flowed throughout", self._stop_probes),
        ]

    def _start(self) -> str:
        target = ha.frontend_target(self.inv, application_name="prontuario-drill")
        prepare_table(target)
        self.writes = pg_write_probe(target, self.run_id, max_duration_s=300).start()
        self.reads = pg_read_probe(ha.frontend_target(self.inv, frontend="read", application_name="prontuario-drill"), max_duration_s=300).start()
        wait_for("writes acknowledged", lambda: self.writes.log.counts()["acked"] >= 10, 10)
        return "probes running"

    def _contracts(self, name: str, role: str) -> dict[str, int]:
        node = self.inv.node(name)
        seen = {}
        for path, want in CONTRACTS[role].items():
            seen[path] = patroni.rest_status(node, path, time.monotonic() + self.hc.timeout_s)
        wrong = {p: s for p, s in seen.items() if s != CONTRACTS[role][p]}
        if wrong:
            raise StepFailed(f"{name} ({role}) answered {wrong}, expected {{{', '.join(f'{p}: {CONTRACTS[role][p]}' for p in wrong)}}}")
        return seen

    def _haproxy(self):
        from prontuario_cli.cluster.haproxy import HAProxy

        haproxy = HAProxy(self.inv, timeout_s=self.hc.timeout_s)
        if not haproxy.available:
            raise StepFailed("the inventory names no HAProxy runtime API socket (haproxy.socket)")
        return haproxy

    def _runtime(self, command: str) -> str:
        return self._haproxy().command(command)

    def _server_status(self, backend: str, server: str) -> str:
        for s in self._haproxy().servers():
            if s.proxy == backend and s.server == server:
                return s.status
        raise StepFailed(f"HAProxy has no server {backend}/{server}")

    def _status_is(self, backend: str, status: str) -> bool:
        """The replica's server has ``status`` in ``backend`` (and the live view gets the write counts)."""
        from prontuario_cli.drill.failover import tell_counters

        tell_counters(self.progress, self.writes)
        return self._server_status(backend, self.replica) == status

    def _fail_check(self) -> str:
        backend = self.inv.haproxy.read_backend
        if not self._server_status(backend, self.replica).startswith("UP"):
            raise StepFailed(f"{backend}/{self.replica} is not UP before the test")
        closed = _closed_port()
        self._runtime(f"set server {backend}/{self.replica} check-port {closed}")
        self.check_port_changed = True
        started = time.monotonic()
        _, waited = wait_for(f"{backend}/{self.replica} DOWN", lambda: self._status_is(backend, "DOWN"), self.down_budget_s + 5, interval_s=0.1)
        self.m["haproxy_down_s"] = round(time.monotonic() - started, 3)
        return f"DOWN after {self.m['haproxy_down_s']:.2f} s (check port {closed})"

    def _restore_check(self) -> str:
        backend = self.inv.haproxy.read_backend
        self._runtime(f"set server {backend}/{self.replica} check-port {self.inv.node(self.replica).ports.patroni}")
        self.check_port_changed = False
        started = time.monotonic()
        wait_for(f"{backend}/{self.replica} UP", lambda: self._status_is(backend, "UP"), self.up_budget_s + 5, interval_s=0.1)
        self.m["haproxy_up_s"] = round(time.monotonic() - started, 3)
        return f"UP after {self.m['haproxy_up_s']:.2f} s"

    def _sentinels(self) -> str:
        from prontuario_cli.connect.redis import RedisTarget, commands

        name = self.inv.cluster.redis_master
        masters, problems = set(), []
        deadline = time.monotonic() + self.hc.timeout_s
        for node in self.inv.nodes:
            if not node.ports.sentinel:
                continue
            target = RedisTarget(node.address, node.ports.sentinel, kind="Sentinel")
            addr, quorum = commands(target, [("SENTINEL", "get-master-addr-by-name", name), ("SENTINEL", "CKQUORUM", name)], deadline)
            masters.add(":".join(_text(x) for x in addr))
            if not _text(quorum).startswith("OK"):
                problems.append(f"{node.name}: {_text(quorum)}")
        if problems or len(masters) != 1:
            raise StepFailed(f"Sentinels: masters {sorted(masters)}; {'; '.join(problems) or 'quorum ok'}")
        return f"master {masters.pop()}, quorum OK"

    def _stop_probes(self) -> str:
        wlog, rlog = self.writes.stop(), self.reads.stop()
        self.m.update(
            writes_acked=wlog.counts()["acked"],
            writes_not_acked=wlog.counts()["failed"] + wlog.counts()["unknown"],
            reads_ok=rlog.counts()["acked"],
            reads_failed=rlog.counts()["failed"],
            write_gap_s=round(wlog.longest_gap(0, wlog.rel(time.monotonic())), 3),
        )
        return f"{self.m['writes_acked']} writes, {self.m['writes_not_acked']} not acknowledged; {self.m['reads_failed']} reads failed"

    def steady_state_after(self) -> list[Activity]:
        return [Activity("roles unchanged: the same leader and sync standby", self._same_roles)]

    def _same_roles(self) -> str:
        view = patroni.cluster_view(self.inv)
        if (view.leader, patroni.sync_standby(view)) != (self.leader, self.replica):
            raise StepFailed(f"roles changed: leader {view.leader}, sync standby {patroni.sync_standby(view)}")
        return "unchanged"

    def rollback(self) -> list[Activity]:
        return [Activity("restore the replica's read check port; stop the probes", self._rollback)]

    def _rollback(self) -> str:
        done = []
        if self.check_port_changed and self.replica:
            self._runtime(f"set server {self.inv.haproxy.read_backend}/{self.replica} check-port {self.inv.node(self.replica).ports.patroni}")
            self.check_port_changed = False
            done.append("check port restored")
        for probe in (self.writes, self.reads):
            if probe is not None and probe.loop._thread.is_alive():
                probe.stop()
                done.append(f"{probe.log.name} probe stopped")
        return ", ".join(done) or "nothing to undo"

    def measurements(self) -> dict[str, Any]:
        return {"leader": self.leader, "sync_standby": self.replica, "down_budget_s": self.down_budget_s, "up_budget_s": self.up_budget_s, **self.m}

    def targets(self) -> list[TargetCheck]:
        down, up = self.m.get("haproxy_down_s"), self.m.get("haproxy_up_s")
        lost = self.m.get("writes_not_acked")
        reads = self.m.get("reads_failed")
        return [
            TargetCheck("HAProxy marks a failing server DOWN", down, round(self.down_budget_s, 3), "s", "<=", down is not None and down <= self.down_budget_s),
            TargetCheck("HAProxy marks a recovered server UP", up, round(self.up_budget_s, 3), "s", "<=", up is not None and up <= self.up_budget_s),
            TargetCheck("writes not acknowledged (0 s downtime)", lost, 0, "writes", "<=", lost == 0),
            TargetCheck("reads failed (0 s downtime)", reads, 0, "reads", "<=", reads == 0),
        ]


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
