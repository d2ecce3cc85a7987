"""Is the lab settled, as ``prontuario replication check`` sees it?

``lab up`` returns only once the check would say OK, so ``lab up && prontuario
replication check`` never warns about a lab that is still settling (a read server
still rising in HAProxy, a Sentinel still discovering its peers). The lab sits below
the replication capability (it imports only the connectors and the foundation), so
this module looks at the same things the check looks at through the lab's own
probes, and names each thing that is not there yet:

- Patroni: every Mac's REST API answers and sees the cluster locked; not paused; one
  leader, state running; the other Mac streaming, as sync standby, on the leader's
  timeline.
- PostgreSQL, on the leader: read-write; the other Mac streaming and synchronous in
  ``pg_stat_replication``, its replay lag within the sync target whenever it is
  behind; the cloud stand-in's subscription streaming from it (its walsender is named
  after the subscription). On the other Mac, Patroni's copy of the subscription's
  permanent slot (a failover to it before then would cut the stand-in off).
- The cloud stand-in: its pglogical subscription ``replicating``.
- Redis: one master; the other replicating from it, link up, no full sync in progress.
- Sentinel: all three know each other and the replica, ``CKQUORUM`` OK, agree on the
  real master, and do not see it down.
- HAProxy: exactly one write server UP, the leader, and not the backup; the backup not
  UP; at least one read server UP; none in maintenance or drain.

What the check reads from outside the lab (the timeline recorded by its last run,
the fallback flag) is the operator's state, not the lab's, and is not waited for.
"""

from __future__ import annotations

from dataclasses import dataclass

from prontuario_cli.inventory import ReplicationLagTargets
from prontuario_cli.lab import health
from prontuario_cli.lab.config import lab_inventory
from prontuario_cli.lab.spec import MACS, NODE_NAMES, LabSpec

LOGICAL_SLOTS_SQL = "SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'logical'"
REPLICATION_SQL = """
SELECT application_name, state, sync_state,
       COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::float8 AS behind_bytes,
       EXTRACT(EPOCH FROM replay_lag)::float8 AS replay_lag_s
FROM pg_stat_replication
"""
LEADER_SQL = "SELECT pg_is_in_recovery() AS in_recovery, pg_walfile_name(pg_current_wal_lsn()) AS walfile"


@dataclass(frozen=True)
class Gap:
    """One thing the replication check would complain about: which component, and what."""

    component: str
    what: str

    def __str__(self) -> str:
        return f"{self.component}: {self.what}"


def gaps(spec: LabSpec, targets: ReplicationLagTargets = ReplicationLagTargets()) -> list[Gap]:
    """Everything not settled yet, in a stable order; [] when the check would say OK."""
    found: list[Gap] = []
    leader, _ = _patroni(spec, found)
    if leader is not None:
        _postgres(spec, leader, targets, found)
    _standin(spec, found)
    master = _redis(spec, found)
    _sentinels(spec, master, found)
    _haproxy(spec, leader, found)
    return found


def describe(found: list[Gap]) -> str:
    """One line for a time-out message (the first few gaps)."""
    if not found:
        return "settled"
    shown = "; ".join(str(g) for g in found[:4])
    return shown + (f" (+{len(found) - 4} more)" if len(found) > 4 else "")


# --------------------------------------------------------------------------- Patroni and PostgreSQL


def _timeline_of(walfile: str | None) -> int | None:
    try:
        return int(str(walfile)[:8], 16)
    except (TypeError, ValueError):
        return None


def _patroni(spec: LabSpec, found: list[Gap]) -> tuple[str | None, int | None]:
    """(leader, its timeline) as Patroni sees them; gaps for whatever is not settled."""
    view = None
    for node in MACS:
        me = health.http_json(health.patroni_url(spec, node, "/patroni"))
        if me is None:
            found.append(Gap(f"patroni-{node}", "REST API not answering"))
            continue
        if me.get("cluster_unlocked"):
            found.append(Gap(f"patroni-{node}", "sees the cluster unlocked (no leader key)"))
        if view is None:
            view = health.http_json(health.patroni_url(spec, node, "/cluster"))
    if view is None:
        return None, None
    if view.get("pause"):
        found.append(Gap("patroni-" + MACS[0], "Patroni is paused"))
    members = {m.get("name"): m for m in view.get("members") or [] if isinstance(m, dict)}
    leaders = [name for name, m in members.items() if m.get("role") in ("leader", "standby_leader")]
    if len(leaders) != 1:
        found.append(Gap("patroni-" + MACS[0], f"{len(leaders)} leaders in /cluster"))
        return None, None
    leader = leaders[0]
    timeline = members[leader].get("timeline")
    if members[leader].get("state") != "running":
        found.append(Gap(f"patroni-{leader}", f"leader state {members[leader].get('state')}"))
    for node in MACS:
        if node == leader:
            continue
        member = members.get(node)
        if member is None:
            found.append(Gap(f"patroni-{node}", "not a member of the cluster yet"))
            continue
        if member.get("state") != "streaming":
            found.append(Gap(f"patroni-{node}", f"state {member.get('state')}, not streaming"))
        if member.get("role") != "sync_standby":
            found.append(Gap(f"patroni-{node}", f"role {member.get('role')}, not sync_standby"))
        if timeline is not None and member.get("timeline") not in (None, timeline):
            found.append(Gap(f"patroni-{node}", f"on timeline {member.get('timeline')}, the leader on {timeline}"))
    return leader, timeline


def _postgres(spec: LabSpec, leader: str, targets: ReplicationLagTargets, found: list[Gap]) -> None:
    port = spec.node_ports(leader).postgresql
    component = f"postgres-{leader}"
    row = health.pg_rows(port, LEADER_SQL, dbname=spec.database)
    if not row:
        found.append(Gap(component, f"the leader does not answer on database {spec.database!r}"))
        return
    if row[0].get("in_recovery"):
        found.append(Gap(component, "the leader is still in recovery (promotion not finished)"))
        return
    rows = health.pg_rows(port, REPLICATION_SQL) or []
    by_name = {r.get("application_name"): r for r in rows}
    for node in MACS:
        if node == leader:
            continue
        r = by_name.get(node)
        if r is None:
            found.append(Gap(f"postgres-{node}", f"not in pg_stat_replication on {leader}"))
            continue
        if r.get("state") != "streaming":
            found.append(Gap(f"postgres-{node}", f"replication state {r.get('state')}"))
        if r.get("sync_state") not in ("sync", "quorum"):
            found.append(Gap(f"postgres-{node}", f"sync_state {r.get('sync_state')}, not synchronous"))
        behind, lag = r.get("behind_bytes") or 0, r.get("replay_lag_s") or 0.0
        if behind > 0 and lag * 1000 > targets.sync_target_ms:
            found.append(Gap(f"postgres-{node}", f"replay lag {lag * 1000:.0f} ms > {targets.sync_target_ms:g} ms"))
    replication = lab_inventory(spec).cloud.replication
    standin = by_name.get(replication.subscription)
    if standin is None or standin.get("state") != "streaming":
        found.append(Gap("cloudsql-replica", f"subscription not streaming from {leader} (pg_stat_replication: {standin and standin.get('state')})"))
    for node in MACS:
        if node == leader:
            continue
        slots = health.pg_rows(spec.node_ports(node).postgresql, LOGICAL_SLOTS_SQL)
        if slots is None or not any(r.get("slot_name") == replication.slot for r in slots):
            found.append(Gap(f"postgres-{node}", f"no copy of the cloud replica's slot {replication.slot} yet (Patroni copies it once per loop)"))


def _standin(spec: LabSpec, found: list[Gap]) -> None:
    from prontuario_cli.lab import logical

    name = lab_inventory(spec).cloud.replication.subscription
    sub = logical.subscription(spec.standin_pg_port, spec.database, name)
    if sub is None:
        found.append(Gap("cloudsql-replica", f"does not answer on database {spec.database!r}"))
    elif sub.name is None:
        found.append(Gap("cloudsql-replica", f"no subscription {name!r}: promoted, or never subscribed (rebuild it: Lab.rebuild_standin)"))
    elif not sub.replicating:
        found.append(Gap("cloudsql-replica", f"subscription {name!r} {sub.status}"))


# --------------------------------------------------------------------------- Redis and Sentinel


def _redis(spec: LabSpec, found: list[Gap]) -> tuple[str, int] | None:
    """The one Redis master's address, or None (with gaps)."""
    infos = {node: health.redis_replication(spec.node_ports(node).redis) for node in MACS}
    for node, info in infos.items():
        if info is None:
            found.append(Gap(f"redis-{node}", "not answering"))
    masters = [node for node, info in infos.items() if info and info.get("role") == "master"]
    if len(masters) != 1:
        found.append(Gap("redis-" + MACS[0], f"{len(masters)} Redis masters"))
        return None
    address = ("127.0.0.1", spec.node_ports(masters[0]).redis)
    for node, info in infos.items():
        if not info or node == masters[0]:
            continue
        if (info.get("master_host"), _int(info.get("master_port"))) != address:
            found.append(Gap(f"redis-{node}", f"replicates from {info.get('master_host')}:{info.get('master_port')}, not {masters[0]}"))
        if info.get("master_link_status") != "up":
            found.append(Gap(f"redis-{node}", f"link to the master {info.get('master_link_status')}"))
        if info.get("master_sync_in_progress") not in (None, "0"):
            found.append(Gap(f"redis-{node}", "full resynchronisation in progress"))
    return address


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _sentinels(spec: LabSpec, master: tuple[str, int] | None, found: list[Gap]) -> None:
    for node in NODE_NAMES:
        port = spec.node_ports(node).sentinel
        component = f"sentinel-{node}"
        info = health.sentinel_master(port, spec.redis_master)
        if info is None:
            found.append(Gap(component, f"not answering, or not monitoring {spec.redis_master!r}"))
            continue
        if not health.sentinel_ready(port, spec.redis_master):
            found.append(Gap(component, f"no quorum yet ({health.describe_sentinel(info)})"))
        flags = info.get("flags") or ""
        if "o_down" in flags or "s_down" in flags:
            found.append(Gap(component, f"sees the master down (flags {flags})"))
        if master is not None and (info.get("ip"), _int(info.get("port"))) != master:
            found.append(Gap(component, f"points at {info.get('ip')}:{info.get('port')}, not the master {master[0]}:{master[1]}"))


# --------------------------------------------------------------------------- HAProxy


def _haproxy(spec: LabSpec, leader: str | None, found: list[Gap]) -> None:
    servers = health.haproxy_servers(spec.haproxy_socket)
    if not servers:
        found.append(Gap("haproxy", f"runtime API {spec.haproxy_socket} not answering"))
        return
    write = [s for s in servers if s.proxy == "write"]
    read = [s for s in servers if s.proxy == "read"]
    writers = [s.server for s in write if s.up and not s.backup]
    backups = [s.server for s in write if s.up and s.backup]
    if leader is not None and writers != [leader]:
        found.append(Gap("haproxy", f"write servers UP: {writers or 'none'} (want only the leader {leader})"))
    if backups:
        found.append(Gap("haproxy", f"backup {', '.join(backups)} UP (its first check has not failed yet)"))
    if read and not any(s.up for s in read):
        states = ", ".join(f"{s.server} {s.status}" for s in read)
        found.append(Gap("haproxy", f"no read server UP ({states})"))
    for s in (*write, *read):
        if s.status.startswith(("MAINT", "DRAIN")):
            found.append(Gap("haproxy", f"{s.proxy}/{s.server} is {s.status}"))
