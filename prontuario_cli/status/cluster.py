"""Rows from the replication check: each node, PostgreSQL, etcd, Redis, Sentinels, HAProxy, the cloud replica.

:func:`replication_rows` runs :func:`prontuario_cli.replication.check` (every probe
concurrently, under the status deadline) and :func:`rows_from_replication` turns its
report into rows, without I/O. A problem whose message starts with a node's name
("mac-studio-2: ...", the replication check's convention) belongs to that node's row;
every other problem to the row of its component. The "fallback active" problem is left
to the fallback row (:mod:`prontuario_cli.status.fallback`), which reads the flag itself.
"""

from __future__ import annotations

import time
from typing import Sequence

from prontuario_cli.inventory import Inventory
from prontuario_cli.replication.report import MemberRow, Problem, ReplicationReport
from prontuario_cli.report import Perf, Status
from prontuario_cli.status.rows import Row, problem_row

LOOK = "prontuario replication status"  # the full replication picture
ACK_TIMELINE = "prontuario replication check --ack-timeline"  # once the failover is understood
CLOUD = "prontuario gcp status"  # the fallback runbook's first step
_FALLBACK_ACTIVE = "the Cloud SQL fallback is active"
_ROW_OF = {"etcd": "etcd", "postgres": "postgres", "timeline": "postgres", "check": "postgres", "redis": "redis", "sentinel": "sentinel", "haproxy": "haproxy", "cloud": "cloud"}


def replication_rows(inventory: Inventory, deadline: float) -> list[Row]:
    """The ``replication`` source: one bounded replication check, as rows."""
    from prontuario_cli import replication

    report = replication.check(inventory, timeout_s=max(0.05, deadline - time.monotonic()))
    return rows_from_replication(report, inventory)


def rows_from_replication(report: ReplicationReport, inventory: Inventory) -> list[Row]:
    """Node rows (inventory order), then PostgreSQL, Redis, Sentinels, HAProxy and the cloud replica."""
    names = [n.name for n in inventory.nodes]
    by_node: dict[str, list[Problem]] = {name: [] for name in names}
    by_row: dict[str, list[Problem]] = {}
    for problem in report.problems:
        if problem.component == "cloud" and problem.message.startswith(_FALLBACK_ACTIVE):
            continue
        node = next((name for name in names if problem.message.startswith(f"{name}: ")), None)
        if node is not None:
            by_node[node].append(problem)
        else:
            by_row.setdefault(_ROW_OF.get(problem.component, "postgres"), []).append(problem)

    macs = [n.name for n in inventory.macs]
    macs_lost = bool(macs) and all(report.nodes_up.get(name) is False for name in macs)
    rows = [_node_row(node, report, by_node[node.name], macs_lost) for node in inventory.nodes]
    if rows:
        up = sum(1 for name in macs if report.nodes_up.get(name))
        rows[0] = _with_perf(rows[0], Perf("macs_up", up, "", min=0, max=len(macs)))
    rows.append(_postgres_row(report, by_row.get("postgres", [])))
    if report.etcd_quorum is not None or by_row.get("etcd"):
        rows.append(_etcd_row(report, inventory, by_row.get("etcd", [])))
    if report.redis or by_row.get("redis"):
        rows.append(_redis_row(report, by_row.get("redis", [])))
    if report.sentinels or by_row.get("sentinel"):
        rows.append(_sentinel_row(report, by_row.get("sentinel", [])))
    rows.append(_haproxy_row(report, inventory, by_row.get("haproxy", [])))
    cloud = next((m for m in report.members if m.kind == "cloud"), None)
    if cloud is not None or by_row.get("cloud"):
        rows.append(_cloud_row(cloud, by_row.get("cloud", [])))
    return rows


def _with_perf(row: Row, *perf: Perf) -> Row:
    from dataclasses import replace

    return replace(row, perf=(*row.perf, *perf))


def _strip(node: str, message: str) -> str:
    return message[len(node) + 2 :] if message.startswith(f"{node}: ") else message


# --------------------------------------------------------------------------- nodes


def _node_row(node, report: ReplicationReport, problems: list[Problem], macs_lost: bool) -> Row:
    name = node.name
    member = next((m for m in report.members if m.node == name and m.kind != "cloud"), None)
    redis = next((r for r in report.redis if r.node == name), None)
    sentinel = next((s for s in report.sentinels if s.node == name), None)
    etcd = next((e for e in report.etcd if e.node == name), None)
    replica = next((r for r in report.replicas if r.node == name), None)
    up = report.nodes_up.get(name)
    said = (member.reachable if member else None, redis.reachable if redis else None, etcd.reachable if etcd else None)
    words = [w for w in said if w and w not in ("up", "-")]
    if not words:  # a Sentinel-only node: its row has no reachability word
        words = ["no answer" if any("no answer" in p.message for p in problems) else "down"]
    reach = "-" if up is None else "up" if up else ("no answer" if "no answer" in words else words[0])

    services = []
    parts = []
    if member is not None:
        services.append("PostgreSQL")
        parts.append(_pg_words(member, replica))
    if redis is not None:
        services.append("Redis")
        parts.append(f"Redis {redis.role}" if redis.role else f"Redis {redis.reachable}")
    if sentinel is not None:
        services.append("Sentinel")
        parts.append("Sentinel " + ("agrees" if sentinel.agrees else "no answer" if sentinel.agrees is None else "disagrees"))
    if etcd is not None:
        services.append("etcd")
        parts.append("etcd " + ("leader" if etcd.leader else "member" if etcd.reachable == "up" else etcd.reachable))

    found = [(p.status, _strip(name, p.message)) for p in problems]
    if not found:  # a row marked by a note that is not among the listed problems
        found = [(row.status, "") for row in (member, redis, sentinel, etcd) if row is not None and row.status != Status.OK]
    if up is False:
        state = "NO ANSWER (frozen, overloaded or cut off?)" if reach == "no answer" else reach.upper()
        timeout = f" within {report.timeout_s:g} s" if reach == "no answer" else ""
        found = [(Status.worst([s for s, _ in found] or [Status.CRITICAL]), f"nothing it runs answered{timeout}: {', '.join(services) or 'no service'}")]
    elif up is None:
        state = "not probed (no service of this node is in the inventory's ports)"
    else:
        state = "up: " + "; ".join(parts)
    found = [(s, text or state) for s, text in found]
    details = {
        "role": node.role,
        "reachable": reach,
        "postgres_role": member.role if member else None,
        "timeline": member.timeline if member else None,
        "sync_state": replica.sync_state if replica else None,
        "lag_s": replica.lag_s if replica else None,
        "lag_bytes": replica.replay_lag_bytes if replica else None,
        "redis_role": redis.role if redis else None,
        "sentinel_agrees": sentinel.agrees if sentinel else None,
    }
    action = CLOUD if macs_lost and node.role != "witness" else LOOK
    return problem_row("node", name, state, found, action, details=details)


def _pg_words(member: MemberRow, replica) -> str:
    if member.reachable != "up":
        return f"PostgreSQL {member.reachable}" + (f" (Patroni lists it as {member.role})" if member.role else "")
    role = member.role or "?"
    text = f"PostgreSQL {role}"
    if replica is not None and replica.sync_state and replica.sync_state not in role:
        text += f" ({replica.sync_state})"
    if member.timeline is not None:
        text += f", timeline {member.timeline}"
    if replica is not None:
        text += f", lag {_lag(replica.lag_s, replica.replay_lag_bytes)}"
    return text


def _lag(seconds: float | None, behind: int | None) -> str:
    shown = "?" if seconds is None else f"{seconds * 1000:.0f} ms"
    return shown + ("" if behind is None else f"/{behind} B")


# --------------------------------------------------------------------------- components


def _found(problems: Sequence[Problem]) -> list[tuple[Status, str]]:
    return [(p.status, p.message) for p in problems]


def _postgres_row(report: ReplicationReport, problems: list[Problem]) -> Row:
    sync = next((r for r in report.replicas if r.kind == "member" and r.sync_state in ("sync", "quorum")), None)
    timeline = "?" if report.timeline is None else str(report.timeline)
    if report.timeline_changed and report.previous_timeline is not None:
        timeline = f"{report.previous_timeline}→{report.timeline}"
    state = f"leader {report.leader or 'none'}, timeline {timeline}"
    state += f", sync standby {sync.node or sync.name} lag {_lag(sync.lag_s, sync.replay_lag_bytes)}" if sync else ", no sync standby"
    only_timeline = problems and all(p.component == "timeline" for p in problems)
    details = {
        "leader": report.leader,
        "timeline": report.timeline,
        "previous_timeline": report.previous_timeline if report.timeline_changed else None,
        "sync_standby": (sync.node or sync.name) if sync else None,
        "sync_lag_s": sync.lag_s if sync else None,
    }
    perf = (Perf("pg_sync_lag", sync.lag_s if sync else None, "s", warn=report.sync_target_s, crit=report.alert_s, min=0),)
    return problem_row("postgres", "PostgreSQL", state, _found(problems), ACK_TIMELINE if only_timeline else LOOK, details=details, perf=perf)


def _redis_row(report: ReplicationReport, problems: list[Problem]) -> Row:
    masters = [r.node for r in report.redis if r.role == "master"]
    in_sync = sum(1 for r in report.redis if r.role == "replica" and r.link == "up")
    state = f"master {', '.join(masters) or 'none'}, {in_sync} replica{'s' if in_sync != 1 else ''} linked"
    return problem_row("redis", "Redis", state, _found(problems), LOOK, details={"master": masters[0] if len(masters) == 1 else None, "replicas_in_sync": in_sync})


def _sentinel_row(report: ReplicationReport, problems: list[Problem]) -> Row:
    total = len(report.sentinels)
    answering = [s for s in report.sentinels if s.agrees is not None]
    agreeing = [s for s in report.sentinels if s.agrees]
    masters = sorted({s.master for s in agreeing if s.master})
    quorum = "quorum ok" if answering and all(s.quorum_ok for s in answering) else "quorum NOT ok" if answering else "no answer"
    state = f"{len(agreeing)}/{total} agree" + (f" on {masters[0]}" if len(masters) == 1 else "") + f", {quorum}"
    details = {"master": masters[0] if len(masters) == 1 else None, "agreeing": len(agreeing), "answering": len(answering), "total": total}
    perf = (Perf("sentinels_agreeing", len(agreeing), "", min=0, max=total),)
    return problem_row("sentinel", "Sentinels", state, _found(problems), LOOK, details=details, perf=perf)


def _etcd_row(report: ReplicationReport, inventory: Inventory, problems: list[Problem]) -> Row:
    q = report.etcd_quorum or {}
    if q:
        state = f"{q['healthy']}/{q['total']} members healthy" + (f", leader {q['leader']}" if q.get("leader") else "")
        state += "" if q["quorum"] else f", NO QUORUM (needs {q['majority']})"
    else:
        state = "not read"
    if report.failsafe_mode is not None:
        state += f"; failsafe {'on' if report.failsafe_mode else 'OFF'}"
    endpoints = ",".join(f"http://{n.address}:{n.ports.etcd_client}" for n in inventory.nodes if n.ports.etcd_client)
    details = {**q, "failsafe_mode": report.failsafe_mode}
    perf = (Perf("etcd_healthy", q.get("healthy"), "", min=0, max=q.get("total")),)
    return problem_row("etcd", "etcd", state, _found(problems), f"etcdctl --endpoints={endpoints} endpoint status -w table", details=details, perf=perf)


def _haproxy_row(report: ReplicationReport, inventory: Inventory, problems: list[Problem]) -> Row:
    writes = sorted({h.node or h.server for h in report.haproxy if h.takes_writes})
    reads = sorted({h.node or h.server for h in report.haproxy if h.proxy == inventory.haproxy.read_backend and h.state.startswith("UP")})
    if report.haproxy:
        state = f"writes → {', '.join(writes) or 'nowhere'}; reads → {', '.join(reads) or 'nowhere'}"
    else:
        state = "not read"
    perf = (Perf("haproxy_write_servers", len(writes) if report.haproxy else None, "", min=0),)
    return problem_row("haproxy", "HAProxy", state, _found(problems), LOOK, details={"writes_to": writes, "reads_from": reads}, perf=perf)


def _cloud_row(member: MemberRow | None, problems: list[Problem]) -> Row:
    if member is None:
        state = "not probed"
    elif member.reachable != "up":
        state = member.reachable
    else:
        state = f"{member.state or member.role or '?'}, timeline {member.timeline if member.timeline is not None else '?'}"
        if member.note and member.status == Status.OK:
            state += f" ({member.note})"
    found = [(p.status, p.message) for p in problems]
    details = {"state": member.state if member else None, "timeline": member.timeline if member else None, "reachable": member.reachable if member else None}
    return problem_row("cloud", "cloud replica", state, found, CLOUD, details=details)
