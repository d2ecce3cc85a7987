"""The monthly DCS drill: take away the etcd votes behind every failover and prove writes go on.

Patroni keeps its leader key in etcd: three members, one per Mac and one on the witness.
Two modes, each a freeze (SIGSTOP) through the node-access seam:

``member``
    The witness's etcd member. etcd keeps its quorum with no spare vote; nothing may
    change for writes.
``quorum``
    The witness's member and the one on the Mac that is *not* the Patroni leader, held for
    longer than Patroni's leader ttl (by default ttl + 3 × loop_wait + 5 s, read from the
    leader's ``GET /config``). etcd has no quorum, so nobody can renew the leader key. With
    Patroni's ``failsafe_mode`` the primary keeps running while its replica vouches for it
    (``POST /failsafe``); without it the primary demotes itself about ttl seconds in, and
    writes stop for the whole hospital until etcd is back.

A write probe runs through HAProxy's write frontend all along. The drill measures the
longest write gap from the fault to the end of the recovery, failed writes, acknowledged
writes lost (RPO), whether a failover happened (timeline or leader changed), what etcd
looked like during the fault (as the checks see it: :func:`prontuario_cli.cluster.etcd.quorum`)
and how long etcd, then the whole cluster (the replication check back to OK or WARNING:
Patroni keeps reporting failsafe for about a ttl), took to be healthy again after the thaw.
The rollback resumes every member the drill froze, whatever happened before (resuming a
running process is harmless).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

from prontuario_cli.cluster import haproxy as ha
from prontuario_cli.cluster.nodes import node_access
from prontuario_cli.drill.engine import Activity, StepFailed
from prontuario_cli.drill.failover import (
    _tally_line,
    haproxy_settle_s,
    leader_with_sync_standby,
    replication_not_critical,
    steady_state_of,
    tell_counters,
    writes_flow,
)
from prontuario_cli.drill.journal import TargetCheck
from prontuario_cli.drill.probes import committed_seqs, pg_write_probe, tally
from prontuario_cli.drill.watch import Watcher
from prontuario_cli.errors import UsageError
from prontuario_cli.inventory import Inventory
from prontuario_cli.poll import wait_for

MODES = ("member", "quorum")
MAX_HOLD_S = 600.0  # a freeze longer than ten minutes is not a drill any more
# ``member``: the brief allows no downtime when a secondary part is lost. A write gap is
# never exactly 0 (the probe writes every 20 ms and each commit waits for the sync
# standby): one slow commit on the loaded two-core lab measured up to 2.1 s. So "no
# downtime" is measured as no gap of 5 s or more: such a stall passes, a demotion (the
# primary stopped about 10 s into a lost quorum without failsafe, writes back after the
# ttl) never does. Failed writes are measured too; 0 is what a healthy cluster shows.
MEMBER_GAP_TARGET_S = 5.0
EXPECTED = {"member": "no spare vote", "quorum": "no quorum"}


def default_hold_s(ttl: float, loop_wait: float) -> float:
    """How long a ``quorum`` freeze lasts by default: past the leader key's ttl, plus three
    of Patroni's loops (so a demotion would have happened) and 5 s of slack."""
    return ttl + 3 * loop_wait + 5


@dataclass(frozen=True)
class DcsOptions:
    """How the DCS drill runs; a bad mode or hold is a usage error when the options are made."""

    mode: str = "quorum"
    hold_s: float | None = None  # None: default_hold_s(ttl, loop_wait) of the leader's /config
    baseline_s: float = 2.0
    tail_s: float = 2.0
    etcd_timeout_s: float = 30.0  # every member healthy again after the thaw (0.1-3 s measured)
    writes_timeout_s: float = 60.0  # a write acknowledged after the thaw (a demoted primary: ~5 s)
    rejoin_timeout_s: float = 60.0  # the rollback's steady state, beyond etcd and HAProxy's own budgets

    def __post_init__(self):
        if self.mode not in MODES:
            raise UsageError(f"--mode {self.mode!r} is not one of: {', '.join(MODES)}")
        if self.hold_s is not None and not (math.isfinite(self.hold_s) and 0 < self.hold_s <= MAX_HOLD_S):
            raise UsageError(f"--hold {self.hold_s:g} is not a number of seconds in (0, {MAX_HOLD_S:g}]",
                             hint="leave it out for Patroni's ttl + 3 × loop_wait + 5 s")


class DcsDrill:
    """The DCS drill as an experiment for :func:`prontuario_cli.drill.engine.run_experiment`."""

    drill = "dcs"

    def __init__(self, inventory: Inventory, options: DcsOptions, run_id: str, say: Callable[[str], None], progress: Callable[[dict], None] | None = None):
        self.inv = inventory
        self.opt = options
        self.mode = options.mode
        self.run_id = run_id
        self.say = say
        self.progress = progress
        self.leader: str | None = None
        self.standby: str | None = None
        self.ttl: float | None = None
        self.loop_wait: float | None = None
        self.hold_s: float | None = options.hold_s
        self.targets_of_freeze: list[str] = []  # the etcd members this mode freezes, once known
        self.frozen: list[str] = []  # every member a freeze was sent to (the rollback resumes them all)
        self.writes = None
        self.watch: Watcher | None = None
        self.t_fault: float | None = None  # seconds since the probe's start
        self.t_thaw: float | None = None
        self.m: dict[str, Any] = {}

    # ------------------------------------------------------------------ plan

    def plan(self) -> list[str]:
        hold = f"{self.opt.hold_s:g} s (--hold)" if self.opt.hold_s is not None else "ttl + 3 × loop_wait + 5 s"
        if self.mode == "member":
            fault = "freeze (SIGSTOP) the witness's etcd member: etcd keeps its quorum with no spare vote; nothing may change for writes"
        else:
            fault = (
                "freeze (SIGSTOP) the witness's etcd member and the one on the Mac that is not the Patroni leader: etcd loses "
                "its quorum; with failsafe_mode the primary keeps running, without it it demotes itself about ttl s in"
            )
        steps = [
            "check: every etcd member healthy and agreeing on a leader; one Patroni leader with a streaming sync standby, "
            "not paused; replication check not CRITICAL; writes flow through HAProxy",
            f"read Patroni's ttl and loop_wait (GET /config on the leader); the freeze lasts {hold}"
            + ("; it must outlast the ttl" if self.mode == "quorum" else ""),
            "start a write probe (every 20 ms) through HAProxy's write frontend and a watcher of Patroni and HAProxy",
            f"fault: {fault}",
            f"hold the freeze; meanwhile look at etcd every second as the checks do (expected: {EXPECTED[self.mode]}) and record it",
            f"thaw (SIGCONT) the frozen members; wait (≤ {self.opt.etcd_timeout_s:g} s) until every etcd member is healthy "
            f"and (≤ {self.opt.writes_timeout_s:g} s) for a write acknowledged after the thaw; count the writes: longest gap, "
            "failed, acknowledged writes lost",
            "steady state: a Patroni leader (whichever node) with a streaming sync standby, HAProxy writing to it",
            "rollback (always, also after Ctrl-C or a failed step): thaw (SIGCONT) every member the drill froze; "
            f"wait (≤ {self.rollback_budget_s:g} s) for etcd healthy and the steady state",
            f"targets: 0 acknowledged writes lost; no failover (same timeline, same leader); longest write gap < {self.gap_target_s:g} s",
            "record a timeline change, if there was one, as caused by this drill, so the next replication checks do not warn for it",
        ]
        return steps

    # ------------------------------------------------------------------ budgets and targets

    @property
    def gap_target_s(self) -> float:
        return MEMBER_GAP_TARGET_S if self.mode == "member" else float(self.inv.targets.primary_lost.rto_s)

    @property
    def rollback_budget_s(self) -> float:
        """One deadline for the rollback: etcd back, a possible rejoin, HAProxy's checks."""
        return self.opt.etcd_timeout_s + self.opt.rejoin_timeout_s + haproxy_settle_s(self.inv)

    # ------------------------------------------------------------------ steady state

    def steady_state(self) -> list[Activity]:
        return [
            Activity("etcd: every member healthy, one leader", self._check_etcd),
            Activity("Patroni: one leader, a streaming sync standby, not paused", self._check_patroni),
            Activity("Patroni's ttl and loop_wait (GET /config on the leader); how long the freeze lasts", self._read_config),
            Activity("replication check is not CRITICAL (lag under threshold)", self._check_replication),
            Activity("writes flow through HAProxy", lambda: writes_flow(self._target(), self.run_id)),
        ]

    def _target(self):
        return ha.frontend_target(self.inv, application_name="prontuario-drill")

    def _check_etcd(self) -> str:
        view = etcd_view(self.inv, self.inv.health_checks.timeout_s)
        if view.lost or view.alarms or view.leader is None:
            raise StepFailed(f"etcd is not healthy: {describe(view)['summary']}")
        self._witness()
        return f"{len(view.healthy)} of {view.total} members healthy, leader {view.leader}"

    def _witness(self) -> str:
        found = [n.name for n in self.inv.nodes if n.role == "witness" and n.ports.etcd_client]
        if not found:
            raise StepFailed("the inventory names no witness with an etcd member (a node with role witness and ports.etcd_client)")
        return found[0]

    def _check_patroni(self) -> str:
        _, self.leader, self.standby = leader_with_sync_standby(self.inv)
        witness = self._witness()
        others = [n.name for n in self.inv.macs if n.name != self.leader and n.ports.etcd_client]
        if self.mode == "quorum" and not others:
            raise StepFailed(f"no etcd member on a Mac other than the leader {self.leader}")
        self.targets_of_freeze = [witness] if self.mode == "member" else [witness, others[0]]
        return f"leader {self.leader}, sync standby {self.standby}; the fault freezes etcd on {', '.join(self.targets_of_freeze)}"

    def _read_config(self) -> str:
        from prontuario_cli.cluster import patroni

        config = patroni.rest_json(self.inv.node(self.leader), "/config", time.monotonic() + self.inv.health_checks.timeout_s)
        try:
            self.ttl, self.loop_wait = float(config["ttl"]), float(config["loop_wait"])
        except (KeyError, TypeError, ValueError):
            raise StepFailed(f"Patroni's /config on {self.leader} names no ttl and loop_wait") from None
        failsafe = bool(config.get("failsafe_mode", False))
        self.m.update(ttl_s=self.ttl, loop_wait_s=self.loop_wait, failsafe_mode=failsafe)
        if self.hold_s is None:
            self.hold_s = default_hold_s(self.ttl, self.loop_wait)
        if self.mode == "quorum" and self.hold_s <= self.ttl:
            raise StepFailed(f"--hold {self.hold_s:g} s does not outlast Patroni's ttl {self.ttl:g} s: the drill would prove nothing",
                             hint=f"leave --hold out ({default_hold_s(self.ttl, self.loop_wait):g} s here) or give more than {self.ttl:g}")
        self.m["hold_s"] = self.hold_s
        said = f"ttl {self.ttl:g} s, loop_wait {self.loop_wait:g} s; freeze for {self.hold_s:g} s"
        if self.mode == "quorum" and not failsafe:
            said += "; failsafe_mode is OFF: the primary will demote itself during the freeze"
        return said

    def _check_replication(self) -> str:
        report = replication_not_critical(self.inv)
        self.m.update(leader_before=self.leader, sync_standby_before=self.standby, timeline_before=report.timeline)
        return f"{report.status.name}: {report.summary}; timeline {report.timeline}"

    # ------------------------------------------------------------------ method

    def method(self) -> list[Activity]:
        who = ", ".join(self.targets_of_freeze) or "the chosen members"
        hold = f"hold the freeze {self.hold_s:g} s" if self.hold_s is not None else "hold the freeze"
        return [
            Activity("start the write probe and the watcher", self._start),
            Activity(f"fault: freeze etcd on {who} (SIGSTOP)", self._fault),
            Activity(
                f"{hold}; look at etcd as the checks do", self._hold,
                target_s=self.hold_s, label="hold", since=self._fault_mono,
            ),
            Activity(f"thaw etcd on {who} (SIGCONT)", self._thaw),
            Activity("etcd: every member healthy again", self._wait_etcd, target_s=self.opt.etcd_timeout_s),
            Activity("a write acknowledged after the thaw", self._wait_writes, target_s=self.opt.writes_timeout_s),
            Activity("stop the probe and count the writes", self._count),
        ]

    def _start(self) -> str:
        budget = (self.hold_s or 0) + self.opt.etcd_timeout_s + self.opt.writes_timeout_s + 60
        self.writes = pg_write_probe(self._target(), self.run_id, max_duration_s=budget).start()
        self.watch = Watcher(self.inv, self.writes.log.started_mono, max_duration_s=budget + self.rollback_budget_s,
                             on_event=self._tell_event, on_tick=lambda: tell_counters(self.progress, self.writes)).start()
        wait_for("baseline writes acknowledged", lambda: self.writes.log.counts()["acked"] >= 10, 10)
        time.sleep(self.opt.baseline_s)  # a steady baseline before the fault, by design
        return f"{self.writes.log.counts()['acked']} writes acknowledged before the fault"

    def _fault_mono(self) -> float | None:
        """When the freeze began, on time.monotonic()'s clock."""
        return self.writes.log.started_mono + self.t_fault if self.writes is not None and self.t_fault is not None else None

    def _since_fault(self) -> float:
        return round(time.monotonic() - self._fault_mono(), 3)

    def _tell_event(self, event) -> None:
        if self.progress is not None and self.t_fault is not None:
            self.progress({"kind": "event", "t": round(event.t - self.t_fault, 3), "what": event.what})

    def _fault(self) -> str:
        access = node_access(self.inv)
        self.t_fault = time.monotonic() - self.writes.log.started_mono
        done = []
        for node in self.targets_of_freeze:
            self.frozen.append(node)  # first: a freeze that raised half-way is still resumed
            done.append(f"{node}: {access.act(node, 'etcd', 'hang')}")
        self.m["frozen"] = list(self.frozen)
        return "; ".join(done)

    def _hold(self) -> str:
        """The deliberate hold: look at etcd about once a second until it has lasted ``hold_s``."""
        end = self._fault_mono() + self.hold_s
        looks, said = 0, None
        while True:
            began = time.monotonic()
            # a frozen member costs the whole timeout: keep the looks about a second apart, the last one inside the hold
            view = etcd_view(self.inv, max(0.2, min(1.0, self.inv.health_checks.timeout_s, end - began)))
            looks += 1
            seen = describe(view)
            self.m["etcd_seen_during_fault"] = dict(seen, at_s=self._since_fault())
            if seen["verdict"] != said:
                said = seen["verdict"]
                if self.progress is not None:
                    self.progress({"kind": "event", "t": self._since_fault(), "what": f"etcd: {seen['summary']}"})
            tell_counters(self.progress, self.writes)
            left = end - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, max(0.0, 1.0 - (time.monotonic() - began))))  # the hold itself, by design
        self.m["etcd_looks_during_fault"] = looks
        last = self.m["etcd_seen_during_fault"]
        return f"held {self._since_fault():.1f} s; etcd: {last['summary']}"

    def _thaw(self) -> str:
        said = self._resume_all()
        self.t_thaw = time.monotonic() - self.writes.log.started_mono
        return said

    def _resume_all(self) -> str:
        """SIGCONT every member a freeze was sent to; every one is tried, failures reported together."""
        from prontuario_cli.errors import ProntuarioError

        if not self.frozen:
            return "no member was frozen"
        access = node_access(self.inv)
        done, failed = [], []
        for node in dict.fromkeys(self.frozen):
            try:
                done.append(f"{node}: {access.act(node, 'etcd', 'resume')}")
            except ProntuarioError as exc:
                failed.append(f"{node}: {exc.one_line()}")
        if failed:
            raise StepFailed("could not resume etcd on " + "; ".join(failed) + (f" (resumed: {'; '.join(done)})" if done else ""))
        return "; ".join(done)

    def _wait_etcd(self) -> str:
        wait_for("every etcd member healthy", lambda: etcd_healthy(self.inv), self.opt.etcd_timeout_s, interval_s=0.2,
                 last_state=lambda: describe(etcd_view(self.inv, self.inv.health_checks.timeout_s))["summary"])
        self.m["etcd_healthy_after_thaw_s"] = round(time.monotonic() - self.writes.log.started_mono - self.t_thaw, 3)
        return f"healthy {self.m['etcd_healthy_after_thaw_s']:.2f} s after the thaw"

    def _wait_writes(self) -> str:
        def acked():
            tell_counters(self.progress, self.writes)
            return self.writes.log.first_ack_sent_after(self.t_thaw)

        attempt, _ = wait_for("a write acknowledged after the thaw", acked, self.opt.writes_timeout_s, interval_s=0.05)
        self.m["writes_after_thaw_s"] = round(attempt.done - self.t_thaw, 3)
        time.sleep(self.opt.tail_s)  # keep writing a little after recovery, by design
        return f"write acknowledged by {attempt.server} {self.m['writes_after_thaw_s']:.2f} s after the thaw"

    def _count(self) -> str:
        log = self.writes.stop()
        self.m.update(tally(log, committed_seqs(self._target(), self.run_id)))
        self.m["write_gap_s"] = round(log.longest_gap(self.t_fault, log.rel(time.monotonic())), 3)
        self.m["writes_not_acked_after_fault"] = log.errors_after(self.t_fault)
        return f"longest write gap {self.m['write_gap_s']:.2f} s; " + _tally_line(self.m)

    # ------------------------------------------------------------------ after

    def steady_state_after(self) -> list[Activity]:
        return [
            Activity("etcd: every member healthy, one leader", self._check_etcd),
            Activity("a Patroni leader (whichever node) with a streaming sync standby; HAProxy writes to it", self._wait_steady),
        ]

    def _wait_steady(self, budget_s: float | None = None) -> str:
        """Poll the replication check until a leader with a streaming sync standby takes the writes (bounded)."""
        from prontuario_cli.replication import check

        seen = {"last": "no look yet"}

        def steady():
            report = check(self.inv)
            roles, seen["last"] = steady_state_of(report)
            return (roles, report.timeline) if roles else None

        ((leader, standby), timeline), waited = wait_for(
            "the steady state (a leader with a streaming sync standby, HAProxy writing to it)", steady,
            budget_s if budget_s is not None else haproxy_settle_s(self.inv) + self.opt.rejoin_timeout_s,
            interval_s=0.5, last_state=lambda: seen["last"],
        )
        self.m.update(leader_after=leader, sync_standby_after=standby, timeline_after=timeline)
        if self.t_thaw is not None and "steady_after_thaw_s" not in self.m:
            # Patroni keeps saying it runs on failsafe for about a ttl after etcd is back
            self.m["steady_after_thaw_s"] = round(time.monotonic() - self.writes.log.started_mono - self.t_thaw, 3)
        return f"leader {leader}, sync standby {standby}, timeline {timeline} ({waited:.1f} s)"

    # ------------------------------------------------------------------ rollback

    def rollback(self) -> list[Activity]:
        if not self.frozen:
            return [Activity("nothing to roll back (no etcd member was frozen); stop the probe and the watcher", self._stop_everything)]
        return [
            Activity("stop the write probe (if still running)", self._stop_probe),
            Activity(f"thaw every etcd member the drill froze: {', '.join(dict.fromkeys(self.frozen))} (SIGCONT)", self._resume_all),
            Activity("steady state: every etcd member healthy; a Patroni leader (whichever node) with a streaming sync standby, "
                     "HAProxy writing to it", self._rollback_steady),
            Activity("stop the watcher", self._stop_watch),
        ]

    def _rollback_steady(self) -> str:
        started = time.monotonic()
        wait_for("every etcd member healthy", lambda: etcd_healthy(self.inv), self.opt.etcd_timeout_s, interval_s=0.2,
                 last_state=lambda: describe(etcd_view(self.inv, self.inv.health_checks.timeout_s))["summary"])
        left = max(1.0, self.rollback_budget_s - (time.monotonic() - started))
        return "etcd healthy; " + self._wait_steady(left)

    def _stop_probe(self) -> str:
        if self.writes is not None and self.writes.loop._thread.is_alive():
            self.writes.stop()
            return "stopped"
        return "already stopped"

    def _stop_watch(self) -> str:
        self._stop_probe()
        if self.watch is None:
            return "no watcher"
        return f"{len(self.watch.stop())} events"

    def _stop_everything(self) -> str:
        return f"nothing was changed; probe {self._stop_probe()}; watcher {self._stop_watch()}"

    # ------------------------------------------------------------------ results

    def failover_happened(self) -> bool | None:
        """True when the leader or the timeline changed; None when the after side is unknown."""
        before, after = self.m.get("leader_before"), self.m.get("leader_after")
        if before is None or after is None:
            return None
        t0, t1 = self.m.get("timeline_before"), self.m.get("timeline_after")
        return before != after or (t0 is not None and t1 is not None and t0 != t1)

    def measurements(self) -> dict[str, Any]:
        out = {"mode": self.mode, "expected_etcd": EXPECTED[self.mode], **self.m, "failover": self.failover_happened()}
        if self.watch is not None and self.t_fault is not None:
            out["events"] = [f"{e.t - self.t_fault:+.2f}s {e.what}" for e in self.watch.events if e.t >= self.t_fault - 1]
        return out

    def targets(self) -> list[TargetCheck]:
        gap, lost, failover = self.m.get("write_gap_s"), self.m.get("lost_acked_writes"), self.failover_happened()
        seen = self.m.get("etcd_seen_during_fault") or {}
        healthy, majority = seen.get("healthy_count"), seen.get("majority")
        if self.mode == "member":  # one member gone: exactly a majority left, none spare
            fault = TargetCheck("etcd during the fault: no spare vote (members healthy)", healthy, majority or 0, "members", "<=",
                                healthy is not None and majority is not None and healthy <= majority and seen.get("quorum") is True)
        else:
            fault = TargetCheck("etcd during the fault: no quorum (members healthy)", healthy, majority or 0, "members", "<",
                                healthy is not None and majority is not None and healthy < majority)
        return [
            TargetCheck("write gap (longest time without an acknowledged write)", gap, self.gap_target_s, "s", "<", gap is not None and gap < self.gap_target_s),
            TargetCheck("RPO (acknowledged writes lost)", lost, 0, "writes", "<=", lost == 0),
            TargetCheck("failovers (timeline or leader changed)", None if failover is None else int(failover), 0, "failovers", "<=", failover is False),
            fault,
        ]


# --------------------------------------------------------------------------- etcd as the checks see it


def etcd_view(inventory: Inventory, timeout_s: float):
    """Every etcd member's own status, asked at once (a frozen member costs one timeout),
    counted by :func:`prontuario_cli.cluster.etcd.quorum`."""
    from prontuario_cli.cluster.etcd import member_status, quorum
    from prontuario_cli.connect.fanout import run_all

    nodes = [n for n in inventory.nodes if n.ports.etcd_client]
    probes = {n.name: (lambda deadline, n=n: member_status(n.address, n.ports.etcd_client, deadline)) for n in nodes}
    outcomes = run_all(probes, time.monotonic() + timeout_s)
    statuses = {n.name: outcomes[n.name].value if outcomes[n.name].ok else None for n in nodes}
    why = {n.name: _why(outcomes[n.name], timeout_s) for n in nodes if not outcomes[n.name].ok}
    return quorum(statuses, why)


def etcd_healthy(inventory: Inventory) -> bool:
    """Every member answers, agrees on one leader, and no alarm is raised."""
    view = etcd_view(inventory, inventory.health_checks.timeout_s)
    return not view.lost and not view.alarms and view.leader is not None


def describe(view) -> dict[str, Any]:
    """A :class:`~prontuario_cli.cluster.etcd.Quorum` as the journal records it, with its verdict
    in words: all healthy, no spare vote, no quorum (or how many are lost and spare)."""
    if not view.has_quorum:
        verdict = "no quorum"
    elif view.lost and view.spare == 0:
        verdict = "no spare vote"
    elif view.lost:
        verdict = f"{len(view.lost)} lost, {view.spare} spare"
    else:
        verdict = "all healthy"
    lost = "; ".join(f"{name}: {why}" for name, why in view.lost.items())
    alarms = "; ".join(f"{name}: {', '.join(a)}" for name, a in view.alarms.items())
    summary = f"{verdict} ({len(view.healthy)} of {view.total} healthy, {view.majority} needed" + (f"; {lost}" if lost else "") + (f"; alarms {alarms}" if alarms else "") + ")"
    return {
        "verdict": verdict,
        "summary": summary,
        "healthy": list(view.healthy),
        "healthy_count": len(view.healthy),
        "total": view.total,
        "majority": view.majority,
        "spare": view.spare,
        "quorum": view.has_quorum,
        "leader": view.leader,
        "lost": dict(view.lost),
    }


def _why(outcome, timeout_s: float) -> str:
    from prontuario_cli.connect import TimedOut

    if outcome.timed_out or isinstance(outcome.error, TimedOut):
        return f"no answer within {timeout_s:.2g} s (frozen?)"
    if outcome.error is not None:
        return outcome.error.one_line()
    return f"unexpected answer ({outcome.bug})"
