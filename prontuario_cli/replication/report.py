"""The replication report: what ``replication status`` / ``replication check`` return.

JSON keys (stable; lag fields are ``null`` when unknown)::

    status            ok | warning | critical | unknown (the Nagios verdict)
    summary           one line, as in the Nagios output
    checked_at        ISO 8601 time of the check; elapsed_s, timeout_s
    leader, timeline, previous_timeline, timeline_changed
    timeline_change   null, or the unexpected change being reported (WARNING): from, to,
                      first_seen, warn_until, leader_before, leader, cause,
                      acknowledged_at, acknowledged_by
    timeline_expected null, or the last change a drill recorded as its own (cause "drill RUN_ID")
    members[]         node, kind (patroni|cloud), role, state, timeline, reachable, status, note
    replicas[]        name, node, kind (member|other), state, sync_state,
                      write_lag_s, flush_lag_s, replay_lag_s (as PostgreSQL reports them),
                      write_lag_bytes, flush_lag_bytes, replay_lag_bytes,
                      lag_s (lag that counts: 0 when nothing is behind, else the larger of the
                      replay lag and reply_age_s; null when unknown), status, note,
                      reply_age_s (seconds since the standby's last reply)
    redis[]           node, role, reachable, master, link, last_io_s, offset, offset_lag_bytes, status, note
    sentinels[]       node, master, agrees, quorum_ok, other_sentinels, status, note
    haproxy[]         source, proxy, server, node, state, check, backup, takes_writes, status, note
    nodes_up          {node: true|false}; witness_nodes [names]
    gcp_fallback_active  true when a recorded ``gcp promote`` says so
    problems[]        component, status, message (worst first)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prontuario_cli.errors import ExitCode
from prontuario_cli.report import Nagios, Perf, Status, Table, human_bytes


@dataclass(frozen=True)
class Problem:
    component: str  # postgres, redis, sentinel, haproxy, timeline, cloud, check
    status: Status
    message: str


@dataclass(frozen=True)
class MemberRow:
    node: str
    kind: str  # patroni | cloud
    role: str | None
    state: str | None
    timeline: int | None
    reachable: str  # up | down | no answer | login refused | error
    status: Status
    note: str = ""


@dataclass(frozen=True)
class CloudRow:
    """The Cloud SQL replica's subscription, seen from both ends."""

    subscription: str
    slot: str
    state: str | None  # the subscription's status on the replica: replicating, down, disabled, ...; None: not seen
    slot_active: bool  # the subscriber is connected to its slot on the primary
    lag_bytes: int | None  # the primary's position minus what the replica confirmed
    lag_s: float | None  # since the replica began missing WAL (the checks' samples; resolution: their interval)
    rpo_s: float  # the brief's target when both Macs are lost
    applied_lsn: str | None  # the last provider position the replica applied
    following: bool  # replicating, its slot on the primary, within the RPO target


@dataclass(frozen=True)
class ReplicaRow:
    name: str  # application_name
    node: str | None
    kind: str  # member | other
    state: str
    sync_state: str
    write_lag_s: float | None
    flush_lag_s: float | None
    replay_lag_s: float | None
    write_lag_bytes: int | None
    flush_lag_bytes: int | None
    replay_lag_bytes: int | None
    lag_s: float | None
    status: Status
    note: str = ""
    reply_age_s: float | None = None  # seconds since the standby's last reply


@dataclass(frozen=True)
class RedisRow:
    node: str
    role: str | None
    reachable: str
    master: str | None
    link: str | None
    last_io_s: int | None
    offset: int | None
    offset_lag_bytes: int | None
    status: Status
    note: str = ""


@dataclass(frozen=True)
class SentinelRow:
    node: str
    master: str | None
    agrees: bool | None
    quorum_ok: bool | None
    other_sentinels: int | None
    status: Status
    note: str = ""


@dataclass(frozen=True)
class EtcdRow:
    node: str
    reachable: str  # up, down, no answer
    leader: bool | None  # this member is the raft leader (None: did not answer)
    raft_term: int | None
    raft_index: int | None
    db_size: int | None
    alarms: str  # "NOSPACE", "" when none
    status: Status
    note: str = ""


@dataclass(frozen=True)
class HAProxyRow:
    source: str  # the runtime socket, or the node whose stats page was read
    proxy: str
    server: str
    node: str | None
    state: str
    check: str
    backup: bool
    takes_writes: bool
    status: Status
    note: str = ""


@dataclass(frozen=True)
class ReplicationReport:
    status: Status
    summary: str
    checked_at: str
    elapsed_s: float
    timeout_s: float
    leader: str | None
    timeline: int | None
    previous_timeline: int | None
    timeline_changed: bool
    members: tuple[MemberRow, ...]
    replicas: tuple[ReplicaRow, ...]
    redis: tuple[RedisRow, ...]
    sentinels: tuple[SentinelRow, ...]
    haproxy: tuple[HAProxyRow, ...]
    nodes_up: dict[str, bool] = field(default_factory=dict)
    witness_nodes: tuple[str, ...] = ()
    gcp_fallback_active: bool = False
    problems: tuple[Problem, ...] = ()
    timeline_change: dict | None = None
    timeline_expected: dict | None = None
    etcd: tuple[EtcdRow, ...] = ()
    # {"healthy", "total", "majority", "spare", "quorum", "leader"}; None when no node lists an etcd port.
    etcd_quorum: dict | None = None
    failsafe_mode: bool | None = None  # Patroni's failsafe_mode (None: /config not read)
    cloud: CloudRow | None = None  # the Cloud SQL replica (None: no cloud.data in the inventory)
    # Thresholds used, for the perfdata (not part of the JSON).
    sync_target_s: float = field(default=0.1, metadata={"json": False})
    alert_s: float = field(default=10.0, metadata={"json": False})
    alert_bytes: int = field(default=16 * 1024 * 1024, metadata={"json": False})

    def exit_code(self) -> ExitCode:
        """The Nagios status as an exit code (``replication check``)."""
        return ExitCode(int(self.status))

    def perfdata(self) -> tuple[Perf, ...]:
        perf: list[Perf] = []
        for row in self.replicas:
            perf.append(Perf(f"pg_lag_{row.name}", row.lag_s, "s", warn=self.sync_target_s, crit=self.alert_s, min=0))
            perf.append(Perf(f"pg_lag_bytes_{row.name}", row.replay_lag_bytes, "B", crit=self.alert_bytes, min=0))
        for row in self.redis:
            if row.role == "replica":
                perf.append(Perf(f"redis_offset_lag_{row.node}", row.offset_lag_bytes, "B", crit=self.alert_bytes, min=0))
        if self.etcd_quorum is not None:
            perf.append(Perf("etcd_healthy", self.etcd_quorum["healthy"], "", min=0, max=self.etcd_quorum["total"]))
        reachable = sum(1 for s in self.sentinels if s.agrees is not None)
        perf.append(Perf("sentinels", reachable, "", min=0, max=len(self.sentinels)))
        perf.append(Perf("sentinels_agreeing", sum(1 for s in self.sentinels if s.agrees), "", min=0, max=len(self.sentinels)))
        writers = {r.node or r.server for r in self.haproxy if r.takes_writes}
        perf.append(Perf("haproxy_write_servers", len(writers) if self.haproxy else None, "", warn=1, crit=1, min=0))
        if self.cloud is not None and not self.gcp_fallback_active:
            perf.append(Perf("cloud_lag", self.cloud.lag_s, "s", warn=self.cloud.rpo_s / 2, crit=self.cloud.rpo_s, min=0))
            perf.append(Perf("cloud_lag_bytes", self.cloud.lag_bytes, "B", min=0))
        return tuple(perf)

    def nagios(self) -> Nagios:
        return Nagios(self.status, self.summary, self.perfdata())

    def tables(self) -> list[Table]:
        verdict = Table(
            "",
            ("status", "leader", "timeline", "checked in", "summary"),
            ((self.status, self.leader, _timeline_cell(self), f"{self.elapsed_s:.2f} s", self.summary),),
        )
        out = [verdict]
        out.append(
            Table(
                "PostgreSQL members",
                ("node", "kind", "role", "state", "timeline", "reachable", "status", "note"),
                tuple((m.node, m.kind, m.role, m.state, m.timeline, m.reachable, m.status, m.note) for m in self.members),
            )
        )
        if self.replicas:
            out.append(
                Table(
                    "PostgreSQL replicas (seen from the primary)",
                    ("replica", "sync", "state", "write/flush/replay lag s", "write/flush/replay bytes", "last reply s", "lag s", "status", "note"),
                    tuple(
                        (
                            r.name,
                            r.sync_state,
                            r.state,
                            "/".join(_num(v) for v in (r.write_lag_s, r.flush_lag_s, r.replay_lag_s)),
                            "/".join(_num(v) for v in (r.write_lag_bytes, r.flush_lag_bytes, r.replay_lag_bytes)),
                            _num(r.reply_age_s),
                            r.lag_s,
                            r.status,
                            r.note,
                        )
                        for r in self.replicas
                    ),
                )
            )
        if self.redis:
            out.append(
                Table(
                    "Redis",
                    ("node", "role", "reachable", "master", "link", "last I/O s", "offset", "lag bytes", "status", "note"),
                    tuple(
                        (r.node, r.role, r.reachable, r.master, r.link, r.last_io_s, r.offset, r.offset_lag_bytes, r.status, r.note)
                        for r in self.redis
                    ),
                )
            )
        if self.sentinels:
            out.append(
                Table(
                    "Sentinels",
                    ("node", "master", "agrees", "quorum", "other sentinels", "status", "note"),
                    tuple((s.node, s.master, s.agrees, s.quorum_ok, s.other_sentinels, s.status, s.note) for s in self.sentinels),
                )
            )
        if self.etcd:
            out.append(
                Table(
                    "etcd (Patroni's store)",
                    ("node", "reachable", "leader", "raft term", "raft index", "db size", "alarms", "status", "note"),
                    tuple((e.node, e.reachable, e.leader, e.raft_term, e.raft_index, human_bytes(e.db_size, "-"), e.alarms, e.status, e.note) for e in self.etcd),
                )
            )
        if self.haproxy:
            out.append(
                Table(
                    "HAProxy",
                    ("proxy", "server", "node", "state", "check", "backup", "takes writes", "status", "note"),
                    tuple((h.proxy, h.server, h.node, h.state, h.check, h.backup, h.takes_writes, h.status, h.note) for h in self.haproxy),
                )
            )
        if self.problems:
            out.append(Table("problems", ("status", "component", "problem"), tuple((p.status, p.component, p.message) for p in self.problems)))
        return out


def _timeline_cell(report: ReplicationReport):
    if report.timeline_changed and report.previous_timeline is not None:
        return f"{report.previous_timeline}→{report.timeline}"
    return report.timeline


def _num(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
