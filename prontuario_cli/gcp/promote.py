"""Promote the Cloud SQL replica when both Macs are lost: planned, guarded, resumable, timed.

Python API (the CLI and the monthly ``drill cloud`` both use it)::

    from prontuario_cli.gcp.promote import Promotion

    promotion = Promotion(inventory, instance=None, reason="both Macs lost (power)")
    print(promotion.plan().steps)          # read-only: Mac health, instance state, refusals
    report = promotion.run(resume=False)   # PromoteReport: steps with timings, RTO, RPO

Steps, in order (each recorded in ``gcp-promote-<instance>.json`` once done, so
``run(resume=True)`` continues after an interruption and never runs a done step again):

``check-macs``      Patroni REST + PostgreSQL of each Mac, bounded. A reachable Mac
                    refuses the promotion (REFUSED) unless ``force``.
``fence-routing``   HAProxy: the Macs' servers in maintenance (write and read backends),
                    so a Mac that comes back can never take writes beside the cloud.
``fence-nodes``     Only with ``force`` and a reachable Mac: stop Patroni/PostgreSQL on
                    it (replicas first, so Patroni cannot promote one), then re-check.
``check-instance``  instances.get: a RUNNABLE read replica (or ours, already promoted).
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

Rehearsing a resume: ``PRONTUARIO_GCP_STOP_AFTER=<step>`` (or ``stop_after``) stops the
run as if interrupted right after that step was recorded.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from prontuario_cli.cluster.haproxy import check_rise_s
from prontuario_cli.errors import (
    ExitCode,
    OperationFailed,
    ProntuarioError,
    RefusedError,
    UnavailableError,
    UsageError,
)
from prontuario_cli.gcp import macs as m
from prontuario_cli.gcp.runbook import Runbook
from prontuario_cli.gcp.state import RunState, gcp_lock, run_tables, utc_now
from prontuario_cli.inventory import Inventory
from prontuario_cli.report import Table

STEPS = (
    "check-macs",
    "fence-routing",
    "fence-nodes",
    "check-instance",
    "measure-lag",
    "promote",
    "wait-operation",
    "verify-write",
    "route-writes",
    "set-flag",
    "notify",
)
STOP_AFTER_ENV = "PRONTUARIO_GCP_STOP_AFTER"


class Interrupted(KeyboardInterrupt):
    """Raised by the rehearsal hook: behaves like Ctrl-C right after a step."""


@dataclass(frozen=True)
class StepResult:
    step: str
    status: str  # done, already done, skipped, failed
    seconds: float | None
    detail: str


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
        return run_tables("promotion", self.completed, summary, self.steps, self.notes)


class Promotion(Runbook):
    """One promotion of ``instance`` (default ``cloud.sql_instance``)."""

    kind = "promote"

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

        self.inv = inventory
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
        self.say = say or (lambda text: None)
        self.stop_after = stop_after or os.environ.get(STOP_AFTER_ENV) or None
        if self.stop_after and self.stop_after not in STEPS:
            raise UsageError(f"{STOP_AFTER_ENV}={self.stop_after!r} is not a step", hint=f"one of: {', '.join(STEPS)}")
        self._client = client
        self._macs: list[m.MacHealth] = []
        self._seen_down_at: float | None = None
        self._results: list[StepResult] = []
        self._notes: list[str] = []

    # ------------------------------------------------------------------ helpers

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
        return (
            f"refusing to promote {self.instance}: a Mac is still reachable: {names}",
            "if it is really lost or must be replaced, --force fences it first (stops Patroni/PostgreSQL) so two primaries never take writes",
        )

    # ------------------------------------------------------------------ plan

    def plan(self, resume: bool = False) -> PromotePlan:
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
            steps=tuple(self._describe_steps(state, health)),
            refusal=refusal,
            refusal_hint=hint,
            state_file=str(self.state_path),
        )

    def _describe_steps(self, state: RunState | None, health: list[m.MacHealth]) -> list[str]:
        from prontuario_cli.gcp.data import data_via
        from prontuario_cli.gcp.notify import notify_argv

        cloud = self.inv.cloud
        up = [h.node for h in health if h.reachable]
        haproxy = self._haproxy().available
        server = cloud.haproxy_server
        macs = ", ".join(n.name for n in self.inv.macs)
        text = {
            "check-macs": "check both Macs are down (Patroni REST + PostgreSQL, bounded)" if self.require_macs_down else "look at the Macs (not required down: drill)",
            "fence-routing": (f"HAProxy: put {macs} in maintenance (write + read backends)" if haproxy else "HAProxy: no runtime API configured — make sure no client can write to the Macs")
            if self.route_writes else "HAProxy: untouched (drill)",
            "fence-nodes": (f"FENCE {', '.join(up)}: stop Patroni + PostgreSQL ({'lab processes' if self.inv.lab else 'playbook over SSH'}), replicas first" if up and self.force else (f"REFUSE: {', '.join(up)} reachable (--force would fence)" if up and self.require_macs_down else "no Mac to fence")),
            "check-instance": f"instances.get {self.instance}: must be a RUNNABLE read replica",
            "measure-lag": f"measure the replica's lag (RPO) through {data_via(self.inv)}",
            "promote": f"instances.promoteReplica {self.instance} (sent once, recorded before sending)",
            "wait-operation": f"poll operations.get (backoff 0.5-5 s, up to {cloud.operation_timeout_s:g} s)",
            "verify-write": "write and read back one row on the promoted instance",
            "route-writes": (f"HAProxy: enable {self.inv.haproxy.write_backend}/{server}, wait UP, verify a write through the write frontend" if haproxy else "no HAProxy runtime API: point the applications at the instance by hand")
            if self.route_writes else "writes not routed to the cloud (drill)",
            "set-flag": "set gcp_fallback_active 1 (state file + metrics textfile)" if self.set_flag else "emergency flag untouched (drill)",
            "notify": ("notify: " + " ".join(notify_argv(cloud.notify_command))) if (cloud.notify_command and self.notify_enabled) else "notify: no cloud.notify_command — tell the users yourself",
        }
        return [f"{text[s]}" + (" (done)" if state is not None and state.done(s) else "") for s in STEPS]

    # ------------------------------------------------------------------ run

    def run(self, resume: bool = False) -> PromoteReport:
        """Run (or with ``resume`` continue) the promotion; returns the report.

        Raises RefusedError before changing anything when a rule says no, and the
        step's error (with the state saved) when a step fails: run again with resume.
        """
        from prontuario_cli.paths import state_dir

        with gcp_lock(state_dir(self.inv), f"promote {self.instance}"):
            return self._run(resume)

    def _run(self, resume: bool) -> PromoteReport:
        state = RunState.load(self.state_path)
        if resume and state is None:
            raise UsageError(f"nothing to resume: no promotion of {self.instance} was started here ({self.state_path})", hint="start one without --resume")
        if state is not None and not resume:
            if state.complete:
                raise RefusedError(
                    f"{self.instance} was already promoted (run {state.get('run_id')}, completed {state.get('completed_at')})",
                    hint="see: prontuario gcp status; back to the Macs: prontuario gcp failback",
                )
            raise RefusedError(
                f"a promotion of {self.instance} is already in progress (run {state.get('run_id')}, started {state.get('started_at')})",
                hint="continue it with: prontuario gcp promote --resume",
            )
        if state is not None and state.complete:
            self.say(f"promotion of {self.instance} already complete (run {state.get('run_id')})")
            return self._report(state, resumed=True)
        if state is None and not self.reason:
            raise UsageError("a reason is required (it goes to the audit log and the notification)", hint="--reason 'both Macs lost: ...'")

        # check-macs: every run, resumed or not (a Mac may have come back meanwhile).
        started = time.monotonic()
        with self._audited("check-macs") as audit_details:
            health = self._check_macs()
            found = self._refusal_for(health)
            if found:
                raise RefusedError(found[0], hint=found[1])
            detail = "; ".join(f"{h.node} {h.state}" for h in health) or "not checked"
            audit_details["detail"] = detail

        if state is None:
            state = RunState.create(
                self.state_path,
                run_id=f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}",
                instance=self.instance,
                project=self.inv.cloud.project,
                drill=self.drill,
                reason=self.reason,
                started_at=utc_now(),
                started_epoch=time.time(),
                inventory=self.inv.source,
                route_writes=self.route_writes,
            )
        else:
            self.say(f"resuming promotion {state.get('run_id')} of {self.instance}")
        self.reason = state.get("reason") or self.reason
        if self._seen_down_at is not None and state.get("down_seen_epoch") is None and self.require_macs_down:
            state.set(down_seen_epoch=self._seen_down_at, down_seen_at=_iso(self._seen_down_at))
        self._record(state, "check-macs", detail, time.monotonic() - started)

        self._step(state, "fence-routing", self._fence_routing, once=True)
        if self.force and any(h.reachable for h in health):
            self._step(state, "fence-nodes", lambda st: self._fence_nodes(st, health), once=False)
        elif not state.done("fence-nodes"):
            self._results.append(StepResult("fence-nodes", "skipped", None, "no reachable Mac"))
        self._step(state, "check-instance", self._check_instance, once=False)
        self._step(state, "measure-lag", self._measure_lag, once=True)
        self._step(state, "promote", self._promote, once=True)
        self._step(state, "wait-operation", self._wait_operation, once=True)
        self._step(state, "verify-write", self._verify_write, once=True)
        self._step(state, "route-writes", self._route_writes, once=True)
        self._step(state, "set-flag", self._set_flag, once=True)
        self._step(state, "notify", self._notify, once=True)
        rto_s, rpo_s = self._measures(state)
        state.set(completed_at=utc_now(), rto_s=rto_s, rpo_s=rpo_s)
        return self._report(state, resumed=resume)

    # ------------------------------------------------------------------ step machinery

    def _step(self, state: RunState, name: str, action: Callable[[RunState], str], *, once: bool) -> None:
        if once and state.done(name):
            self._results.append(StepResult(name, "already done", state.details(name).get("seconds"), state.details(name).get("detail", "")))
            return
        self.say(f"→ {name} …")
        started = time.monotonic()
        state.mark(name, "started")
        try:
            with self._audited(name) as audit_details:
                detail = action(state)
                audit_details["detail"] = detail
        except BaseException as exc:
            seconds = round(time.monotonic() - started, 3)
            message = exc.one_line() if isinstance(exc, ProntuarioError) else ("interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}")
            state.mark(name, "failed", error=message, seconds=seconds)
            self._results.append(StepResult(name, "failed", seconds, message))
            self.say(f"✗ {name}: {message}")
            raise
        self._record(state, name, detail, time.monotonic() - started)

    def _record(self, state: RunState, name: str, detail: str, seconds: float) -> None:
        seconds = round(seconds, 3)
        state.mark(name, "done", detail=detail, seconds=seconds)
        self._results.append(StepResult(name, "done", seconds, detail))
        self.say(f"✓ {name} ({seconds:.1f} s): {detail}")
        if self.stop_after == name:
            raise Interrupted(f"stopped after {name} ({STOP_AFTER_ENV})")

    def _audited(self, step: str):
        """One audit entry per step, whatever its outcome (ok, failed, refused, interrupted)."""
        from prontuario_cli import audit

        args = {"instance": self.instance, "drill": self.drill, "force": self.force, "reason": self.reason}
        return audit.action(audit.log_for(self.inv), f"gcp promote: {step}", args)

    # ------------------------------------------------------------------ the steps

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

    def _fence_nodes(self, state: RunState, health: list[m.MacHealth]) -> str:
        reachable = [h for h in health if h.reachable]
        order = [h for h in reachable if h.state != m.PRIMARY] + [h for h in reachable if h.state == m.PRIMARY]
        done = []
        for h in order:
            self.say(f"  fencing {h.node} ({h.state}) …")
            done.append(f"{h.node}: {m.fence_node(self.inv, h.node)}")
        deadline = time.monotonic() + 60
        while True:
            still = [h.node for h in m.mac_health(self.inv) if h.reachable]
            if not still:
                break
            if time.monotonic() >= deadline:
                raise OperationFailed(f"fencing did not take: {', '.join(still)} still reachable after 60 s", hint="power the Mac off by hand, then --resume")
            time.sleep(0.5)
        if self._seen_down_at is None or state.get("down_seen_epoch") is None:
            now = time.time()
            state.set(down_seen_epoch=now, down_seen_at=_iso(now), fenced=[h.node for h in order])
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
            raise RefusedError(f"{self.instance} answers read-write already (not in recovery)", hint="it was promoted outside this run: check prontuario gcp status")
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
        deadline = time.monotonic() + 60
        while True:
            info = self.client.get_instance(self.instance)
            if not info.is_replica:
                break
            if time.monotonic() >= deadline:
                raise OperationFailed(f"{self.instance} still reports {info.instance_type} 60 s after the operation finished", hint="--resume to look again")
            time.sleep(1)
        state.set(promoted_epoch=time.time())
        return f"{detail}; {self.instance} is now {info.instance_type}"

    def _verify_write(self, state: RunState) -> str:
        from prontuario_cli.gcp.data import write_check

        deadline = time.monotonic() + 60
        last = ""
        while True:
            try:
                with self._session(state) as session:
                    row = write_check(session, state.get("run_id"), f"gcp promote: emergency write check ({self.reason[:100]})")
                break
            except ProntuarioError as exc:  # the instance may restart right after promotion
                last = exc.one_line()
                if time.monotonic() >= deadline:
                    raise OperationFailed(f"no write acknowledged by {self.instance} within 60 s (last: {last})") from None
                time.sleep(1)
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
        mac_servers = ha_mac_servers(self.inv)
        deadline = time.monotonic() + 30
        while True:
            try:
                with dsn_session(target, time.monotonic() + 10) as session:
                    row = write_check(session, state.get("run_id"), "gcp promote: write through HAProxy")
                if row["server"] in mac_servers:
                    raise RefusedError(f"a write through HAProxy landed on a Mac ({row['server']}): SPLIT BRAIN RISK", hint="fence the Macs in HAProxy now")
                return row
            except RefusedError:
                raise
            except ProntuarioError as exc:
                if time.monotonic() >= deadline:
                    raise OperationFailed(f"no write acknowledged through HAProxy's write frontend within 30 s: {exc.one_line()}") from None
                time.sleep(0.3)

    def _set_flag(self, state: RunState) -> str:
        if not self.set_flag:
            return "skipped: drill leaves the emergency flag alone"
        from prontuario_cli.gcp.state import update_metric, write_fallback
        from prontuario_cli.paths import state_dir

        path = write_fallback(
            state_dir(self.inv), True, since=utc_now(), instance=self.instance, reason=self.reason, run_id=state.get("run_id"), drill=self.drill
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
            return self.rto_start, f"the fault ({_iso(self.rto_start)})"
        if state.get("down_seen_epoch") is not None:
            return state.get("down_seen_epoch"), f"both Macs seen down ({state.get('down_seen_at')})"
        return state.get("started_epoch"), f"the start of the command ({state.get('started_at')})"

    def _measures(self, state: RunState) -> tuple[float | None, float | None]:
        start, _ = self._rto_origin(state)
        end = state.get("first_write_epoch")
        rto = round(end - start, 3) if (start is not None and end is not None) else None
        return rto, state.get("rpo_s")

    def _report(self, state: RunState, resumed: bool) -> PromoteReport:
        _, origin = self._rto_origin(state)
        rto, rpo = state.get("rto_s"), state.get("rpo_s")
        if rto is None:
            rto, rpo = self._measures(state)
        targets = self.inv.targets.both_lost
        results = self._results or [
            StepResult(s, "done" if state.done(s) else state.steps.get(s, {}).get("status", "not run"), state.details(s).get("seconds"), state.details(s).get("detail", ""))
            for s in STEPS
        ]
        return PromoteReport(
            instance=self.instance,
            drill=bool(state.get("drill")),
            run_id=str(state.get("run_id")),
            reason=str(state.get("reason") or ""),
            resumed=resumed,
            completed=state.complete,
            steps=tuple(results),
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


def _iso(epoch: float) -> str:
    import datetime as _dt

    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
