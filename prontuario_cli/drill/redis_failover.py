"""The Redis failover drill: fail the Sentinel-managed master and measure what a client sees.

A write probe asks the Sentinels for the master (as a Sentinel-aware client does) and
writes every 20 ms; RTO is the fault → the first write acknowledged by the new master,
RPO the acknowledged writes the new master lacks. The rollback brings the old master
back and waits for the steady state, whichever node Sentinel names master: the Sentinels
agree, and the other node replicates from that master with its link up (the old master
may lead again when the drill was interrupted before Sentinel failed over).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from prontuario_cli.cluster.nodes import node_access
from prontuario_cli.drill.engine import Activity, StepFailed
from prontuario_cli.drill.failover import FailoverOptions, _tally_line, tell_counters
from prontuario_cli.drill.journal import TargetCheck
from prontuario_cli.drill.probes import redis_present, redis_write_probe, tally
from prontuario_cli.errors import UsageError
from prontuario_cli.inventory import Inventory
from prontuario_cli.poll import wait_for
from prontuario_cli.secrets import secret_or_none


class RedisFailover:
    drill = "failover"

    def __init__(self, inventory: Inventory, options: FailoverOptions, run_id: str, say: Callable[[str], None], progress: Callable[[dict], None] | None = None):
        if options.mode not in ("kill", "stop", "hang"):
            raise UsageError(f"--service redis takes --mode kill, stop or hang (not {options.mode})", hint="a planned Redis switch is SENTINEL FAILOVER, not a drill")
        self.inv = inventory
        self.opt = options
        self.mode = f"redis-{options.mode}"
        self.run_id = run_id
        self.say = say
        self.progress = progress
        self.password = secret_or_none(inventory, "redis_password")
        self.sentinels = [(n.address, n.ports.sentinel) for n in inventory.nodes if n.ports.sentinel]
        self.old: str | None = None
        self.old_address: str | None = None
        self.new_address: str | None = None
        self.t_fault: float | None = None
        self.t_restart: float | None = None
        self.writes = None
        self.m: dict[str, Any] = {}
        self.faulted = False

    def plan(self) -> list[str]:
        return [
            "check: every Sentinel agrees on the master and has quorum (SENTINEL CKQUORUM); the master has a connected replica",
            "start a write probe (every 20 ms) that finds the master through the Sentinels",
            f"fault: {self.opt.mode} the Redis master",
            f"wait (≤ {self.opt.recovery_timeout_s:g} s) for the first write on the new master; count lost writes",
            "rollback: bring the old master back; wait until the Sentinels agree on a master and the other node replicates from it",
        ]

    # ------------------------------------------------------------------ helpers

    def _node_of(self, address: str) -> str:
        host, port = address.rsplit(":", 1)
        for node in self.inv.macs:
            if node.address == host and node.ports.redis == int(port):
                return node.name
        raise StepFailed(f"the Redis master {address} is not a node of the inventory")

    def _sentinel(self, *args):
        from prontuario_cli.connect.redis import RedisTarget, commands

        replies = []
        deadline = time.monotonic() + self.inv.health_checks.timeout_s
        for host, port in self.sentinels:
            replies.append(commands(RedisTarget(host, port), [args], deadline)[0])
        return replies

    def _master_address(self) -> str:
        replies = self._sentinel("SENTINEL", "get-master-addr-by-name", self.inv.cluster.redis_master)
        addresses = {f"{_text(r[0])}:{_text(r[1])}" for r in replies if r}
        if len(addresses) != 1:
            raise StepFailed(f"the Sentinels disagree on the master: {sorted(addresses)}")
        return addresses.pop()

    def _replication(self, address: str) -> dict[str, str]:
        from prontuario_cli.connect.redis import RedisTarget, commands

        host, port = address.rsplit(":", 1)
        deadline = time.monotonic() + self.inv.health_checks.timeout_s
        text = _text(commands(RedisTarget(host, int(port), password=self.password), [("INFO", "replication")], deadline)[0])
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    # ------------------------------------------------------------------ steady state

    def steady_state(self) -> list[Activity]:
        return [
            Activity("Sentinels agree on the master and have quorum", self._check_sentinels),
            Activity("the master has a connected replica", self._check_replica),
        ]

    def _check_sentinels(self) -> str:
        quorum = self._sentinel("SENTINEL", "CKQUORUM", self.inv.cluster.redis_master)
        bad = [_text(r) for r in quorum if not _text(r).startswith("OK")]
        if bad:
            raise StepFailed(f"Sentinel quorum: {bad[0]}")
        self.old_address = self._master_address()
        self.old = self._node_of(self.old_address)
        return f"master {self.old} ({self.old_address}); {len(quorum)} Sentinels agree"

    def _check_replica(self) -> str:
        info = self._replication(self.old_address)
        if info.get("role") != "master" or int(info.get("connected_slaves", "0")) < 1:
            raise StepFailed(f"{self.old_address} has role {info.get('role')} and {info.get('connected_slaves', 0)} replicas")
        return f"{info.get('connected_slaves')} replica(s) connected"

    # ------------------------------------------------------------------ method

    def method(self) -> list[Activity]:
        return [
            Activity("start the write probe", self._start),
            Activity(f"fault: {self.opt.mode} the Redis master", self._fault),
            Activity(
                "wait for the first write acknowledged by the new master", self._wait,
                target_s=self.inv.targets.primary_lost.rto_s, label="RTO",
                since=lambda: self.writes.log.started_mono + self.t_fault if self.writes is not None and self.t_fault is not None else None,
            ),
            Activity("stop the probe and count the writes on the new master", self._count),
        ]

    def _start(self) -> str:
        self.writes = redis_write_probe(self.sentinels, self.inv.cluster.redis_master, self.run_id, password=self.password,
                                        max_duration_s=self.opt.recovery_timeout_s + 60).start()
        wait_for("baseline writes acknowledged", lambda: self.writes.log.counts()["acked"] >= 10, 10)
        time.sleep(self.opt.baseline_s)  # a steady baseline before the fault, by design
        return f"{self.writes.log.counts()['acked']} writes acknowledged before the fault"

    def _fault(self) -> str:
        self.t_fault = time.monotonic() - self.writes.log.started_mono
        self.faulted = True
        return node_access(self.inv).act(self.old, "redis", self.opt.mode)

    def _wait(self) -> str:
        def recovered():
            tell_counters(self.progress, self.writes)
            return self.writes.log.first_ack_sent_after(self.t_fault, not_server=self.old_address)

        attempt, _ = wait_for(
            "a write acknowledged by the new master",
            recovered,
            self.opt.recovery_timeout_s,
            interval_s=0.05,
        )
        self.new_address = attempt.server
        self.m["rto_s"] = round(attempt.done - self.t_fault, 3)
        time.sleep(self.opt.tail_s)  # keep writing a little after recovery, by design
        return f"first write on {attempt.server} {self.m['rto_s']:.2f} s after the fault"

    def _count(self) -> str:
        log = self.writes.stop()
        seqs = sorted(a.seq for a in log.attempts if a.outcome in ("acked", "unknown"))
        host, port = self.new_address.rsplit(":", 1)
        self.m.update(tally(log, redis_present(host, int(port), self.run_id, seqs, self.password)))
        self.m.update(
            write_gap_s=round(log.longest_gap(self.t_fault, log.rel(time.monotonic())), 3),
            new_master=self._node_of(self.new_address),
        )
        return _tally_line(self.m)

    def steady_state_after(self) -> list[Activity]:
        return [Activity("Sentinels agree on the new master", self._check_new_master)]

    def _check_new_master(self) -> str:
        address = self._master_address()
        if address != self.new_address:
            raise StepFailed(f"Sentinels name {address}, the probe wrote to {self.new_address}")
        return f"master {address}"

    # ------------------------------------------------------------------ rollback

    def rollback(self) -> list[Activity]:
        if not self.faulted:
            return [Activity("nothing to roll back (no fault was injected); stop the probe", self._stop_probe)]
        action = "resume" if self.opt.mode == "hang" else "start"
        return [
            Activity("stop the probe (if still running)", self._stop_probe),
            Activity(f"{action} the old master {self.old}", lambda: self._restart(action)),
            Activity("steady state: the Sentinels agree on a master; the other node replicates from it, link up", self._wait_replica),
        ]

    def _restart(self, action: str) -> str:
        self.t_restart = time.monotonic() - self.writes.log.started_mono
        return node_access(self.inv).act(self.old, "redis", action)

    def _wait_replica(self) -> str:
        others = [n for n in self.inv.macs if n.ports.redis and n.name != self.old]

        def steady():
            master = self._master_address()  # raises StepFailed (not yet) while the Sentinels disagree
            leader = self._node_of(master)
            host, port = master.rsplit(":", 1)
            replicas = [self.old_address] if leader != self.old else [f"{n.address}:{n.ports.redis}" for n in others]
            for address in replicas:
                info = self._replication(address)
                if not (info.get("role") == "slave" and info.get("master_port") == port and info.get("master_link_status") == "up"):
                    return None
            return leader

        leader, _ = wait_for("the Sentinels' master with its replica linked", steady, self.opt.rejoin_timeout_s, interval_s=0.5)
        self.m["rollback_master"] = leader
        if leader == self.old:
            return f"{self.old} is master again (Sentinel had not failed over); its replica is linked"
        self.m["rejoin_s"] = round(time.monotonic() - self.writes.log.started_mono - self.t_restart, 3)
        return f"{self.old} replicates from {leader}: rejoined after {self.m['rejoin_s']:.1f} s"

    def _stop_probe(self) -> str:
        if self.writes is not None and self.writes.loop._thread.is_alive():
            self.writes.stop()
            return "stopped"
        return "already stopped"

    def measurements(self) -> dict[str, Any]:
        return {"mode": self.mode, "old_master": self.old, **self.m}

    def targets(self) -> list[TargetCheck]:
        target = self.inv.targets.primary_lost
        rto, lost = self.m.get("rto_s"), self.m.get("lost_acked_writes")
        return [
            TargetCheck("RTO (fault → first write on the new master)", rto, target.rto_s, "s", "<", rto is not None and rto < target.rto_s),
            TargetCheck("RPO (acknowledged writes lost)", lost, 0, "writes", "<=", lost == 0),
        ]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
