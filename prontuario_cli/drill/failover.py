"""The weekly failover drill, for PostgreSQL (Patroni) and Redis (Sentinel).

Modes: ``switchover`` (planned, Patroni REST), ``kill`` (kill -9 Patroni + PostgreSQL:
node loss), ``stop`` (graceful), ``hang`` (SIGSTOP: a frozen node). A write probe runs
through HAProxy's write frontend the whole time; RTO is the fault → the first write
acknowledged by the new primary; RPO is the acknowledged writes the new primary lacks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from prontuario_cli.cluster import haproxy as ha
from prontuario_cli.cluster import patroni
from prontuario_cli.cluster.nodes import node_access
from prontuario_cli.drill.engine import Activity, StepFailed
from prontuario_cli.drill.journal import TargetCheck
from prontuario_cli.drill.probes import (
    committed_seqs,
    pg_read_probe,
    pg_write_probe,
    prepare_table,
    tally,
)
from prontuario_cli.drill.watch import Watcher
from prontuario_cli.inventory import Inventory
from prontuario_cli.poll import wait_for

MODES = ("switchover", "kill", "stop", "hang")


@dataclass(frozen=True)
class FailoverOptions:
    mode: str = "kill"
    restore_primary: bool = False
    recovery_timeout_s: float = 120.0
    rejoin_timeout_s: float = 60.0  # the old primary's rejoin (pg_rewind, then sync standby: 6-16 s measured)
    baseline_s: float = 2.0
    tail_s: float = 2.0
    # How long a standby may take to get the cloud replica's permanent slot: Patroni
    # copies it once per HA loop (loop_wait, 10 s by default) once the standby streams.
    slot_wait_s: float = 45.0
    cloud: bool = True  # assert the cloud replica follows the new primary (when the inventory has one)


class PostgresFailover:
    drill = "failover"

    def __init__(self, inventory: Inventory, options: FailoverOptions, run_id: str, say: Callable[[str], None], progress: Callable[[dict], None] | None = None):
        self.inv = inventory
        self.opt = options
        self.mode = options.mode
        self.run_id = run_id
        self.say = say
        self.progress = progress
        self.old: str | None = None  # the primary when the drill starts
        self.new: str | None = None
        self.t_fault: float | None = None
        self.t_restart: float | None = None
        self.writes = None
        self.reads = None
        self.watch: Watcher | None = None
        self.m: dict[str, Any] = {}
        self.faulted = False
        self.cloud = cloud_follows_here(inventory) if options.cloud else None  # the cloud replica's instance
        self.cloud_watch = None  # times the first write on the new primary reaching it
        self.committed: set[int] = set()

    # ------------------------------------------------------------------ plan

    def plan(self) -> list[str]:
        view = "the current Patroni leader"
        fault = {
            "switchover": f"POST /switchover from {view} to the sync standby (planned)",
            "kill": f"kill -9 Patroni and PostgreSQL on {view} (node loss)",
            "stop": f"stop Patroni on {view} gracefully (SIGTERM)",
            "hang": f"SIGSTOP Patroni and PostgreSQL on {view} (a frozen node)",
        }[self.mode]
        steps = [
            "check: one Patroni leader, a streaming sync standby, not paused; replication check not CRITICAL; one HAProxy write server",
            "start a write probe (every 20 ms) through HAProxy's write frontend and a read probe through the read frontend",
            f"fault: {fault}",
            f"wait (≤ {self.opt.recovery_timeout_s:g} s) for the first write acknowledged by the new primary; count lost writes",
            "rollback: " + ("" if self.mode == "switchover" else "bring the old primary back; ")
            + f"wait (≤ {self.rollback_budget_s:g} s) for the steady state: one leader, whichever node it is, with a streaming "
            "sync standby, replication check OK or WARNING, HAProxy writing to the leader only (Ctrl-C abandons the rollback)",
        ]
        if self.cloud:
            steps.insert(1, f"check: the sync standby holds the cloud replica's logical slot (≤ {self.slot_wait_s:g} s), so {self.cloud} can follow it")
            steps.insert(
                -1,
                f"cloud: the first write on the new primary reaches {self.cloud} within the {self.rpo_s:g} s RPO target; once a later "
                "marker row arrives, every acknowledged write is there (rows the new primary lacks are counted and reported)",
            )
        if self.opt.restore_primary:
            steps.append("restore: switch over back to the original primary (if it does not lead already)")
        steps.append("record the timeline change as caused by this drill, so the next replication checks do not warn for it")
        return steps

    # ------------------------------------------------------------------ steady state

    def steady_state(self) -> list[Activity]:
        return [
            Activity("Patroni: one leader, a streaming sync standby, not paused", self._check_patroni),
            Activity("replication check is not CRITICAL (lag under threshold)", self._check_replication),
            Activity("HAProxy: exactly one write server, the leader", self._check_haproxy_leader),
            Activity("writes flow through HAProxy", lambda: writes_flow(ha.frontend_target(self.inv, application_name="prontuario-drill"), self.run_id)),
        ] + ([Activity("the sync standby holds the cloud replica's logical slot", self._check_standby_slot)] if self.cloud else [])

    @property
    def rpo_s(self) -> float:
        """The cloud replica's RPO target (both Macs lost): how far behind it may be."""
        return self.inv.targets.both_lost.rpo_s

    @property
    def slot_wait_s(self) -> float:
        return self.opt.slot_wait_s

    def _check_standby_slot(self) -> str:
        """A failover to a standby without the slot would cut the cloud replica off; Patroni
        also refuses a switchover to it (412, no good candidates) until it has it."""
        from prontuario_cli.cluster.logical import slot_on

        slot = self.inv.cloud.replication.slot
        _, waited = wait_for(
            f"{self.new} to hold slot {slot}", lambda: slot_on(self.inv, self.new, slot), self.slot_wait_s, interval_s=0.5,
            on_timeout=lambda _: StepFailed(
                f"sync standby {self.new} does not hold the cloud replica's slot {slot} after {self.slot_wait_s:g} s: "
                "a failover to it would cut the cloud replica off",
                hint="check Patroni's permanent slots (patronictl show-config: slots) and the standby's log",
            ),
        )
        return f"{self.new} holds {slot}" + (f" (waited {waited:.1f} s)" if waited >= 0.5 else "")

    def _check_patroni(self) -> str:
        view, self.old, self.new = leader_with_sync_standby(self.inv)
        return f"leader {view.leader}, sync standby {self.new}"

    def _check_replication(self) -> str:
        report = replication_not_critical(self.inv)
        return f"{report.status.name}: {report.summary}"

    def _check_haproxy_leader(self) -> str:
        from prontuario_cli.drill.watch import snapshot

        snap = snapshot(self.inv, timeout_s=self.inv.health_checks.timeout_s)
        if snap.write_up != (self.old,):
            raise StepFailed(f"HAProxy write servers UP: {list(snap.write_up) or 'none'} (expected only {self.old})")
        return f"write -> {self.old}"

    # ------------------------------------------------------------------ method

    def method(self) -> list[Activity]:
        return [
            Activity("start the write/read probes and the watcher", self._start_probes),
            Activity(f"fault: {self.mode}", self._fault),
            Activity(
                "wait for the first write acknowledged by the new primary", self._wait_recovered,
                target_s=self.inv.targets.primary_lost.rto_s, label="RTO", since=self._fault_mono,
            ),
            Activity("stop the probes and count the writes on the new primary", self._count),
        ]

    def _start_probes(self) -> str:
        self.writes = pg_write_probe(ha.frontend_target(self.inv, application_name="prontuario-drill"), self.run_id, max_duration_s=self.opt.recovery_timeout_s + 60).start()
        self.reads = pg_read_probe(ha.frontend_target(self.inv, frontend="read", application_name="prontuario-drill"), max_duration_s=self.opt.recovery_timeout_s + 60).start()
        self.watch = Watcher(self.inv, self.writes.log.started_mono, on_event=self._tell_event, on_tick=self._tell_counters).start()
        wait_for("baseline writes acknowledged", lambda: self.writes.log.counts()["acked"] >= 10, 10)
        time.sleep(self.opt.baseline_s)  # a steady baseline before the fault, by design
        return f"{self.writes.log.counts()['acked']} writes acknowledged before the fault"

    def _fault_mono(self) -> float | None:
        """When the fault was injected, on time.monotonic()'s clock (the RTO's start)."""
        return self.writes.log.started_mono + self.t_fault if self.writes is not None and self.t_fault is not None else None

    def _tell_event(self, event) -> None:
        """Live view: the watcher's events after the fault, timed from it."""
        if self.progress is not None and self.t_fault is not None:
            self.progress({"kind": "event", "t": round(event.t - self.t_fault, 3), "what": event.what})

    def _tell_counters(self) -> None:
        tell_counters(self.progress, self.writes)

    def _fault(self) -> str:
        actions = node_access(self.inv)
        self.t_fault = time.monotonic() - self.writes.log.started_mono
        self.faulted = True
        if self.mode == "switchover":
            return patroni.switchover(self.inv, self.old, self.new)
        action = {"kill": "kill", "stop": "stop", "hang": "hang"}[self.mode]
        return actions.act(self.old, "postgres", action)

    def _wait_recovered(self) -> str:
        old_server = ha.pg_server(self.inv.node(self.old))
        attempt, _ = wait_for(
            "a write acknowledged by the new primary",
            lambda: self.writes.log.first_ack_sent_after(self.t_fault, not_server=old_server),
            self.opt.recovery_timeout_s,
            interval_s=0.05,
        )
        self.m["rto_s"] = round(attempt.done - self.t_fault, 3)
        if self.cloud:
            from prontuario_cli.gcp.follow import ArrivalWatch

            self.cloud_watch = ArrivalWatch(self.inv, self.cloud, self.run_id, attempt.seq, self.rpo_s).start()
        time.sleep(self.opt.tail_s)  # keep writing a little after recovery, by design
        return f"first write on {attempt.server} {self.m['rto_s']:.2f} s after the fault"

    def _count(self) -> str:
        wlog = self.writes.stop()
        rlog = self.reads.stop()
        self.committed = committed_seqs(ha.frontend_target(self.inv, application_name="prontuario-drill"), self.run_id)
        self.m.update(tally(wlog, self.committed))
        self.m.update(
            write_gap_s=round(wlog.longest_gap(self.t_fault, wlog.rel(time.monotonic())), 3),
            read_gap_s=round(rlog.longest_gap(self.t_fault, rlog.rel(time.monotonic())), 3),
            reads_failed=rlog.counts()["failed"],
        )
        return _tally_line(self.m)

    # ------------------------------------------------------------------ after

    @property
    def settle_s(self) -> float:
        return haproxy_settle_s(self.inv)

    def steady_state_after(self) -> list[Activity]:
        # With slow checks (the seed's inter 5 s, fall 3) HAProxy can keep a demoted
        # primary UP beside the new one for a while: steady state must return within the
        # checks' own budget, not at the first look.
        return [
            Activity(
                "writes flow through HAProxy to the new primary",
                lambda: wait_for("writes flowing", lambda: writes_flow(ha.frontend_target(self.inv, application_name="prontuario-drill"), self.run_id), self.settle_s, interval_s=0.5)[0],
            ),
            Activity("Patroni leader is the former standby", self._check_new_leader),
        ] + ([
            Activity(
                f"the cloud replica {self.cloud} follows the new primary (its first write arrives)", self._cloud_caught_up,
                target_s=self.rpo_s, label="RPO", since=self._first_ack_mono,
            ),
            Activity(f"{self.cloud} holds every acknowledged write (and what the new primary lacks is counted)", self._cloud_consistent),
        ] if self.cloud else [])

    def _first_ack_mono(self) -> float | None:
        rto = self.m.get("rto_s")
        fault = self._fault_mono()
        return fault + rto if fault is not None and rto is not None else None

    def _cloud_caught_up(self) -> str:
        if self.cloud_watch is None:
            raise StepFailed("no write on the new primary to look for on the cloud replica")
        delay = self.cloud_watch.result()
        if delay is None:
            raise StepFailed(
                f"{self.cloud} did not receive the new primary's first write within {self.rpo_s:g} s: it does not follow the new primary",
                hint="prontuario replication check shows the subscription and the slot",
            )
        self.m["cloud_catch_up_s"] = delay
        self.m["cloud_catch_up_after_fault_s"] = round(self.m["rto_s"] + delay, 3)
        return f"arrived {delay:.2f} s after it was acknowledged ({self.m['cloud_catch_up_after_fault_s']:.2f} s after the fault)"

    def _cloud_consistent(self) -> str:
        """Compare this drill's rows on both sides once a later marker has arrived (commit
        order: everything before it is applied).

        An acknowledged write missing on the replica fails the step: the fallback lacks
        data the hospital was told is safe. A row only the replica holds is reported, not
        failed, when it is a write in flight at the fault (never acknowledged): PostgreSQL
        15's logical walsender can send a commit before the sync standby has it, so the
        replica keeps a commit the new primary never had (PostgreSQL 17's
        ``synchronized_standby_slots`` closes this). Any other extra row fails the step.
        """
        from prontuario_cli.gcp.follow import NotFollowing, marker_arrives, seqs_on

        try:
            marker_arrives(self.inv, self.cloud, f"{self.run_id}-cloud-marker", self.rpo_s)
        except NotFollowing as exc:
            raise StepFailed(exc.message, hint=exc.hint) from None
        on_cloud = seqs_on(self.inv, self.cloud, self.run_id)
        attempts = self.writes.log.attempts
        acked = {a.seq for a in attempts if a.outcome == "acked"}
        in_flight = {a.seq for a in attempts if a.outcome == "unknown"}
        missing, extra = sorted(acked - on_cloud), sorted(on_cloud - self.committed)
        unexplained = [seq for seq in extra if seq not in in_flight]
        self.m.update(cloud_rows=len(on_cloud), cloud_missing_acked=len(missing), cloud_only_rows=len(extra))
        if missing:
            self.m["cloud_missing_seqs"] = missing[:50]
        if extra:
            self.m["cloud_only_seqs"] = extra[:50]
        if missing or unexplained:
            raise StepFailed(
                f"{self.cloud} diverged from the new primary: {len(missing)} acknowledged writes missing"
                + (f", {len(unexplained)} rows the new primary does not hold that were never in flight" if unexplained else ""),
                hint="it cannot be trusted as the fallback: re-seed it (gcp failback's rebuild step, or re-create the replica)",
            )
        said = f"{len(on_cloud)} rows: every acknowledged write"
        if extra:
            finding = (
                f"{len(extra)} write(s) in flight at the fault (never acknowledged; seq {', '.join(map(str, extra[:5]))}) reached "
                f"{self.cloud} but not the new primary: PostgreSQL 15 sends a commit to the subscriber before the sync standby "
                "confirms it; the fallback keeps them until it is seeded again"
            )
            self.say(f"cloud: {finding}")
            return f"{said}; {finding}"
        return f"{said}, none the new primary lacks"

    def _check_new_leader(self) -> str:
        view = patroni.cluster_view(self.inv)
        if view.leader != self.new:
            raise StepFailed(f"leader is {view.leader}, expected {self.new}")
        return f"leader {view.leader}"

    # ------------------------------------------------------------------ rollback

    @property
    def rollback_budget_s(self) -> float:
        """One deadline for the rollback's steady state: the rejoin allowance plus the time
        HAProxy's own checks take to move the write server (not one wait per condition)."""
        return self.opt.rejoin_timeout_s + self.settle_s

    def rollback(self) -> list[Activity]:
        if not self.faulted:
            return [Activity("nothing to roll back (no fault was injected); stop the probes", self._stop_everything)]
        steps = [Activity("stop the write/read probes (if still running)", self._stop_probes)]
        if self.mode == "hang":
            steps.append(Activity(f"resume {self.old} (SIGCONT)", lambda: self._restart("resume")))
        elif self.mode in ("kill", "stop"):
            steps.append(Activity(f"start {self.old} again", lambda: self._restart("start")))
        steps.append(
            Activity("steady state: one leader (whichever node) with a streaming sync standby; HAProxy writes to it", self._wait_steady)
        )
        if self.opt.restore_primary:
            steps.append(Activity(f"switch over back to {self.old}", self._restore))
        steps.append(Activity("stop the watcher", self._stop_watch))
        return steps

    def _restart(self, action: str) -> str:
        self.t_restart = time.monotonic() - self.writes.log.started_mono if self.writes else None
        return node_access(self.inv).act(self.old, "postgres", action)

    def _since_restart(self) -> float | None:
        if self.writes is None:
            return None
        base = self.t_restart if self.t_restart is not None else self.t_fault
        return round(time.monotonic() - self.writes.log.started_mono - base, 3) if base is not None else None

    def _wait_steady(self, leader: str | None = None) -> str:
        """Poll the replication check until the cluster is in its steady state (bounded)."""
        from prontuario_cli.replication import check

        seen = {"last": "no look yet"}

        def steady():
            report = check(self.inv)
            row = next((r for r in report.replicas if r.node == self.old and r.state == "streaming"), None)
            if row is not None:  # the old primary rejoined as a replica: time it
                self.m.setdefault("rejoin_streaming_s", self._since_restart())
                if row.sync_state in ("sync", "quorum"):
                    self.m.setdefault("rejoin_sync_s", self._since_restart())
            roles, seen["last"] = steady_state_of(report)
            if roles is not None and leader is not None and roles[0] != leader:
                seen["last"] = f"{roles[0]} leads, waiting for {leader}; " + seen["last"]
                return None
            return roles

        (now_leader, standby), waited = wait_for(
            "the steady state (a leader with a streaming sync standby, HAProxy writing to it)",
            steady,
            self.rollback_budget_s,
            interval_s=0.5,
            last_state=lambda: seen["last"],
        )
        self.m.update(rollback_leader=now_leader, rollback_sync_standby=standby)
        return f"leader {now_leader}, sync standby {standby} ({waited:.1f} s)"

    def _restore(self) -> str:
        leader = self.m.get("rollback_leader") or patroni.cluster_view(self.inv).leader
        if leader == self.old:
            return f"{self.old} leads already"
        out = patroni.switchover(self.inv, leader, self.old)
        return f"{out}; " + self._wait_steady(leader=self.old)

    def _stop_probes(self) -> str:
        stopped = []
        for probe in (self.writes, self.reads):
            if probe is not None and probe.loop._thread.is_alive():
                probe.stop()
                stopped.append(probe.log.name)
        return f"stopped: {', '.join(stopped)}" if stopped else "already stopped"

    def _stop_watch(self) -> str:
        self._stop_probes()
        if self.cloud_watch is not None:
            self.cloud_watch.stop()
        if self.watch is None:
            return "no watcher"
        events = self.watch.stop()
        return f"{len(events)} events"

    def _stop_everything(self) -> str:
        return f"nothing was changed; probes {self._stop_probes()}; watcher {self._stop_watch()}"

    # ------------------------------------------------------------------ results

    def measurements(self) -> dict[str, Any]:
        out = {"mode": self.mode, "old_primary": self.old, "new_primary": self.new, "cloud_replica": self.cloud,
               "cloud_skipped": not self.opt.cloud, **self.m}
        if self.watch is not None and self.t_fault is not None:
            w, t = self.watch, self.t_fault
            for key, prefix in (
                ("haproxy_detection_s", f"haproxy write down: {self.old}"),
                ("patroni_promotion_s", f"leader: {self.new}"),
                ("haproxy_new_primary_up_s", f"haproxy write up: {self.new}"),
            ):
                at = w.first(prefix, after=t)
                out[key] = round(at - t, 3) if at is not None else None
            out["events"] = [f"{e.t - t:+.2f}s {e.what}" for e in w.events if e.t >= t - 1]
        return out

    def targets(self) -> list[TargetCheck]:
        target = self.inv.targets.primary_lost
        rto = self.m.get("rto_s")
        lost = self.m.get("lost_acked_writes")
        checks = [TargetCheck("RTO (fault → first write on the new primary)", rto, target.rto_s, "s", "<", rto is not None and rto < target.rto_s)]
        if target.rpo_s == 0:
            checks.append(TargetCheck("RPO (acknowledged writes lost)", lost, 0, "writes", "<=", lost == 0))
        else:
            span = self.m.get("rpo_s")
            checks.append(TargetCheck("RPO (span of lost acknowledged writes)", span, target.rpo_s, "s", "<", span is not None and span < target.rpo_s))
        if self.cloud:
            catch_up = self.m.get("cloud_catch_up_s")
            checks.append(TargetCheck("cloud replica catch-up (new primary's first write → cloud)", catch_up, self.rpo_s, "s", "<",
                                      catch_up is not None and catch_up < self.rpo_s))
            missing = self.m.get("cloud_missing_acked")
            checks.append(TargetCheck("cloud replica: acknowledged writes missing", missing, 0, "writes", "<=", missing == 0))
        return checks


def cloud_follows_here(inventory: Inventory) -> str | None:
    """The live cloud replica a failover drill must see following the new primary; None
    when the inventory has no cloud fallback it can reach."""
    cloud = inventory.cloud
    if cloud is None or not cloud.sql_instance:
        return None
    from prontuario_cli.gcp.data import data_via

    return cloud.sql_instance if cloud.data is not None or data_via(inventory) == "connector" else None


def haproxy_settle_s(inventory: Inventory) -> float:
    """How long HAProxy may take to mark one server down and another up, plus slack."""
    hc = inventory.health_checks
    return hc.interval_s * (hc.fall + hc.rise) + hc.timeout_s + 5.0


def leader_with_sync_standby(inventory: Inventory):
    """(Patroni's cluster view, leader, streaming sync standby) when a drill may start;
    raises StepFailed when Patroni is paused, has no single leader or no streaming sync standby."""
    view = patroni.cluster_view(inventory)
    if view.paused:
        raise StepFailed("Patroni is paused (maintenance mode): resume it before a drill")
    if not view.leader:
        raise StepFailed("Patroni has no single leader")
    standby = patroni.sync_standby(view)
    if not standby:
        raise StepFailed(f"no streaming sync standby (members: {_members(view)})")
    return view, view.leader, standby


def replication_not_critical(inventory: Inventory):
    """The replication check's report; raises StepFailed when it is CRITICAL."""
    from prontuario_cli.replication import check
    from prontuario_cli.report import Status

    report = check(inventory)
    if report.status == Status.CRITICAL:
        raise StepFailed(f"replication check is CRITICAL: {report.summary}")
    return report


def tell_counters(progress: Callable[[dict], None] | None, probe) -> None:
    """Live view: the write probe's acknowledged/failed/unknown counts so far."""
    if progress is not None and probe is not None:
        progress({"kind": "counters", **probe.log.counts()})


def steady_state_of(report) -> tuple[tuple[str, str] | None, str]:
    """((leader, sync standby), what was seen) when a replication report shows the steady
    state — whichever node leads — else (None, what was seen).

    Steady: the check is OK or WARNING (nothing CRITICAL or unanswered); PostgreSQL has
    a leader and a member streaming as its synchronous standby, and Patroni agrees (its
    sync key names that standby: a switchover to it is accepted); HAProxy sends writes to
    the leader only.
    """
    from prontuario_cli.report import Status

    seen = f"check {report.status.name}: {report.summary}"
    roles = {m.node: m.role for m in report.members}
    sync = [r for r in report.replicas if r.kind == "member" and r.state == "streaming" and r.sync_state in ("sync", "quorum")]
    writers = sorted({h.node or h.server for h in report.haproxy if h.takes_writes})
    if report.status not in (Status.OK, Status.WARNING) or not report.leader or not sync:
        return None, seen
    standby = sync[0].node or sync[0].name
    if roles.get(standby) not in ("sync_standby", "quorum_standby"):
        return None, f"Patroni does not name {standby} sync standby yet (role {roles.get(standby)}); " + seen
    if report.haproxy and writers != [report.leader]:
        return None, f"HAProxy writes -> {', '.join(writers) or 'none'}, leader {report.leader}; " + seen
    return (report.leader, standby), seen


def _members(view) -> str:
    return ", ".join(f"{m.name}={m.role}/{m.state}" for m in view.members) or "none"


def _tally_line(m: dict[str, Any]) -> str:
    return (
        f"{m['writes_acked']} acked, {m['writes_failed']} failed, {m['writes_unknown']} unknown; "
        f"{m['lost_acked_writes']} acknowledged writes lost"
    )


def writes_flow(target, run_id: str) -> str:
    """Ten writes through ``target``, all acknowledged, within 5 s (each call its own rows)."""
    prepare_table(target)
    probe = pg_write_probe(target, f"{run_id}-check-{time.time_ns()}", max_duration_s=5.0).start()
    wait_for("10 writes acknowledged", lambda: probe.log.counts()["acked"] >= 10 or not probe.loop._thread.is_alive(), 5)
    log = probe.stop()
    counts = log.counts()
    if counts["acked"] < 10 or counts["failed"] or counts["unknown"]:
        first_error = next((a.error for a in log.attempts if a.error), "")
        raise StepFailed(f"writes do not flow: {counts} {first_error}")
    return f"{counts['acked']} writes acknowledged"
