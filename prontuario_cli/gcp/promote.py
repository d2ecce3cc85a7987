"""Promote the Cloud SQL replica when both Macs are lost: planned, guarded, resumable, timed.

Python API (the CLI and the monthly ``drill cloud`` both use it)::

    from prontuario_cli.gcp.promote import Promotion

    promotion = Promotion(inventory, instance=None, reason="both Macs lost (power)")
    print(promotion.preview().steps)       # read-only: Mac health, instance state, refusals
    report = promotion.run(resume=False)   # PromoteReport: steps with timings, RTO, RPO

A runbook on :mod:`prontuario_cli.runbook.engine`. Steps, in order (each recorded in
``gcp-promote-<instance>.json`` once done, so ``run(resume=True)`` continues after an
interruption and never runs a done step again, except the checks marked *every run*):

``check-macs``      Every run, before the journal: Patroni REST + PostgreSQL of each Mac,
                    bounded. A reachable Mac refuses the promotion (REFUSED) unless ``force``.
``fence-routing``   HAProxy: the Macs' servers in maintenance (write and read backends),
                    so a Mac that comes back can never take writes beside the cloud.
``fence-nodes``     Every run, only with ``force`` and a reachable Mac: stop
                    Patroni/PostgreSQL on it (replicas first, so Patroni cannot promote
                    one), then re-check.
``check-instance``  Every run: instances.get: a RUNNABLE read replica (or ours, already promoted).
``measure-lag``     On the replica: receive/replay LSN, last replayed commit (RPO).
``promote``         instances.promoteReplica — recorded as *sending* before the call and
                    *sent* after, so a resume polls or looks the operation up instead of
                    sending it again.
``wait-operation``  operations.get polled with backoff, up to ``cloud.operation_timeout_s``.
``verify-write``    A row written and read back on the instance (``prontuario_emergency_checks``).
``route-writes``    HAProxy: the cloud server (``cloud.haproxy_server``) enabled; its check
                    answers 200 now it is promoted; wait for UP; a write through the write
                    frontend must land on the cloud.
``set-flag``        ``gcp-fallback.json`` active, ``gcp_fallback_active 1`` in the textfile.
``notify``          ``cloud.notify_command`` with the event JSON on stdin.

RTO is measured from the moment this promotion first saw both Macs down (kept across
resumes; a drill may pass its own fault time as ``rto_start``) to the first write
acknowledged through the write path after promotion. RPO is an upper bound: the
time between the replica's last replayed commit and the moment the Macs were seen
down (see :meth:`~prontuario_cli.gcp.data.ReplicaLag.rpo_bound_s`). Both are compared
with ``targets.both_lost``.

A drill (``instance`` = ``cloud.drill_instance``, or ``drill=True``) refuses
``cloud.sql_instance``, and by default neither requires the Macs down nor touches
HAProxy or the emergency flag (pass ``require_macs_down``/``route_writes``/``set_flag``).

Rehearsing a resume: ``Promotion(..., stop_after="<step>")`` stops the run as if
interrupted (:class:`~prontuario_cli.runbook.engine.Interrupted`) right after that step
was recorded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from prontuario_cli.clock import iso, utc_now
from prontuario_cli.cluster.haproxy import check_rise_s
from prontuario_cli.cluster.nodes import is_lab
from prontuario_cli.errors import (
    ExitCode,
    OperationFailed,
    ProntuarioError,
    RefusedError,
    UnavailableError,
    UsageError,
)
from prontuario_cli.gcp import macs as m
from prontuario_cli.gcp.state import PROMOTE, CloudRunbook
from prontuario_cli.inventory import Inventory
from prontuario_cli.poll import wait_for
from prontuario_cli.report import Table
from prontuario_cli.runbook.engine import Step, StepResult, report_tables
from prontuario_cli.runbook.state import RunState


@dataclass(frozen=True)
class PromotePlan:
    """What ``run`` would do now; ``refusal`` says why it would refuse."""

    instance: str
    drill: bool
    resume: bool
    macs: tuple[m.MacHealth, ...]
    instance_state: str
    steps: tuple[str, ...]
    refusal: str | None = None
    refusal_hint: str | None = None
    state_file: str = ""

    def tables(self) -> list[Table]:
        out = [Table(f"plan: promote {self.instance}" + (" (drill)" if self.drill else ""), ("#", "step"),
                     tuple((i, s) for i, s in enumerate(self.steps, 1)))]
        if self.macs:
            out.append(Table("Macs", ("node", "state", "patroni", "postgres"), tuple((h.node, h.state, h.patroni, h.postgres) for h in self.macs)))
        out.append(Table("", ("instance", "state", "refusal"), ((self.instance, self.instance_state, self.refusal or "none"),)))
        return out


@dataclass(frozen=True)
class PromoteReport:
    """The outcome of a promotion (also what ``drill cloud`` records)."""

    instance: str
    drill: bool
    run_id: str
    reason: str
    resumed: bool
    completed: bool
    steps: tuple[StepResult, ...]
    macs: tuple[m.MacHealth, ...]
    operation: str | None
    rto_s: float | None
    rto_from: str
    rpo_s: float | None
    rto_target_s: float
    rpo_target_s: float
    lag: dict[str, Any] | None
    state_file: str
    write_target: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def rto_met(self) -> bool | None:
        return None if self.rto_s is None else self.rto_s <= self.rto_target_s

    @property
    def rpo_met(self) -> bool | None:
        return None if self.rpo_s is None else self.rpo_s <= self.rpo_target_s

    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.completed else ExitCode.FAILED

    def tables(self) -> list[Table]:
        def verdict(value, target, met):
            if value is None:
                return "not measured"
            return f"{value:.1f} s ({'met' if met else 'MISSED'}: target {target:g} s)"

        summary = (
            ("instance", self.instance + (" (drill)" if self.drill else "")),
            ("run", self.run_id + (" (resumed)" if self.resumed else "")),
            ("reason", self.reason),
            ("operation", self.operation or "-"),
            ("writes go to", self.write_target or "-"),
            ("RTO", verdict(self.rto_s, self.rto_target_s, self.rto_met) + f" from {self.rto_from}"),
            ("RPO (bound)", verdict(self.rpo_s, self.rpo_target_s, self.rpo_met)),
            ("state file", self.state_file),
        )
        return report_tables("promotion", self.completed, summary, self.steps, self.notes)


class Promotion(CloudRunbook):
    """One promotion of ``instance`` (default ``cloud.sql_instance``)."""

    title = "promotion"
    command = "gcp promote"
    kind = PROMOTE

    def __init__(
        self,
        inventory: Inventory,
        instance: str | None = None,
        reason: str = "",
        *,
        force: bool = False,
        drill: bool | None = None,
        require_macs_down: bool | None = None,
        route_writes: bool | None = None,
        set_flag: bool | None = None,
        notify: bool = True,
        rto_start: float | None = None,
        say: Callable[[str], None] | None = None,
        stop_after: str | None = None,
        client=None,
    ):
        from prontuario_cli.gcp.client import choose_instance

        self.instance, is_drill_instance = choose_instance(inventory, instance)
        self.drill = is_drill_instance if drill is None else drill
        if self.drill and self.instance == inventory.cloud.sql_instance:
            raise RefusedError(
                f"a drill never promotes the live replica {self.instance} (cloud.sql_instance)",
                hint="drills use cloud.drill_instance",
            )
        self.reason = reason.strip()
        self.force = force
        self.require_macs_down = (not self.drill) if require_macs_down is None else require_macs_down
        self.route_writes = (not self.drill) if route_writes is None else route_writes
        self.set_flag = (not self.drill) if set_flag is None else set_flag
        self.notify_enabled = notify
        self.rto_start = rto_start
        self._client = client
        self._macs: list[m.MacHealth] = []
        self._seen_down_at: float | None = None
        self._notes: list[str] = []
        super().__init__(inventory, self.instance, say=say, stop_after=stop_after)

    # ------------------------------------------------------------------ the steps, in order

    def steps(self) -> tuple[Step, ...]:
        from prontuario_cli.gcp.data import data_via
        from prontuario_cli.gcp.notify import notify_argv

        cloud = self.inv.cloud
        up = [h.node for h in self._macs if h.reachable]
        haproxy = self._haproxy().available
        server = cloud.haproxy_server
        macs = ", ".join(n.name for n in self.inv.macs)
        if up and self.force:
            fence = f"FENCE {', '.join(up)}: stop Patroni + PostgreSQL ({'lab processes' if is_lab(self.inv) else 'playbook over SSH'}), replicas first"
        elif up and self.require_macs_down:
            fence = f"REFUSE: {', '.join(up)} reachable (--force would fence)"
        else:
            fence = "no Mac to fence"
        if not self.route_writes:
            fence_routing, route_writes = "HAProxy: untouched (drill)", "writes not routed to the cloud (drill)"
        elif haproxy:
            fence_routing = f"HAProxy: put {macs} in maintenance (write + read backends)"
            route_writes = f"HAProxy: enable {self.inv.haproxy.write_backend}/{server}, wait UP, verify a write through the write frontend"
        else:
            fence_routing = "HAProxy: no runtime API configured — make sure no client can write to the Macs"
            route_writes = "no HAProxy runtime API: point the applications at the instance by hand"
        notify = ("notify: " + " ".join(notify_argv(cloud.notify_command))) if (cloud.notify_command and self.notify_enabled) else "notify: no cloud.notify_command — tell the users yourself"
        return (
            Step("check-macs", self._check_macs_down,
                 "check both Macs are down (Patroni REST + PostgreSQL, bounded)" if self.require_macs_down else "look at the Macs (not required down: drill)",
                 precondition=True),
            Step("fence-routing", self._fence_routing, fence_routing),
            Step("fence-nodes", self._fence_nodes, fence, repeatable=True, skip=self._nothing_to_fence),
            Step("check-instance", self._check_instance, f"instances.get {self.instance}: must be a RUNNABLE read replica", repeatable=True),
            Step("measure-lag", self._measure_lag, f"measure the replica's lag (RPO) through {data_via(self.inv)}"),
            Step("promote", self._promote, f"instances.promoteReplica {self.instance} (sent once, recorded before sending)"),
            Step("wait-operation", self._wait_operation, f"poll operations.get (backoff 0.5-5 s, up to {cloud.operation_timeout_s:g} s)"),
            Step("verify-write", self._verify_write, "write and read back one row on the promoted instance"),
            Step("route-writes", self._route_writes, route_writes),
            Step("set-flag", self._set_flag, "set gcp_fallback_active 1 (state file + metrics textfile)" if self.set_flag else "emergency flag untouched (drill)"),
            Step("notify", self._notify, notify),
        )

    # ------------------------------------------------------------------ the Macs

    def _check_macs(self) -> list[m.MacHealth]:
        health = m.mac_health(self.inv)
        if not any(h.reachable for h in health) and self._seen_down_at is None:
            self._seen_down_at = time.time()
        self._macs = health
        return health

    def _refusal_for(self, health: list[m.MacHealth]) -> tuple[str, str] | None:
        if not self.require_macs_down:
            return None
        up = [h for h in health if h.reachable]
        if not up or self.force:
            return None
        names = ", ".join(f"{h.node} ({h.state})" for h in up)
        primaries = [h.node for h in up if h.state == m.PRIMARY]
        if primaries:
            return (
                f"refusing to promote {self.instance}: {', '.join(primaries)} is the primary and answers: the Macs are serving",
                "emergency mode is only for when both Macs are lost; see what is wrong with: prontuario replication check",
            )
        return (
            f"refusing to promote {self.instance}: a Mac is still reachable: {names}",
            "if it is really lost or must be replaced, --force fences it first (stops Patroni/PostgreSQL) so two primaries never take writes",
        )

    def _nothing_to_fence(self) -> str | None:
        return None if self.force and any(h.reachable for h in self._macs) else "no reachable Mac"

    # ------------------------------------------------------------------ preview

    def preview(self, resume: bool = False) -> PromotePlan:
        """Read-only: Mac health, the instance's state, the steps, and any refusal."""
        state = RunState.load(self.state_path)
        refusal = hint = None
        if state is not None and not state.complete and not resume:
            refusal = f"a promotion of {self.instance} is already in progress (run {state.get('run_id')}, started {state.get('started_at')})"
            hint = "continue it with: prontuario gcp promote --resume"
        elif state is not None and state.complete and not resume:
            refusal = f"{self.instance} was already promoted (run {state.get('run_id')}, completed {state.get('completed_at')}): the fallback is active"
            hint = "see: prontuario gcp status; back to the Macs: prontuario gcp failback"
        elif resume and state is None:
            refusal, hint = f"nothing to resume: no promotion of {self.instance} was started here", "start one without --resume"
        health = self._check_macs() if (self.require_macs_down or self.route_writes) else []
        if refusal is None:
            found = self._refusal_for(health)
            if found:
                refusal, hint = found
        sent = state is not None and state.get("promote", {}).get("status") in ("sending", "sent")
        try:
            info = self.client.get_instance(self.instance)
            instance_state = f"{info.state}, {info.instance_type}" + (f" of {info.master}" if info.master else "")
            if refusal is None and not info.is_replica and not sent:
                refusal = f"{self.instance} is not a read replica ({info.instance_type}) and this host did not promote it"
                hint = "someone may have promoted it already (Cloud Console?): check, then see prontuario gcp status"
        except ProntuarioError as exc:
            if refusal is not None:
                instance_state = f"unknown: {exc.one_line()}"
            else:
                raise
        return PromotePlan(
            instance=self.instance,
            drill=self.drill,
            resume=resume,
            macs=tuple(health),
            instance_state=instance_state,
            steps=tuple(self.plan()),
            refusal=refusal,
            refusal_hint=hint,
            state_file=str(self.state_path),
        )

    # ------------------------------------------------------------------ the engine's hooks

    def admit(self, state: RunState | None, resume: bool) -> None:
        if state is not None and state.complete and not resume:
            raise RefusedError(
                f"{self.instance} was already promoted (run {state.get('run_id')}, completed {state.get('completed_at')})",
                hint="see: prontuario gcp status; back to the Macs: prontuario gcp failback",
            )
        super().admit(state, resume)
        if state is None and not self.reason:
            raise UsageError("a reason is required (it goes to the audit log and the notification)", hint="--reason 'both Macs lost: ...'")

    def new_run(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "project": self.inv.cloud.project,
            "drill": self.drill,
            "reason": self.reason,
            "started_epoch": time.time(),
            "inventory": self.inv.source,
            "route_writes": self.route_writes,
        }

    def opened(self, state: RunState) -> None:
        self.reason = state.get("reason") or self.reason
        if self._seen_down_at is not None and state.get("down_seen_epoch") is None and self.require_macs_down:
            state.set(down_seen_epoch=self._seen_down_at, down_seen_at=iso(self._seen_down_at))

    def audit_args(self, state: RunState | None) -> dict[str, Any]:
        return {"instance": self.instance, "drill": self.drill, "force": self.force, "reason": self.reason}

    def complete(self, state: RunState) -> None:
        rto_s, rpo_s = self._measures(state)
        state.set(completed_at=utc_now(), rto_s=rto_s, rpo_s=rpo_s)

    # ------------------------------------------------------------------ the steps

    def _check_macs_down(self, state: RunState | None) -> str:
        """Every run, before the journal (a Mac may have come back meanwhile)."""
        health = self._check_macs()
        found = self._refusal_for(health)
        if found:
            raise RefusedError(found[0], hint=found[1])
        return "; ".join(f"{h.node} {h.state}" for h in health) or "not checked"

    def _fence_routing(self, state: RunState) -> str:
        if not self.route_writes:
            return "skipped: drill leaves HAProxy alone"
        haproxy = self._haproxy()
        if not haproxy.available:
            self._notes.append("no HAProxy runtime API in the inventory (haproxy.socket): make sure nothing writes to the Macs")
            return "no HAProxy runtime API configured: nothing to fence in HAProxy"
        done = []
        routes = haproxy.routes()
        for node in self.inv.macs:
            for backend in (haproxy.write_backend, haproxy.read_backend):
                if any(r.proxy == backend and r.server == node.name for r in routes):
                    haproxy.maintenance(backend, node.name)
                    done.append(f"{backend}/{node.name}")
        state.set(fenced_routes=done)
        return "maintenance: " + (", ".join(done) or "no Mac servers found in HAProxy")

    def _fence_nodes(self, state: RunState) -> str:
        reachable = [h for h in self._macs if h.reachable]
        order = [h for h in reachable if h.state != m.PRIMARY] + [h for h in reachable if h.state == m.PRIMARY]
        done = []
        for h in order:
            self.say(f"  fencing {h.node} ({h.state}) …")
            done.append(f"{h.node}: {m.fence_node(self.inv, h.node)}")
        still: list[str] = []

        def fenced() -> bool:
            nonlocal still
            still = [h.node for h in m.mac_health(self.inv) if h.reachable]
            return not still

        wait_for(
            "the Macs fenced", fenced, 60, interval_s=0.5,
            on_timeout=lambda last: OperationFailed(f"fencing did not take: {', '.join(still)} still reachable after 60 s", hint="power the Mac off by hand, then --resume"),
        )
        if self._seen_down_at is None or state.get("down_seen_epoch") is None:
            now = time.time()
            state.set(down_seen_epoch=now, down_seen_at=iso(now), fenced=[h.node for h in order])
        return "; ".join(done)

    def _check_instance(self, state: RunState) -> str:
        info = self.client.get_instance(self.instance)
        sent = state.get("promote", {}).get("status") in ("sending", "sent")
        if info.state != "RUNNABLE" and not sent:
            raise OperationFailed(f"{self.instance} is {info.state}, not RUNNABLE", hint="see the instance in the Cloud Console; --resume when it is RUNNABLE")
        if not info.is_replica and not sent:
            raise RefusedError(f"{self.instance} is not a read replica ({info.instance_type}) and this host did not promote it", hint="check who promoted it; see prontuario gcp status")
        state.set(private_ip=info.private_ip, connection_name=info.connection_name)
        return f"{info.state}, {info.instance_type}" + (f" of {info.master}" if info.master else "")

    def _session(self, state: RunState, timeout_s: float = 30.0):
        from prontuario_cli.gcp.data import open_session

        return open_session(self.inv, self.instance, time.monotonic() + timeout_s, private_ip=state.get("private_ip"))

    def _measure_lag(self, state: RunState) -> str:
        from dataclasses import asdict

        from prontuario_cli.gcp.data import measure_lag

        if state.get("promote", {}).get("status") in ("sending", "sent"):
            return "skipped: the promotion was already sent"
        with self._session(state) as session:
            lag = measure_lag(session)
        if not lag.in_recovery:
            raise RefusedError(f"{self.instance} no longer follows the Macs (not in recovery, no subscription)", hint="it was promoted outside this run: check prontuario gcp status")
        down = state.get("down_seen_epoch") if self.require_macs_down else None
        rpo = lag.rpo_bound_s(down)
        state.set(lag=asdict(lag) | {"lag_s": lag.lag_s}, rpo_s=rpo)
        last = "never" if lag.lag_s is None else f"{lag.lag_s:.1f} s ago"
        return f"last replayed commit {last}; replay behind {lag.replay_behind_bytes} B; RPO bound {'unknown' if rpo is None else f'{rpo:.1f} s'}"

    def _promote(self, state: RunState) -> str:
        from prontuario_cli.connect.cloudsql import Conflict

        sent = state.get("promote") or {}
        if sent.get("status") == "sending":
            adopted = self._adopt(state, since=sent.get("sending_epoch"))
            if adopted:
                return adopted
            self.say("  the earlier promoteReplica never reached Google: sending it now")
        state.set(promote={"status": "sending", "sending_at": utc_now(), "sending_epoch": time.time()})
        try:
            op = self.client.promote_replica(self.instance)
        except Conflict:
            adopted = self._adopt(state, since=None)
            if adopted:
                return adopted
            state.set(promote={"status": "not sent"})
            raise
        except UnavailableError:
            # Timed out or Google unavailable: it may have arrived. Look before giving up.
            try:
                adopted = self._adopt(state, since=state.get("promote", {}).get("sending_epoch"))
            except ProntuarioError:
                adopted = None
            if adopted:
                return adopted
            raise  # the state still says "sending": --resume looks again before sending
        except ProntuarioError:
            state.set(promote={"status": "not sent"})  # refused (401/403/404/...): it did not happen
            raise
        state.set(promote={"status": "sent", "operation": op.name, "sent_at": utc_now(), "sent_epoch": time.time()})
        return f"promoteReplica accepted: operation {op.name} ({op.status})"

    def _adopt(self, state: RunState, since: float | None) -> str | None:
        """Find a promotion already sent (by us, before an interruption); record it instead of sending."""
        op = self.client.find_promotion(self.instance, since=since)
        if op is not None:
            state.set(promote={"status": "sent", "operation": op.name, "sent_at": op.insert_time, "adopted": True})
            return f"promoteReplica had already been sent: operation {op.name} ({op.status}); not sent again"
        info = self.client.get_instance(self.instance)
        if not info.is_replica:
            state.set(promote={"status": "sent", "operation": None, "adopted": True})
            return f"{self.instance} is already promoted ({info.instance_type}); not sent again"
        return None

    def _wait_operation(self, state: RunState) -> str:
        promote = state.get("promote") or {}
        name = promote.get("operation")
        polls = 0

        def on_poll(op):
            nonlocal polls
            polls += 1
            if polls == 1 or polls % 10 == 0:
                self.say(f"  operation {op.name}: {op.status}")

        if name:
            op = self.client.wait_operation(name, on_poll=on_poll)
            detail = f"operation {op.name} DONE after {polls} poll(s)"
        else:
            detail = "no operation to wait for (instance already promoted)"
        info = None

        def promoted() -> bool:
            nonlocal info
            info = self.client.get_instance(self.instance)
            return not info.is_replica

        wait_for(
            f"{self.instance} promoted", promoted, 60, interval_s=1,
            on_timeout=lambda last: OperationFailed(
                f"{self.instance} still reports {info.instance_type if info else last} 60 s after the operation finished", hint="--resume to look again"
            ),
        )
        state.set(promoted_epoch=time.time())
        return f"{detail}; {self.instance} is now {info.instance_type}"

    def _verify_write(self, state: RunState) -> str:
        from prontuario_cli.gcp.data import write_check

        def written() -> dict:
            with self._session(state) as session:
                return write_check(session, state.get("run_id"), f"gcp promote: emergency write check ({self.reason[:100]})")

        # The instance may restart right after promotion: its errors count as "not yet".
        row, _ = wait_for(
            f"a write on {self.instance}", written, 60, interval_s=1,
            on_timeout=lambda last: OperationFailed(f"no write acknowledged by {self.instance} within 60 s (last: {last})"),
        )
        now = time.time()
        state.set(check_row=row, first_write_epoch=state.get("first_write_epoch") or now, first_write_via="instance")
        return f"row {row['id']} written and read back on {row['server']}"

    def _route_writes(self, state: RunState) -> str:
        if not self.route_writes:
            return "skipped: drill does not route writes"
        haproxy = self._haproxy()
        if not haproxy.available:
            self._notes.append("no HAProxy runtime API: point the applications at the Cloud SQL instance by hand")
            return "no HAProxy runtime API configured: point the applications at the instance by hand"
        backend, server = haproxy.write_backend, self.inv.cloud.haproxy_server
        if not haproxy.has(backend, server):
            raise OperationFailed(f"HAProxy has no server {backend}/{server}", hint="set cloud.haproxy_server to the fallback's server name, then --resume")
        haproxy.ready(backend, server)
        waited = haproxy.wait_state(backend, server, True, check_rise_s(self.inv))
        writers = haproxy.writer()
        if writers != [server]:
            raise OperationFailed(f"HAProxy sends writes to {', '.join(writers) or 'nothing'}, not only to {server}", hint="put the Mac servers in maintenance, then --resume")
        row = self._write_through_haproxy(state)
        now = time.time()
        state.set(first_write_epoch=now, first_write_via="haproxy", write_target=f"{backend}/{server}")
        return f"{backend}/{server} UP after {waited:.1f} s; write {row['id']} through the write frontend landed on {row['server']}"

    def _write_through_haproxy(self, state: RunState) -> dict:
        from prontuario_cli.cluster.haproxy import haproxy_node
        from prontuario_cli.cluster.haproxy import mac_servers as ha_mac_servers
        from prontuario_cli.connect.cloudsql import DsnTarget, dsn_session
        from prontuario_cli.gcp.data import write_check
        from prontuario_cli.secrets import optional_secret

        node = haproxy_node(self.inv)
        data = self.inv.cloud.data
        user = data.user if data else self.inv.cluster.postgres_user
        database = data.database if data else self.inv.cluster.database
        password = optional_secret(data.password, "cloud.data.password") if data else None
        target = DsnTarget(node.address, node.ports.haproxy_write, user, database, password)
        def written() -> dict:
            with dsn_session(target, time.monotonic() + 10) as session:
                return write_check(session, state.get("run_id"), "gcp promote: write through HAProxy")

        row, _ = wait_for(
            "a write through HAProxy's write frontend", written, 30, interval_s=0.3,
            on_timeout=lambda last: OperationFailed(f"no write acknowledged through HAProxy's write frontend within 30 s: {last}"),
        )
        if row["server"] in ha_mac_servers(self.inv):
            raise RefusedError(f"a write through HAProxy landed on a Mac ({row['server']}): SPLIT BRAIN RISK", hint="fence the Macs in HAProxy now")
        return row

    def _set_flag(self, state: RunState) -> str:
        if not self.set_flag:
            return "skipped: drill leaves the emergency flag alone"
        from prontuario_cli.cluster.fallback import update_metric, write_fallback

        path = write_fallback(
            self.state_dir, True, since=utc_now(), instance=self.instance, reason=self.reason, run_id=state.get("run_id"), drill=self.drill
        )
        detail = f"{path} active"
        if self.inv.paths.metrics_textfile:
            written = update_metric(self.inv.paths.metrics_textfile, True)
            detail += f"; gcp_fallback_active 1 in {written}"
        else:
            self._notes.append("paths.metrics_textfile is not set: the GCPFallbackActivated alert will only fire at the next 'replication check --prometheus'")
        return detail

    def _notify(self, state: RunState) -> str:
        from prontuario_cli.gcp.notify import notify

        if not self.notify_enabled:
            return "skipped"
        event = {
            "event": "emergency-mode-on",
            "drill": self.drill,
            "instance": self.instance,
            "project": self.inv.cloud.project,
            "reason": self.reason,
            "run_id": state.get("run_id"),
            "at": utc_now(),
            "message": "Emergency mode is on: the platform runs on the cloud fallback with limited features.",
        }
        return notify(self.inv.cloud.notify_command, event)

    # ------------------------------------------------------------------ measures and report

    def _rto_origin(self, state: RunState) -> tuple[float | None, str]:
        if self.rto_start is not None:
            return self.rto_start, f"the fault ({iso(self.rto_start)})"
        if state.get("down_seen_epoch") is not None:
            return state.get("down_seen_epoch"), f"both Macs seen down ({state.get('down_seen_at')})"
        return state.get("started_epoch"), f"the start of the command ({state.get('started_at')})"

    def _measures(self, state: RunState) -> tuple[float | None, float | None]:
        start, _ = self._rto_origin(state)
        end = state.get("first_write_epoch")
        rto = round(end - start, 3) if (start is not None and end is not None) else None
        return rto, state.get("rpo_s")

    def report(self, state: RunState, resumed: bool) -> PromoteReport:
        _, origin = self._rto_origin(state)
        rto, rpo = state.get("rto_s"), state.get("rpo_s")
        if rto is None:
            rto, rpo = self._measures(state)
        targets = self.inv.targets.both_lost
        return PromoteReport(
            instance=self.instance,
            drill=bool(state.get("drill")),
            run_id=str(state.get("run_id")),
            reason=str(state.get("reason") or ""),
            resumed=resumed,
            completed=state.complete,
            steps=tuple(self.step_results(state)),
            macs=tuple(self._macs),
            operation=(state.get("promote") or {}).get("operation"),
            rto_s=rto,
            rto_from=origin,
            rpo_s=rpo,
            rto_target_s=targets.rto_s,
            rpo_target_s=targets.rpo_s,
            lag=state.get("lag"),
            state_file=str(state.path),
            write_target=state.get("write_target") or (self.instance if state.done("verify-write") else None),
            notes=tuple(self._notes),
        )

