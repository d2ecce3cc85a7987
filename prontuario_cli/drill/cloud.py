"""The monthly cloud-fallback drill (brief: both Macs lost → RTO < 5 min, RPO < 60 s).

Both Macs go down (the lab: kill -9 of both Patroni + PostgreSQL), the cloud replica is
promoted through the same code path as ``gcp promote`` — always the inventory's
``cloud.drill_instance``, never the live replica — emergency read/write is verified, and
RTO/RPO are measured: RTO from the fault to the first write acknowledged by the promoted
instance, RPO as the acknowledged writes (and their time span) the cloud never got. The
rollback brings both Macs back and rebuilds the cloud replica.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from prontuario_cli.cluster import haproxy as ha
from prontuario_cli.cluster import patroni
from prontuario_cli.cluster.nodes import node_access
from prontuario_cli.drill.engine import Activity, StepFailed
from prontuario_cli.drill.journal import TargetCheck
from prontuario_cli.drill.probes import TABLE, pg_write_probe
from prontuario_cli.errors import RefusedError
from prontuario_cli.inventory import Inventory
from prontuario_cli.poll import wait_for


class CloudDrill:
    drill = "cloud"
    mode = "both-macs-lost"

    def __init__(self, inventory: Inventory, run_id: str, say: Callable[[str], None], *, recovery_timeout_s: float = 600.0, progress: Callable[[dict], None] | None = None):
        cloud = inventory.cloud
        if cloud is None or not cloud.drill_instance:
            raise RefusedError(
                "the cloud drill needs cloud.drill_instance in the inventory (a clone or dedicated replica)",
                hint="it never promotes the live replica (cloud.sql_instance)",
            )
        self.inv = inventory
        self.instance = cloud.drill_instance
        self.run_id = run_id
        self.say = say
        self.progress = progress
        self.timeout = recovery_timeout_s
        self.writes = None
        self.t_fault: float | None = None
        self.fault_epoch: float | None = None
        self.promotion = None
        self.leader: str | None = None
        self.m: dict[str, Any] = {}
        self.faulted = False

    def plan(self) -> list[str]:
        return [
            f"check: a Patroni leader with a sync standby; {self.instance} is a streaming replica; writes flow",
            "start a write probe (every 20 ms) through HAProxy's write frontend",
            "fault: both Macs down (kill -9 of Patroni and PostgreSQL on each)",
            f"promote {self.instance} through the 'gcp promote' code path (drill mode: no HAProxy routing, no emergency flag)",
            "verify an emergency write and read on the promoted instance; count the acknowledged writes it lacks",
            f"rollback: start both Macs, wait for a leader and a sync standby, rebuild {self.instance} as a replica, archive the promotion state",
        ]

    # ------------------------------------------------------------------ steady state

    def steady_state(self) -> list[Activity]:
        return [
            Activity("Patroni: a leader with a streaming sync standby", self._cluster_ok),
            Activity(f"{self.instance} is a streaming replica", self._replica_ok),
            Activity("writes flow through HAProxy", self._writes_ok),
            Activity(f"a write on the Macs reaches {self.instance} within the RPO target", self._replication_works),
        ]

    def _replication_works(self) -> str:
        """End to end: a row written through HAProxy must appear on the cloud replica.

        A replica can say it follows the Macs and still not receive their rows (an apply
        worker stuck, a diverged replica): the drill must not promote it and call the loss
        an RPO.
        """
        from prontuario_cli.gcp.follow import NotFollowing, marker_arrives

        try:
            arrival = marker_arrives(self.inv, self.instance, f"{self.run_id}-replication-{time.time_ns()}")
        except NotFollowing as exc:
            raise StepFailed(
                exc.message,
                hint="prontuario replication check shows why (subscription, slot); the lab's stand-in: Lab.rebuild_standin()",
            ) from None
        self.m["replication_delay_s"] = arrival.delay_s
        return f"arrived after {arrival.delay_s:.2f} s"

    def _cluster_ok(self) -> str:
        view = patroni.cluster_view(self.inv)
        if view.paused or not view.leader or not patroni.sync_standby(view):
            raise StepFailed(f"need an unpaused leader with a streaming sync standby: {[(m.name, m.role, m.state) for m in view.members]}")
        self.leader = view.leader
        return f"leader {view.leader}, sync standby {patroni.sync_standby(view)}"

    def _replica_ok(self) -> str:
        from prontuario_cli.gcp.data import open_session, read_lag

        with open_session(self.inv, self.instance, time.monotonic() + 10) as session:
            lag = read_lag(session)
        if not lag.in_recovery:
            raise StepFailed(f"{self.instance} is not a replica (already promoted?): rebuild it first")
        self.m["replica_lag_before_s"] = lag.lag_s
        return f"replica, lag {lag.lag_s if lag.lag_s is not None else 'unknown'} s"

    def _writes_ok(self) -> str:
        from prontuario_cli.drill.failover import writes_flow

        return writes_flow(ha.frontend_target(self.inv, application_name="prontuario-drill"), self.run_id)

    # ------------------------------------------------------------------ method

    def method(self) -> list[Activity]:
        return [
            Activity("start the write probe", self._start),
            Activity("fault: both Macs down", self._fault),
            Activity(
                f"promote {self.instance} (gcp promote code path)", self._promote,
                target_s=self.inv.targets.both_lost.rto_s, label="RTO",
                since=lambda: self.writes.log.started_mono + self.t_fault if self.writes is not None and self.t_fault is not None else None,
            ),
            Activity("emergency read/write on the promoted instance; count lost writes", self._verify),
        ]

    def _start(self) -> str:
        self.writes = pg_write_probe(ha.frontend_target(self.inv, application_name="prontuario-drill"), self.run_id, max_duration_s=self.timeout + 120).start()
        wait_for("baseline writes acknowledged", lambda: self.writes.log.counts()["acked"] >= 10, 10)
        # Let the asynchronous cloud replica receive the baseline, as a steady cluster would.
        time.sleep(2.0)
        return f"{self.writes.log.counts()['acked']} writes acknowledged before the fault"

    def _fault(self) -> str:
        actions = node_access(self.inv)
        self.t_fault = time.monotonic() - self.writes.log.started_mono
        self.fault_epoch = time.time()
        self.faulted = True
        done = [f"{node.name}: {actions.act(node.name, 'postgres', 'kill')}" for node in self.inv.macs]
        return "; ".join(done)

    def _promote(self) -> str:
        from prontuario_cli.gcp.promote import Promotion

        self.promotion = Promotion(
            self.inv,
            self.instance,
            f"monthly cloud-fallback drill {self.run_id}",
            drill=True,
            require_macs_down=True,
            route_writes=False,
            set_flag=False,
            notify=False,
            rto_start=self.fault_epoch,
            say=self.say,
        )
        report = self.promotion.run()
        self.m.update(rto_s=report.rto_s, promote_rpo_bound_s=report.rpo_s, operation=report.operation)
        self.m["promote_steps"] = {s.step: s.seconds for s in report.steps}
        if not report.completed:
            raise StepFailed(f"the promotion of {self.instance} did not complete")
        return f"promoted; first emergency write {report.rto_s:.1f} s after both Macs went down"

    def _verify(self) -> str:
        from prontuario_cli.gcp.data import open_session

        log = self.writes.stop()
        acked = {a.seq: a for a in log.attempts if a.outcome == "acked" and a.sent < self.t_fault}
        with open_session(self.inv, self.instance, time.monotonic() + 30) as session:
            rows = session.execute(f"SELECT seq FROM {TABLE} WHERE run_id = %s", (self.run_id,))
            present = {row["seq"] for row in rows}
            session.execute(f"INSERT INTO {TABLE} (run_id, seq) VALUES (%s, %s)", (f"{self.run_id}-emergency", 1))
            read_back = session.execute(f"SELECT count(*) AS n FROM {TABLE} WHERE run_id = %s", (f"{self.run_id}-emergency",))
        if not read_back or read_back[0]["n"] != 1:
            raise StepFailed(f"an emergency write on {self.instance} could not be read back")
        lost = sorted(set(acked) - present)
        kept = [acked[s].done for s in acked if s in present]
        # The window of acknowledged data the cloud never got: from the last write it has
        # (or, when it has none of them, the promotion's own bound from the replica's last
        # replayed commit) to the fault.
        if not lost:
            window = 0.0
        elif kept:
            window = self.t_fault - max(kept)
        else:
            window = max(self.t_fault - acked[lost[0]].done, self.m.get("promote_rpo_bound_s") or 0.0)
        self.m.update(writes_acked_before_fault=len(acked), lost_acked_writes=len(lost), rpo_s=round(window, 3))
        return f"emergency write and read OK; {len(lost)} of {len(acked)} acknowledged writes missing (RPO {self.m['rpo_s']:.2f} s)"

    def steady_state_after(self) -> list[Activity]:
        return [Activity(f"{self.instance} is a primary taking writes", self._promoted_ok)]

    def _promoted_ok(self) -> str:
        from prontuario_cli.gcp.data import open_session, read_lag

        with open_session(self.inv, self.instance, time.monotonic() + 10) as session:
            if read_lag(session).in_recovery:
                raise StepFailed(f"{self.instance} still follows the Macs (in recovery, or subscribed): not promoted")
        return "primary"

    # ------------------------------------------------------------------ rollback

    def rollback(self) -> list[Activity]:
        if not self.faulted:
            return [Activity("nothing to roll back (no fault was injected)", lambda: "nothing was changed")]
        return [
            Activity("stop the write probe", self._stop_probe),
            Activity("start both Macs", self._start_macs),
            Activity("a leader with a streaming sync standby again", self._wait_cluster),
            Activity(f"rebuild {self.instance} as a replica of the Macs", self._rebuild_replica),
            Activity("HAProxy's cloud backup server is DOWN again (it must not take writes)", self._backup_down),
            Activity("archive the drill's promotion state", self._archive),
        ]

    def _stop_probe(self) -> str:
        if self.writes is not None and self.writes.loop._thread.is_alive():
            self.writes.stop()
        return "stopped"

    def _start_macs(self) -> str:
        actions = node_access(self.inv)
        return "; ".join(f"{node.name}: {actions.act(node.name, 'postgres', 'start')}" for node in self.inv.macs)

    def _wait_cluster(self) -> str:
        def ready():
            # /cluster alone can show the members' last words from etcd right after a
            # restart: ask each node's own REST contract, and write through HAProxy.
            view = patroni.cluster_view(self.inv)
            leader, standby = view.leader, patroni.sync_standby(view)
            if not (leader and standby):
                return None
            deadline = time.monotonic() + self.inv.health_checks.timeout_s
            for name, path in ((leader, "/primary"), (standby, "/sync")):
                node = self.inv.node(name)
                if patroni.rest_status(node, path, deadline) != 200:
                    return None
            self._writes_ok()
            return f"leader {leader}, sync standby {standby}"

        text, waited = wait_for("a leader with a sync standby, taking writes", ready, 180, interval_s=0.5)
        self.m["macs_back_s"] = waited
        return f"{text} after {waited:.1f} s"

    def _rebuild_replica(self) -> str:
        if node_access(self.inv).rebuild_cloud_replica() is None:
            raise StepFailed(
                f"re-create {self.instance} as a replica of the Macs in the Cloud SQL console (or gcloud), then check it with 'prontuario gcp status'"
            )
        wait_for(f"{self.instance} accepting connections as a replica", self._replica_ok, 120, interval_s=0.5)
        return self._replication_works()

    def _backup_down(self) -> str:
        from prontuario_cli.drill.watch import snapshot

        server = self.inv.cloud.haproxy_server
        _, waited = wait_for(f"HAProxy {server} out of the write backend", lambda: server not in snapshot(self.inv).write_up, 60)
        return f"{server} down after {waited:.1f} s"

    def _archive(self) -> str:
        from prontuario_cli.runbook.state import RunState

        if self.promotion is None:
            return "no promotion was started"
        state = RunState.load(self.promotion.state_path)
        return f"archived to {state.archive()}" if state is not None else "no state file"

    # ------------------------------------------------------------------ results

    def measurements(self) -> dict[str, Any]:
        return {"instance": self.instance, "old_leader": self.leader, **self.m}

    def targets(self) -> list[TargetCheck]:
        target = self.inv.targets.both_lost
        rto, rpo = self.m.get("rto_s"), self.m.get("rpo_s")
        return [
            TargetCheck("RTO (both Macs down → first emergency write)", rto, target.rto_s, "s", "<", rto is not None and rto < target.rto_s),
            TargetCheck("RPO (span of acknowledged writes lost)", rpo, target.rpo_s, "s", "<", rpo is not None and rpo < target.rpo_s),
        ]
