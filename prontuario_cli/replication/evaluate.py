"""From facts and thresholds to a verdict: the pure half of the replication check.

:func:`evaluate` takes the probes' outcomes (facts or errors, by probe name), the
inventory (what should exist, and the thresholds) and the previously recorded
timeline, and returns a :class:`~prontuario_cli.replication.report.ReplicationReport`.
It does no I/O, so every rule below is unit-tested with small fixtures.

Rules (thresholds from ``targets.replication_lag``):

- A replica's lag counts only while it is behind: ``lag_s`` is 0 when no byte is
  behind (an idle primary is not a false alarm); with bytes behind it is the larger of
  PostgreSQL's replay lag and the age of the standby's last reply — never 0, and never
  a stale last-reported value (PostgreSQL keeps showing the last measured lag of a
  standby that stopped replying).
- A standby is *silent* when its last reply is older than the health-check timeout
  while it owes WAL, or older than its reply interval (``wal_receiver_status_interval``)
  plus the timeout even when idle.
- WARNING: lag > ``sync_target_ms``; a Patroni replica that is not synchronous or
  not streaming; an unexpected timeline change (see :mod:`~prontuario_cli.replication.state`:
  reported to every caller until its window ends or it is acknowledged; a drill's own
  change is not); Patroni paused; a Sentinel not answering while the others keep quorum;
  Redis behind by bytes while silent for more than ``alert_s``; the cloud replica
  unreachable, not streaming or silent; a Mac standby without its copy of the cloud
  replica's slot; what the cloud replica does not receive: tables or sequences in no
  pglogical replication set, tables without a primary key, DDL run on the Macs only.
- CRITICAL: lag > ``alert_s`` AND bytes > ``alert_bytes``; commits waiting for a
  synchronous standby longer than the health-check timeout; a Patroni replica silent;
  no synchronous standby; a member down or frozen ("not answering (frozen?)" when its
  Patroni member key expired but the node still accepts connections); no primary or two
  primaries; Patroni disagreeing on the leader; Sentinels disagreeing, not monitoring,
  or without quorum; no Redis master or two; a Redis replica's link down; no HAProxy
  write server, two of them, or writes routed to a node that is not the primary; the
  cloud fallback active.
- etcd (evaluated first, so that when it is the cause its problem leads the list): a
  member is healthy when it answers ``/v3/maintenance/status`` and agrees with the others
  on a raft leader. WARNING: a member lost with the quorum kept ("no spare vote" when one
  more loss would stop failover); Patroni not reaching etcd for ``DCS_SILENT_WARN_S``;
  a database near etcd's default quota; ``failsafe_mode`` off. CRITICAL: fewer than a
  majority healthy — a member that does not answer within the timeout counts as lost, as
  a frozen Sentinel does; an alarm (NOSPACE, CORRUPT); a Patroni running on failsafe.
- UNKNOWN: a component that did not answer within the health-check timeout, or whose
  answer could not be read.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Mapping, Sequence

from prontuario_cli.cluster.patroni import PatroniCluster, PatroniMember, PatroniNode
from prontuario_cli.connect import Refused, TimedOut
from prontuario_cli.connect.fanout import Outcome
from prontuario_cli.connect.haproxy import HAProxyServer
from prontuario_cli.errors import PermissionProblem, UnavailableError
from prontuario_cli.inventory import Inventory, Node, ReplicationLagTargets
from prontuario_cli.replication import facts
from prontuario_cli.replication.report import (
    EtcdRow,
    HAProxyRow,
    MemberRow,
    Problem,
    RedisRow,
    ReplicaRow,
    ReplicationReport,
    SentinelRow,
)
from prontuario_cli.replication.state import TimelineState, change_json, observe, pending_change
from prontuario_cli.report import Status, human_bytes

RUNNING_STATES = ("running", "streaming")
# Patroni reads etcd every loop_wait (10 s by default, 1-2 s in the lab); three times
# Patroni's default without a read means it is not reaching its store.
DCS_SILENT_WARN_S = 30.0
_SEVERITY = {Status.CRITICAL: 0, Status.UNKNOWN: 1, Status.WARNING: 2, Status.OK: 3}


# --------------------------------------------------------------------------- small pieces


def reachability(outcome: Outcome | None, what: str, timeout_s: float) -> tuple[str, Status, str]:
    """(word, status, note) for a probe outcome: up/OK, down/CRITICAL, no answer/UNKNOWN...

    ``what`` is ``"<node>: <service>"``; the note names the node, and the service unless
    the connector's own message already does.
    """
    subject, _, service = what.rpartition(": ") if ": " in what else ("", "", what)
    prefix = f"{subject}: " if subject else ""
    if outcome is None:
        return "-", Status.UNKNOWN, f"{prefix}{service}: not probed"
    if outcome.ok:
        return "up", Status.OK, ""
    if outcome.timed_out or isinstance(outcome.error, TimedOut):
        return "no answer", Status.UNKNOWN, f"{prefix}{service}: no answer within {timeout_s:g} s (hung or overloaded?)"
    if outcome.error is not None:
        message = outcome.error.message
        named = service.split(" ")[0] in message
        note = f"{prefix}{message}" if named else f"{prefix}{service}: {message}"
        if isinstance(outcome.error, PermissionProblem):
            return "login refused", Status.UNKNOWN, note
        if isinstance(outcome.error, (Refused, UnavailableError)):
            return "down", Status.CRITICAL, note
        return "error", Status.UNKNOWN, note
    return "error", Status.UNKNOWN, f"{prefix}{service}: unexpected error reading the answer ({outcome.bug}); this is a bug"


def effective_lag_s(replica: facts.PgReplica) -> float | None:
    """Lag that counts: 0 when nothing is behind; else max(replay lag, age of the last reply).

    PostgreSQL nulls the lag columns once a replica caught up on an idle primary, and
    keeps the last measured value while a replica is silent: with bytes behind, the
    age of the last reply bounds the lag from below. Unknown (None) rather than 0 when
    bytes are behind and nothing else is known.
    """
    behind = replica.replay_lag_bytes
    if behind is None:
        return replica.replay_lag_s
    if behind <= 0:
        return 0.0
    measured = [v for v in (replica.replay_lag_s, replica.flush_lag_s, replica.write_lag_s) if v is not None]
    replay = replica.replay_lag_s if replica.replay_lag_s is not None else (max(measured) if measured else None)
    known = [v for v in (replay, replica.reply_age_s) if v is not None]
    lag = max(known) if known else None
    return lag if lag else None


def silent_for(replica: facts.PgReplica, timeout_s: float | None, reply_every_s: float | None = None) -> float | None:
    """Seconds a standby has been silent when that is abnormal, else None.

    Silent: its last reply is older than ``timeout_s`` while it owes WAL (a live standby
    answers each write within milliseconds), or older than ``reply_every_s`` +
    ``timeout_s`` at all (a live standby replies that often even when idle).
    """
    age = replica.reply_age_s
    if age is None or timeout_s is None:
        return None
    if replica.unacknowledged_bytes > 0 and age > timeout_s:
        return age
    if reply_every_s is not None and age > reply_every_s + timeout_s:
        return age
    return None


def replica_verdict(
    replica: facts.PgReplica,
    targets: ReplicationLagTargets,
    *,
    member: bool,
    timeout_s: float | None = None,
    reply_every_s: float | None = None,
) -> tuple[Status, list[tuple[Status, str]]]:
    """Status and (status, reason) pairs for one pg_stat_replication row.

    ``member`` rows are Patroni replicas (held to the synchronous target); others (the
    cloud replica) are asynchronous by design and only ever WARNING. With
    ``timeout_s`` (the health-check timeout) a silent standby is reported too.
    """
    lag = effective_lag_s(replica) or 0.0
    behind = replica.replay_lag_bytes or 0
    reasons: list[tuple[Status, str]] = []
    silent = silent_for(replica, timeout_s, reply_every_s)
    if silent is not None:
        owed = replica.unacknowledged_bytes
        reasons.append(
            (Status.CRITICAL if member else Status.WARNING,
             f"has not replied for {silent:.0f} s" + (f" ({human_bytes(owed)} not confirmed)" if owed else ""))
        )
    far_behind = lag > targets.alert_s and behind > targets.alert_bytes
    if far_behind:
        reasons.append(
            (Status.CRITICAL if member else Status.WARNING,
             f"{lag:.1f} s and {human_bytes(behind)} behind (alert: > {targets.alert_s:g} s and > {human_bytes(targets.alert_bytes)})")
        )
    if member and not far_behind and lag * 1000 > targets.sync_target_ms:
        reasons.append((Status.WARNING, f"replay lag {lag * 1000:.0f} ms > target {targets.sync_target_ms:g} ms"))
    if replica.state != "streaming":
        reasons.append((Status.WARNING, f"state {replica.state or 'unknown'}, not streaming"))
    if member and not replica.synchronous:
        reasons.append((Status.WARNING, f"asynchronous (sync_state {replica.sync_state or 'unknown'}): commits do not wait for it"))
    status = Status.worst([s for s, _ in reasons]) if reasons else Status.OK
    return status, reasons


class _Collector:
    """Problems plus per-key notes, so rows and the problem list say the same thing."""

    def __init__(self):
        self.problems: list[Problem] = []
        self.notes: dict[str, list[tuple[Status, str]]] = {}

    def add(self, component: str, status: Status, message: str, key: str | None = None) -> None:
        if status == Status.OK:
            return
        self.problems.append(Problem(component, status, message))
        if key is not None:
            self.notes.setdefault(key, []).append((status, message))

    def row(self, key: str, base: Status = Status.OK) -> tuple[Status, str]:
        items = self.notes.get(key, [])
        status = Status.worst([base, *(s for s, _ in items)])
        return status, "; ".join(_strip_subject(text) for _, text in items)


def _strip_subject(text: str) -> str:
    """'mac-studio-2: state stopped' -> 'state stopped' in a row already naming the node."""
    head, sep, tail = text.partition(": ")
    return tail if sep and " " not in head else text


# --------------------------------------------------------------------------- evaluation


def evaluate(
    inventory: Inventory,
    outcomes: Mapping[str, Outcome],
    *,
    previous: TimelineState | None = None,
    gcp_active: bool = False,
    checked_at: str = "",
    elapsed_s: float = 0.0,
    cloud_samples: Sequence[tuple[float, int]] = (),
) -> ReplicationReport:
    """Turn probe outcomes into the replication report (see the module docstring for the rules)."""
    targets = inventory.targets.replication_lag
    timeout_s = inventory.health_checks.timeout_s
    c = _Collector()

    # etcd first: when it loses its quorum it is the cause, and its problem leads the list
    # ahead of the PostgreSQL symptoms that follow (problems keep this order within a status).
    etcd_rows, etcd_quorum, failsafe = _evaluate_etcd(inventory, outcomes, checked_at, timeout_s, c)
    pg = _evaluate_postgres(inventory, outcomes, targets, gcp_active, timeout_s, c)
    leader, timeline, members, replicas, leader_fact = pg
    from prontuario_cli.replication.cloud import evaluate_cloud  # it builds on this module's collector

    cloud_member, cloud = evaluate_cloud(inventory, outcomes, leader, leader_fact, members, gcp_active, timeout_s, c, cloud_samples,
                                          now_epoch(checked_at))
    if cloud_member is not None:
        members.append(cloud_member)

    seen = observe(previous, inventory.cluster.patroni_scope, timeline, leader, checked_at)
    change = pending_change(seen, checked_at or None)
    if change is not None:
        c.add("timeline", Status.WARNING, timeline_message(change))

    redis_rows, redis_master = _evaluate_redis(inventory, outcomes, targets, timeout_s, c)
    sentinel_rows = _evaluate_sentinels(inventory, outcomes, redis_master, timeout_s, c)
    haproxy_rows = _evaluate_haproxy(inventory, outcomes, leader, gcp_active, timeout_s, c)

    if gcp_active:
        c.add("cloud", Status.CRITICAL, "the Cloud SQL fallback is active (a promote was recorded): emergency mode")

    nodes_up = _nodes_up(inventory, outcomes)
    problems = tuple(sorted(c.problems, key=lambda p: _SEVERITY[p.status]))
    status = Status.worst([p.status for p in problems]) if problems else Status.OK
    members = tuple(_finish_member(m, c) for m in members)
    replicas = tuple(replicas)
    summary = _summary(status, problems, leader, timeline, replicas, redis_rows, sentinel_rows, haproxy_rows)
    return ReplicationReport(
        status=status,
        summary=summary,
        checked_at=checked_at,
        elapsed_s=round(elapsed_s, 3),
        timeout_s=timeout_s,
        leader=leader,
        timeline=timeline,
        previous_timeline=change.from_timeline if change else (previous.timeline if previous else None),
        timeline_changed=change is not None,
        timeline_change=_change_row(change),
        timeline_expected=change_json(seen.expected) if seen else None,
        members=members,
        replicas=replicas,
        redis=tuple(redis_rows),
        sentinels=tuple(sentinel_rows),
        haproxy=tuple(haproxy_rows),
        nodes_up=nodes_up,
        witness_nodes=tuple(n.name for n in inventory.nodes if n.role == "witness"),
        gcp_fallback_active=gcp_active,
        problems=problems,
        etcd=tuple(etcd_rows),
        etcd_quorum=etcd_quorum,
        failsafe_mode=failsafe,
        sync_target_s=targets.sync_target_ms / 1000.0,
        alert_s=targets.alert_s,
        alert_bytes=targets.alert_bytes,
        cloud=cloud,
    )


def now_epoch(checked_at: str) -> float:
    """The check's time as Unix seconds (the wall clock when it has none)."""
    import time

    from prontuario_cli.replication.state import parse_time

    at = parse_time(checked_at)
    return at.timestamp() if at is not None else time.time()


def timeline_message(change) -> str:
    """The WARNING for an unexpected timeline change (the same words for every caller)."""
    was = f", was {change.leader_before}" if change.leader_before and change.leader_before != change.leader else ""
    seen = f"first seen {change.first_seen}; " if change.first_seen else ""
    until = change.warn_until()
    return (
        f"timeline changed {change.from_timeline}→{change.to_timeline} ({seen}leader now {change.leader or 'unknown'}{was}): "
        "a failover or switchover happened that no drill recorded; reported "
        + (f"until {until} or " if until else "until ")
        + "'prontuario replication check --ack-timeline'"
    )


def _change_row(change) -> dict | None:
    if change is None:
        return None
    return {**change_json(change), "warn_until": change.warn_until()}


def _finish_member(row: MemberRow, c: _Collector) -> MemberRow:
    return _with_status(row, c.row(f"member:{row.node}", row.status))


# --------------------------------------------------------------------------- PostgreSQL


def _member_node(member: PatroniMember, nodes: list[Node]) -> str | None:
    for node in nodes:
        if node.name == member.name:
            return node.name
    for node in nodes:
        if member.host == node.address and member.port == node.ports.postgresql:
            return node.name
    return None


def _evaluate_postgres(inventory: Inventory, outcomes, targets, gcp_active, timeout_s, c: _Collector):
    nodes = [n for n in inventory.nodes if n.ports.patroni or n.ports.postgresql]
    pg_facts: dict[str, facts.PgNode] = {}
    patroni_facts: dict[str, tuple[PatroniNode, PatroniCluster]] = {}
    pg_reach: dict[str, tuple[str, Status, str]] = {}
    patroni_reach: dict[str, str] = {}
    for node in nodes:
        if node.ports.postgresql:
            o = outcomes.get(f"postgres:{node.name}")
            pg_reach[node.name] = reachability(o, f"{node.name}: PostgreSQL", timeout_s)
            if o is not None and o.ok:
                pg_facts[node.name] = o.value
        if node.ports.patroni:
            o = outcomes.get(f"patroni:{node.name}")
            word, status, note = reachability(o, f"{node.name}: Patroni REST API", timeout_s)
            patroni_reach[node.name] = word
            if o is not None and o.ok:
                patroni_facts[node.name] = o.value
            else:
                c.add("postgres", status, note, key=f"member:{node.name}")

    # Who leads, according to PostgreSQL and to Patroni.
    primaries = sorted(n for n, f in pg_facts.items() if not f.in_recovery)
    views = {n: cluster for n, (_, cluster) in patroni_facts.items()}
    leaders_seen = {n: _leader_node(cluster, nodes) for n, cluster in views.items()}
    patroni_leaders = Counter(v for v in leaders_seen.values() if v)
    patroni_leader = patroni_leaders.most_common(1)[0][0] if patroni_leaders else None
    if len(patroni_leaders) > 1:
        said = ", ".join(f"{n} says {v or 'none'}" for n, v in sorted(leaders_seen.items()))
        c.add("postgres", Status.CRITICAL, f"Patroni nodes disagree on the leader ({said})")
    elif views and not patroni_leaders:
        c.add("postgres", Status.CRITICAL, "the Patroni cluster has no leader (the leader lock is free): writes are refused")
    if any(cluster.paused for cluster in views.values()):
        c.add("postgres", Status.WARNING, "Patroni is paused (maintenance mode): automatic failover is off")
    if any(node_fact.cluster_unlocked for node_fact, _ in patroni_facts.values()) and patroni_leaders:
        c.add("postgres", Status.WARNING, "a Patroni node sees the cluster unlocked (no leader key)")

    if len(primaries) > 1:
        c.add("postgres", Status.CRITICAL, f"two read-write primaries: {', '.join(primaries)} (split brain)")
        leader = patroni_leader if patroni_leader in primaries else primaries[0]
    elif primaries:
        leader = primaries[0]
        if patroni_leader and patroni_leader != leader:
            c.add("postgres", Status.CRITICAL, f"Patroni's leader is {patroni_leader} but the read-write primary is {leader}")
    else:
        leader = patroni_leader
        unanswered = [n for n, (_, s, _) in pg_reach.items() if s == Status.UNKNOWN]
        if pg_reach and unanswered and (leader is None or leader in unanswered):
            c.add("postgres", Status.UNKNOWN, f"no PostgreSQL primary answered (no answer from {', '.join(unanswered)})")
        elif pg_reach:
            c.add("postgres", Status.CRITICAL, "no read-write PostgreSQL primary: writes are refused")

    view = views.get(leader) if leader else None
    view = view or next(iter(views.values()), None)
    member_by_node: dict[str, PatroniMember] = {}
    if view is not None:
        for m in view.members:
            mapped = _member_node(m, nodes)
            if mapped:
                member_by_node[mapped] = m

    leader_fact = pg_facts.get(leader) if leader else None
    timeline = leader_fact.timeline if leader_fact else None
    if timeline is None and leader and leader in member_by_node:
        timeline = member_by_node[leader].timeline
    if timeline is None and leader and leader in patroni_facts:
        timeline = patroni_facts[leader][0].timeline

    replicas, silent_replicas = _evaluate_replicas(nodes, leader, leader_fact, member_by_node, targets, timeout_s, c)

    members: list[MemberRow] = []
    for node in nodes:
        key = f"member:{node.name}"
        word, base, note = pg_reach.get(node.name, ("-", Status.OK, ""))
        pat = patroni_facts.get(node.name)
        member = member_by_node.get(node.name)
        fact = pg_facts.get(node.name)
        if base != Status.OK:
            said = f" (Patroni says: {pat[0].state})" if pat else ""
            c.add("postgres", base, note + said, key=key)
        if view is not None and node.ports.patroni and member is None:
            evidence = [f"{what} accepts connections but does not answer" for what, seen in (("Patroni", patroni_reach.get(node.name)), ("PostgreSQL", word)) if seen == "no answer"]
            if node.name in silent_replicas:
                evidence.append("the primary still has its replication connection, silent")
            if evidence:
                c.add(
                    "postgres",
                    Status.CRITICAL,
                    f"{node.name}: not answering (frozen?): its Patroni member key expired; {'; '.join(evidence)}",
                    key=key,
                )
            else:
                c.add("postgres", Status.CRITICAL, f"{node.name}: not a member of the Patroni cluster (Patroni stopped or never joined)", key=key)
        elif member is not None and member.state not in RUNNING_STATES and member.role not in ("leader", "standby_leader"):
            c.add("postgres", Status.CRITICAL, f"{node.name}: member state {member.state or 'unknown'}", key=key)
        elif member is not None and member.role in ("leader", "standby_leader") and member.state != "running":
            c.add("postgres", Status.CRITICAL, f"{node.name}: leader state {member.state or 'unknown'}", key=key)
        node_timeline = fact.timeline if fact else (member.timeline if member else (pat[0].timeline if pat else None))
        if timeline is not None and node_timeline is not None and node_timeline != timeline and node.name != leader:
            c.add("postgres", Status.WARNING, f"{node.name}: on timeline {node_timeline}, the leader on {timeline}", key=key)
        role = member.role if member else (fact.role if fact else (pat[0].role if pat else None))
        state = member.state if member else (pat[0].state if pat else None)
        members.append(MemberRow(node.name, "patroni" if node.ports.patroni else "postgres", role, state, node_timeline, word, Status.OK))

    return leader, timeline, members, replicas, leader_fact


def _leader_node(cluster: PatroniCluster, nodes: list[Node]) -> str | None:
    leader = cluster.leader
    if leader is None:
        return None
    member = cluster.member(leader)
    return _member_node(member, nodes) or leader


def _evaluate_replicas(nodes, leader, leader_fact, member_by_node, targets, timeout_s, c: _Collector) -> tuple[list[ReplicaRow], set[str]]:
    """Rows of the primary's pg_stat_replication, and the member nodes found silent."""
    if leader_fact is None:
        return [], set()
    name_to_node = {m.name: n for n, m in member_by_node.items()}
    name_to_node.update({n.name: n.name for n in nodes})
    rows: list[ReplicaRow] = []
    seen: set[str] = set()
    silent: set[str] = set()
    waiting, waited = leader_fact.sync_rep_waiters or 0, leader_fact.sync_rep_wait_s
    commits_wait = waiting > 0 and waited is not None and waited > timeout_s
    for r in leader_fact.replicas:
        if r.logical:
            continue  # a subscription's walsender (the cloud replica): judged by replication.cloud
        node = name_to_node.get(r.application_name)
        member = node is not None
        status, reasons = replica_verdict(r, targets, member=member, timeout_s=timeout_s, reply_every_s=leader_fact.reply_every_s)
        subject = node or r.application_name
        if commits_wait and r.synchronous:
            reasons.insert(0, (Status.CRITICAL, f"commits are waiting for sync standby {subject} ({waiting} waiting, the oldest for {waited:.1f} s)"))
            status = Status.CRITICAL
        for severity, reason in reasons:
            text = reason if subject in reason else f"{subject}: {reason}"
            c.add("postgres", severity, text, key=f"member:{node}" if member else None)
        if node:
            seen.add(node)
            if silent_for(r, timeout_s, leader_fact.reply_every_s) is not None:
                silent.add(node)
        rows.append(
            ReplicaRow(
                name=r.application_name,
                node=node,
                kind="member" if member else "other",
                state=r.state,
                sync_state=r.sync_state,
                write_lag_s=r.write_lag_s,
                flush_lag_s=r.flush_lag_s,
                replay_lag_s=r.replay_lag_s,
                write_lag_bytes=r.write_lag_bytes,
                flush_lag_bytes=r.flush_lag_bytes,
                replay_lag_bytes=r.replay_lag_bytes,
                lag_s=effective_lag_s(r),
                reply_age_s=r.reply_age_s,
                status=status,
                note="; ".join(text for _, text in reasons),
            )
        )
    if commits_wait and not any(r.synchronous for r in leader_fact.replicas):
        names = leader_fact.synchronous_standby_names or "empty"
        c.add(
            "postgres",
            Status.CRITICAL,
            f"commits are waiting for a synchronous standby that is not connected ({waiting} waiting, the oldest for {waited:.1f} s; "
            f"synchronous_standby_names: {names})",
        )
    expected = [n.name for n in nodes if n.name != leader and n.ports.postgresql and n.ports.patroni]
    for name in expected:
        if name not in seen:
            c.add("postgres", Status.CRITICAL, f"{name}: not streaming from the primary {leader}", key=f"member:{name}")
    member_rows = [row for row in rows if row.kind == "member"]
    if expected and not any(row.sync_state in ("sync", "quorum") for row in member_rows):
        c.add("postgres", Status.CRITICAL, "no synchronous standby: commits are not protected by a second copy (RPO 0 at risk)")
    return rows, silent


# --------------------------------------------------------------------------- Redis and Sentinel


def _evaluate_redis(inventory: Inventory, outcomes, targets, timeout_s, c: _Collector):
    nodes = [n for n in inventory.nodes if n.ports.redis]
    by_addr = {(n.address, n.ports.redis): n.name for n in nodes}
    infos: dict[str, facts.RedisReplication] = {}
    reach: dict[str, tuple[str, Status, str]] = {}
    for node in nodes:
        o = outcomes.get(f"redis:{node.name}")
        reach[node.name] = reachability(o, f"{node.name}: Redis", timeout_s)
        if o is not None and o.ok:
            infos[node.name] = o.value
    masters = sorted(n for n, i in infos.items() if i.role == "master")
    master = masters[0] if len(masters) == 1 else None
    if len(masters) > 1:
        c.add("redis", Status.CRITICAL, f"two Redis masters: {', '.join(masters)} (split brain)")
    elif not masters and infos:
        c.add("redis", Status.CRITICAL, "no Redis master: writes to Redis are refused")

    rows: list[RedisRow] = []
    for node in nodes:
        key = f"redis:{node.name}"
        word, status, note = reach[node.name]
        info = infos.get(node.name)
        if info is None:
            c.add("redis", status, note, key=key)
            rows.append(RedisRow(node.name, None, word, None, None, None, None, None, Status.OK))
            continue
        if info.role == "master":
            rows.append(RedisRow(node.name, "master", word, None, None, None, info.master_repl_offset, None, Status.OK))
            continue
        master_addr = f"{info.master_host}:{info.master_port}" if info.master_host else None
        points_at = by_addr.get((info.master_host, info.master_port))
        lag = last_io = None
        if master and master != points_at and len(masters) == 1:
            c.add("redis", Status.CRITICAL, f"{node.name}: replicates from {points_at or master_addr}, but the master is {master}", key=key)
        if info.master_link_status != "up":
            down = f" for {info.master_link_down_since_s} s" if info.master_link_down_since_s is not None else ""
            c.add("redis", Status.CRITICAL, f"{node.name}: link to the master is {info.master_link_status or 'unknown'}{down}", key=key)
        else:
            last_io = info.master_last_io_s
            lag = _redis_offset_lag(node, infos.get(master) if master else None, info)
            if info.master_sync_in_progress:
                c.add("redis", Status.WARNING, f"{node.name}: full resynchronisation in progress", key=key)
            if lag is not None:
                silent = last_io is not None and last_io > targets.alert_s
                if lag > targets.alert_bytes and silent:
                    c.add("redis", Status.CRITICAL, f"{node.name}: {human_bytes(lag)} behind and silent for {last_io} s", key=key)
                elif lag > targets.alert_bytes:
                    c.add("redis", Status.WARNING, f"{node.name}: {human_bytes(lag)} behind the master", key=key)
                elif lag > 0 and silent:
                    c.add("redis", Status.WARNING, f"{node.name}: {human_bytes(lag)} behind and silent for {last_io} s", key=key)
        rows.append(RedisRow(node.name, "replica", word, points_at or master_addr, info.master_link_status, last_io, info.replica_repl_offset, lag, Status.OK))
    rows = [_with_status(row, c.row(f"redis:{row.node}")) for row in rows]
    return rows, (master, by_addr)


def _redis_offset_lag(node: Node, master: facts.RedisReplication | None, replica: facts.RedisReplication) -> int | None:
    if master is None or master.master_repl_offset is None:
        return None
    for link in master.connected_replicas:
        if link.port == node.ports.redis and link.host in (node.address, "127.0.0.1", "::1") and link.offset is not None:
            return max(0, master.master_repl_offset - link.offset)
    if replica.replica_repl_offset is not None:
        return max(0, master.master_repl_offset - replica.replica_repl_offset)
    return None


def _with_status(row, status_note: tuple[Status, str]):
    status, note = status_note
    return replace(row, status=status, note=note)


def _evaluate_sentinels(inventory: Inventory, outcomes, redis_master, timeout_s, c: _Collector) -> list[SentinelRow]:
    master_node, by_addr = redis_master
    nodes = [n for n in inventory.nodes if n.ports.sentinel]
    if not nodes:
        return []
    name = inventory.cluster.redis_master
    views: dict[str, facts.SentinelView] = {}
    reach: dict[str, tuple[str, Status, str]] = {}
    for node in nodes:
        o = outcomes.get(f"sentinel:{node.name}")
        reach[node.name] = reachability(o, f"{node.name}: Sentinel", timeout_s)
        if o is not None and o.ok:
            views[node.name] = o.value
    majority = len(nodes) // 2 + 1

    def said(view: facts.SentinelView) -> str | None:
        if view.master_host is None:
            return None
        return by_addr.get((view.master_host, view.master_port)) or view.master

    opinions = Counter(said(v) for v in views.values() if said(v))
    consensus = opinions.most_common(1)[0][0] if opinions else None
    if len(opinions) > 1:
        detail = ", ".join(f"{n} says {said(v) or 'none'}" for n, v in sorted(views.items()))
        c.add("sentinel", Status.CRITICAL, f"Sentinels disagree on the Redis master ({detail})")
    if len(views) < majority:
        c.add("sentinel", Status.CRITICAL, f"only {len(views)} of {len(nodes)} Sentinels answered: no majority, no Redis failover")
    if consensus and master_node and consensus != master_node:
        c.add("sentinel", Status.CRITICAL, f"Sentinels point at {consensus}, but the Redis master is {master_node}")

    rows: list[SentinelRow] = []
    for node in nodes:
        key = f"sentinel:{node.name}"
        word, status, note = reach[node.name]
        view = views.get(node.name)
        if view is None:
            degraded = Status.WARNING if len(views) >= majority and status == Status.CRITICAL else status
            if status == Status.UNKNOWN and len(views) >= majority:
                degraded = Status.WARNING
            c.add("sentinel", degraded, note, key=key)
            rows.append(SentinelRow(node.name, None, None, None, None, Status.OK))
            continue
        master = said(view)
        if master is None:
            c.add("sentinel", Status.CRITICAL, f"{node.name}: does not monitor {name!r}", key=key)
        if view.quorum_ok is False:
            c.add("sentinel", Status.CRITICAL, f"{node.name}: CKQUORUM failed: {view.quorum_message}", key=key)
        if "o_down" in view.flags:
            c.add("sentinel", Status.CRITICAL, f"{node.name}: the master is objectively down", key=key)
        elif "s_down" in view.flags:
            c.add("sentinel", Status.WARNING, f"{node.name}: the master is subjectively down", key=key)
        agrees = master is not None and master == consensus and (master_node is None or master == master_node)
        rows.append(SentinelRow(node.name, master, agrees, view.quorum_ok, view.other_sentinels, Status.OK))
    return [_with_status(row, c.row(f"sentinel:{row.node}")) for row in rows]


# --------------------------------------------------------------------------- etcd (Patroni's store)


def _evaluate_etcd(inventory: Inventory, outcomes, checked_at: str, timeout_s: float, c: _Collector):
    """Each etcd member, the quorum they make, and Patroni's view of them: (rows, quorum, failsafe_mode)."""
    from prontuario_cli.cluster import etcd

    failsafe = next((o.value for name, o in sorted(outcomes.items()) if name.startswith("patroni-config:") and o.ok and o.value is not None), None)
    nodes = [n for n in inventory.nodes if n.ports.etcd_client]
    if not nodes:
        return [], None, failsafe
    statuses: dict[str, etcd.EtcdStatus | None] = {}
    why: dict[str, str] = {}
    reach: dict[str, str] = {}
    for node in nodes:
        o = outcomes.get(f"etcd:{node.name}")
        word, status, note = reachability(o, f"{node.name}: etcd", timeout_s)
        reach[node.name] = word
        statuses[node.name] = o.value if o is not None and o.ok else None
        if statuses[node.name] is None:
            why[node.name] = f"no answer within {timeout_s:g} s (frozen?)" if word == "no answer" else _strip_subject(note)
    q = etcd.quorum(statuses, why)
    lost = "; ".join(f"{name}: {text}" for name, text in q.lost.items())
    if not q.has_quorum:
        if failsafe:
            consequence = ("Patroni's failsafe mode keeps the primary only while every member answers it; "
                           "no failover is possible until etcd is back")
        else:
            consequence = "the primary demotes itself once its leader key expires (ttl): writes stop"
        c.add("etcd", Status.CRITICAL,
              f"etcd has no quorum ({len(q.healthy)} of {q.total} members healthy, {q.majority} needed; {lost}): "
              f"Patroni cannot renew or take the leader key; {consequence}")
    elif q.lost and q.spare == 0:
        c.add("etcd", Status.WARNING, f"etcd has no spare vote ({lost}): one more loss stops failover")
    elif q.lost:
        c.add("etcd", Status.WARNING, f"etcd lost {len(q.lost)} of {q.total} members ({lost}); {q.spare} more may go before failover stops")
    for name, alarms in q.alarms.items():
        c.add("etcd", Status.CRITICAL, f"etcd alarm {', '.join(alarms)} on {name}: etcd refuses writes, Patroni cannot renew the leader key",
              key=f"etcd:{name}")
    rows = []
    for node in nodes:
        s = statuses[node.name]
        key = f"etcd:{node.name}"
        if node.name in q.lost:
            c.notes.setdefault(key, []).append((Status.OK, q.lost[node.name]))
        if s is not None and s.db_size and s.db_size > etcd.DB_SIZE_WARN_RATIO * etcd.DEFAULT_QUOTA_BYTES:
            c.add("etcd", Status.WARNING, f"etcd on {node.name} holds {human_bytes(s.db_size)}, near the default 2 GiB quota "
                  "(NOSPACE stops Patroni): compact and defragment", key=key)
        base = Status.OK if node.name in q.healthy else (Status.CRITICAL if not q.has_quorum else Status.WARNING)
        rows.append(EtcdRow(node.name, reach[node.name], s.is_leader if s else None, s.raft_term if s else None,
                            s.raft_index if s else None, s.db_size if s else None, ",".join(s.alarms) if s else "", base))
    _patroni_dcs_view(inventory, outcomes, checked_at, q.has_quorum, c)
    if failsafe is False:
        c.add("etcd", Status.WARNING, "Patroni's failsafe_mode is off: if etcd loses its quorum the healthy primary demotes itself "
              "and writes stop (patronictl edit-config -s failsafe_mode=true)")
    quorum = {"healthy": len(q.healthy), "total": q.total, "majority": q.majority, "spare": q.spare, "quorum": q.has_quorum, "leader": q.leader}
    return [_with_status(row, c.row(f"etcd:{row.node}", row.status)) for row in rows], quorum, failsafe


def _patroni_dcs_view(inventory: Inventory, outcomes, checked_at: str, has_quorum: bool, c: _Collector) -> None:
    """What each Patroni says of etcd: running on failsafe, or not reaching it for a while."""
    import datetime as _dt

    now = _dt.datetime.fromisoformat(checked_at).timestamp() if checked_at else None
    for node in inventory.nodes:
        o = outcomes.get(f"patroni:{node.name}")
        if o is None or not o.ok:
            continue
        own: PatroniNode = o.value[0]
        if own.failsafe_active:
            c.add("etcd", Status.CRITICAL, f"Patroni on {node.name} runs in failsafe mode: etcd is unreachable; the primary stays "
                  "only while every member answers it")
        elif now is not None and own.dcs_last_seen and has_quorum:
            silent = now - own.dcs_last_seen
            if silent > DCS_SILENT_WARN_S:
                c.add("etcd", Status.WARNING, f"Patroni on {node.name} last reached etcd {silent:.0f} s ago (its leader key lives there)")


# --------------------------------------------------------------------------- HAProxy


def _server_node(server: HAProxyServer, inventory: Inventory) -> str | None:
    names = {n.name for n in inventory.nodes}
    if server.server in names:
        return server.server
    for node in inventory.nodes:
        if node.ports.postgresql and server.address == f"{node.address}:{node.ports.postgresql}":
            return node.name
    cloud = inventory.cloud.data if inventory.cloud else None
    if cloud is not None and server.address == f"{cloud.host}:{cloud.port}":
        return "cloud"
    return None


def _evaluate_haproxy(inventory: Inventory, outcomes, leader, gcp_active, timeout_s, c: _Collector) -> list[HAProxyRow]:
    sources = sorted(k for k in outcomes if k == "haproxy" or k.startswith("haproxy:"))
    write_name, read_name = inventory.haproxy.write_backend, inventory.haproxy.read_backend
    rows: list[HAProxyRow] = []
    for source in sources:
        label = source.partition(":")[2] or "runtime API"
        word, status, note = reachability(outcomes[source], f"HAProxy ({label})", timeout_s)
        if status != Status.OK:
            c.add("haproxy", status, note)
            continue
        servers: tuple[HAProxyServer, ...] = outcomes[source].value
        write = [s for s in servers if s.proxy == write_name]
        read = [s for s in servers if s.proxy == read_name]
        if not write:
            proxies = ", ".join(sorted({s.proxy for s in servers})) or "none"
            c.add("haproxy", Status.UNKNOWN, f"HAProxy ({label}) has no proxy named {write_name!r} (proxies: {proxies}); set haproxy.write_backend")
        active_up = [s for s in write if s.up and not s.backup]
        backup_up = [s for s in write if s.up and s.backup]
        writers = active_up or backup_up
        writer_keys = {(s.proxy, s.server) for s in writers}
        bad: dict[tuple[str, str], tuple[Status, str]] = {}
        if write and not writers:
            c.add("haproxy", Status.CRITICAL, f"HAProxy ({label}): no write server is UP: writes have nowhere to go")
        elif len(writers) > 1:
            names = ", ".join(s.server for s in writers)
            c.add("haproxy", Status.CRITICAL, f"HAProxy ({label}): {len(writers)} write servers UP ({names}): split brain risk")
            for s in writers:
                bad[(s.proxy, s.server)] = (Status.CRITICAL, "one of several write servers")
        elif writers:
            target = _server_node(writers[0], inventory) or writers[0].server
            if writers[0].backup and not gcp_active:
                c.add("haproxy", Status.CRITICAL, f"HAProxy ({label}) sends writes to the backup {target}, but no cloud promote was recorded")
                bad[(writers[0].proxy, writers[0].server)] = (Status.CRITICAL, "backup taking writes")
            elif leader and target != leader and not writers[0].backup:
                c.add("haproxy", Status.CRITICAL, f"HAProxy ({label}) sends writes to {target}, but the primary is {leader}")
                bad[(writers[0].proxy, writers[0].server)] = (Status.CRITICAL, f"not the primary ({leader})")
        if active_up and backup_up:
            names = ", ".join(s.server for s in backup_up)
            c.add("haproxy", Status.WARNING, f"HAProxy ({label}): backup {names} is UP while a Mac takes writes: it would take writes in a failover")
            for s in backup_up:
                bad[(s.proxy, s.server)] = (Status.WARNING, "healthy backup: split-brain risk")
        if read and not any(s.up for s in read):
            c.add("haproxy", Status.WARNING, f"HAProxy ({label}): no read server is UP")
        for s in (*write, *read):
            row_status, row_note = bad.get((s.proxy, s.server), (Status.OK, ""))
            if s.status.startswith(("MAINT", "DRAIN")):
                row_status = Status.worst([row_status, Status.WARNING])
                row_note = row_note or f"{s.status.lower()}"
            rows.append(
                HAProxyRow(
                    source=label,
                    proxy=s.proxy,
                    server=s.server,
                    node=_server_node(s, inventory),
                    state=s.status,
                    check=s.check_status,
                    backup=s.backup,
                    takes_writes=(s.proxy, s.server) in writer_keys,
                    status=row_status,
                    note=row_note,
                )
            )
    return rows


# --------------------------------------------------------------------------- nodes and summary


def _nodes_up(inventory: Inventory, outcomes: Mapping[str, Outcome]) -> dict[str, bool]:
    """A node is up when at least one of its services answered."""
    up: dict[str, bool] = {}
    for node in inventory.nodes:
        mine = [o for name, o in outcomes.items() if name.partition(":")[2] == node.name]
        if mine:
            up[node.name] = any(o.ok for o in mine)
    return up


def _summary(status, problems, leader, timeline, replicas, redis_rows, sentinel_rows, haproxy_rows) -> str:
    if problems:
        shown = "; ".join(p.message for p in problems[:3])
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        return f"{len(problems)} problem{'s' if len(problems) != 1 else ''}: {shown}{more}"
    parts = [f"PostgreSQL leader {leader or '?'} (timeline {timeline if timeline is not None else '?'})"]
    sync = [r for r in replicas if r.sync_state in ("sync", "quorum")]
    if sync:
        r = sync[0]
        lag = "?" if r.lag_s is None else f"{r.lag_s:.3f}"
        parts.append(f"sync standby {r.node or r.name} lag {lag} s/{r.replay_lag_bytes or 0} B")
    masters = [r.node for r in redis_rows if r.role == "master"]
    if masters:
        replicas_up = sum(1 for r in redis_rows if r.role == "replica" and r.link == "up")
        parts.append(f"Redis master {masters[0]}, {replicas_up} replica{'s' if replicas_up != 1 else ''} in sync")
    if sentinel_rows:
        agree = sum(1 for s in sentinel_rows if s.agrees)
        parts.append(f"{agree}/{len(sentinel_rows)} Sentinels agree")
    writers = sorted({h.node or h.server for h in haproxy_rows if h.takes_writes})
    if writers:
        parts.append(f"HAProxy writes -> {', '.join(writers)}")
    return "; ".join(parts)
