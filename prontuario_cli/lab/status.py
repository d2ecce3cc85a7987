"""What the lab looks like now, and the reports ``lab up/status/down`` print.

JSON (stable keys): ``{"dir", "profile", "base_port", "healthy", "components": [{"name",
"kind", "node", "pid", "alive", "port", "role", "healthy", "detail", "log"}]}``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from prontuario_cli.connect import as_int
from prontuario_cli.errors import ExitCode
from prontuario_cli.lab import health
from prontuario_cli.lab.components import Component, components, log_of
from prontuario_cli.lab.procs import alive, postmaster_pid, running_pid, stopped
from prontuario_cli.lab.spec import LabSpec
from prontuario_cli.report import Nagios, Perf, Status, Table


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    kind: str
    node: str | None
    pid: int | None
    alive: bool
    port: int | None
    role: str | None
    healthy: bool
    detail: str
    log: str


@dataclass(frozen=True)
class LabStatus:
    dir: str
    profile: str
    base_port: int
    healthy: bool
    components: tuple[ComponentStatus, ...]

    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.healthy else ExitCode.CRITICAL

    def nagios(self) -> Nagios:
        bad = [c.name for c in self.components if not c.healthy]
        up = sum(1 for c in self.components if c.healthy)
        perf = (Perf("healthy", up, min=0, max=len(self.components)),)
        if not bad:
            return Nagios(Status.OK, f"lab {self.dir}: all {up} components healthy", perf)
        return Nagios(Status.CRITICAL, f"lab {self.dir}: not healthy: {', '.join(bad)}", perf)

    def tables(self) -> list[Table]:
        rows = tuple(
            (c.name, c.pid, c.alive, c.port, c.role, "ok" if c.healthy else "DOWN", c.detail) for c in self.components
        )
        title = f"lab {self.dir} (profile {self.profile}, base port {self.base_port})"
        return [Table(title, ("component", "pid", "alive", "port", "role", "health", "detail"), rows)]


@dataclass(frozen=True)
class LabUpReport:
    """``lab up``: what was started, how long it took, and the status at the end."""

    fresh: bool
    started: tuple[str, ...]
    seconds: float
    inventory: str
    status: LabStatus

    def exit_code(self) -> ExitCode:
        return self.status.exit_code()

    def tables(self) -> list[Table]:
        summary = Table(
            "",
            ("fresh", "started", "seconds", "inventory"),
            ((self.fresh, len(self.started), self.seconds, self.inventory),),
        )
        return [summary, *self.status.tables()]


@dataclass(frozen=True)
class LabDownReport:
    dir: str
    stopped: tuple[str, ...]
    purged: bool
    seconds: float
    left_running: tuple[int, ...] = ()

    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if self.left_running else ExitCode.OK

    def tables(self) -> list[Table]:
        return [
            Table(
                f"lab {self.dir}",
                ("stopped", "purged", "seconds", "left running"),
                ((", ".join(self.stopped) or "-", self.purged, self.seconds, len(self.left_running)),),
            )
        ]


@dataclass(frozen=True)
class LabPlan:
    """``--dry-run``: the steps that would run, changing nothing."""

    dir: str
    action: str
    steps: tuple[str, ...]

    def tables(self) -> list[Table]:
        return [Table(f"lab {self.action} (dry run) — {self.dir}", ("step",), tuple((s,) for s in self.steps))]


# --------------------------------------------------------------------------- probing


def _probe(spec: LabSpec, comp: Component) -> ComponentStatus:
    if comp.kind == "postgres":
        pid = postmaster_pid(spec.pg_data(comp.node))
    else:
        pid = running_pid(comp.proc)
    is_alive = alive(pid)
    role: str | None = None
    ok = False
    detail = ""
    if is_alive and stopped(pid):
        detail = "stopped (SIGSTOP)"
    elif is_alive:
        role, ok, detail = _health(spec, comp)
    else:
        detail = "not running"
    return ComponentStatus(comp.name, comp.kind, comp.node, pid, is_alive, comp.port, role, ok and is_alive, detail, str(log_of(spec, comp.name)))


def _standin_health(spec: LabSpec) -> tuple[str | None, bool, str]:
    """The stand-in subscribes with pglogical: a replica while its subscription exists
    (healthy when it replicates), promoted once the subscription is gone."""
    from prontuario_cli.lab import logical
    from prontuario_cli.lab.config import lab_inventory

    name = lab_inventory(spec).cloud.replication.subscription
    sub = logical.subscription(spec.standin_pg_port, spec.database, name, timeout_s=1)
    if sub is None:
        return None, False, "not accepting connections"
    if sub.name is None:
        if logical.promoted(spec.standin_pg_port, spec.database, timeout_s=1):
            return "promoted", True, "promoted (read-write, no subscription)"
        return "replica", False, "no subscription yet"
    return "replica", sub.replicating, f"subscription {sub.name} {sub.status}"


def _health(spec: LabSpec, comp: Component) -> tuple[str | None, bool, str]:
    """(role, healthy, detail) for one live component; short timeouts."""
    kind = comp.kind
    if kind == "etcd":
        ok = health.etcd_healthy(comp.port)
        return "member", ok, "healthy" if ok else "no /health"
    if kind == "patroni":
        data = health.http_json(health.lab_url(comp.port, "/patroni"))
        if data is None:
            return None, False, "REST API not answering"
        role = data.get("role")
        role = "primary" if role in ("master", "primary") else role
        sync = "sync standby" if data.get("sync_standby") else ""
        state = data.get("state", "?")
        paused = " (paused)" if data.get("pause") else ""
        return role, state == "running", f"{state}{paused} {sync}".strip()
    if kind == "cloudsql-replica":
        return _standin_health(spec)
    if kind == "postgres":
        rec = health.pg_in_recovery(comp.port, timeout_s=1)
        if rec is None:
            return None, False, "not accepting connections"
        return ("replica" if rec else "primary"), True, "accepting connections"
    if kind == "redis":
        role = health.redis_role(comp.port)
        return role, role in ("primary", "replica"), role or "not answering"
    if kind == "sentinel":
        info = health.sentinel_master(comp.port, spec.redis_master)
        if not info:
            return None, False, "not answering"
        others = as_int(info.get("num-other-sentinels")) or 0
        master = f"{info.get('ip')}:{info.get('port')}"
        ok = others >= 2 and "o_down" not in info.get("flags", "").split(",")
        return "sentinel", ok, f"master {master}, {others} other sentinels"
    if kind == "haproxy":
        servers = health.haproxy_servers(spec.haproxy_socket)
        if not servers:
            return None, False, "runtime API not answering"
        up = health.servers_up(servers, "write")
        return "load balancer", len([s for s in up if s != "cloudsql"]) == 1, f"write -> {', '.join(up) or 'nothing'}"
    if kind == "cloudsql-api":
        status = health.http_status(health.lab_url(comp.port, "/health"))
        if status == 0:
            return None, False, "not answering"
        return "api", True, "fallback promoted (/health 200)" if status == 200 else "replica (/health 503)"
    if kind == "serve":
        data = health.http_json(health.lab_url(comp.port, "/status"), timeout_s=2)
        ready = health.http_status(health.lab_url(comp.port, "/ready"), timeout_s=2) == 200
        if data is None and not ready:
            return None, False, "not answering"
        model = f"{data.get('model')} {data.get('version')}" if data else ""
        return "inference", ready, f"{'ready' if ready else 'not ready'} {model}".strip()
    return None, False, "unknown component"


def lab_status(spec: LabSpec) -> LabStatus:
    """Probe every component concurrently (each probe is bounded by ~1-2 s)."""
    comps = list(components(spec).values())
    with ThreadPoolExecutor(max_workers=8) as pool:
        rows = tuple(pool.map(lambda c: _probe(spec, c), comps))
    return LabStatus(str(spec.path), spec.profile, spec.base_port, all(r.healthy for r in rows), rows)
