"""The replication report as Prometheus metrics (node_exporter textfile collector).

Names follow Prometheus conventions (base units, ``_seconds`` / ``_bytes`` suffixes,
gauges only) and pass ``promtool check metrics``; the design's alert rules use
``postgresql_replication_lag_seconds``, ``up{job="mac-studio"}`` and
``gcp_fallback_active``.
"""

from __future__ import annotations

import datetime as _dt

from prontuario_cli.inventory import Inventory
from prontuario_cli.metrics import Family, Sample, render
from prontuario_cli.replication.report import ReplicationReport

MAC_JOB = "mac-studio"
WITNESS_JOB = "witness"


def replication_families(report: ReplicationReport, inventory: Inventory) -> list[Family]:
    cluster = inventory.cluster.patroni_scope
    lag_s, lag_b, streaming = [], [], []
    for row in report.replicas:
        labels = {"cluster": cluster, "replica": row.name, "kind": row.kind, "sync_state": row.sync_state}
        if row.lag_s is not None:
            lag_s.append(Sample(row.lag_s, labels))
        if row.replay_lag_bytes is not None:
            lag_b.append(Sample(max(0, row.replay_lag_bytes), labels))
        streaming.append(Sample(1 if row.state == "streaming" else 0, {"cluster": cluster, "replica": row.name}))
    redis_lag = [
        Sample(row.offset_lag_bytes, {"master_name": inventory.cluster.redis_master, "replica": row.node})
        for row in report.redis
        if row.role == "replica" and row.offset_lag_bytes is not None
    ]
    up = []
    for node in inventory.nodes:
        if node.name in report.nodes_up:
            job = WITNESS_JOB if node.role == "witness" else MAC_JOB
            up.append(Sample(1 if report.nodes_up[node.name] else 0, {"job": job, "instance": node.name}))
    sentinels_answering = sum(1 for s in report.sentinels if s.agrees is not None)
    sentinels_agreeing = sum(1 for s in report.sentinels if s.agrees)
    writers = len({h.node or h.server for h in report.haproxy if h.takes_writes})
    etcd = _etcd_families(report, cluster)
    checked = _dt.datetime.fromisoformat(report.checked_at).timestamp() if report.checked_at else None
    families = [
        Family("postgresql_replication_lag_seconds", "Replay lag of each PostgreSQL replica seen from the primary; 0 when it is not behind.", samples=tuple(lag_s)),
        Family("postgresql_replication_lag_bytes", "WAL bytes between the primary's current position and each replica's replay position.", samples=tuple(lag_b)),
        Family("postgresql_replication_streaming", "1 when the replica's WAL sender state is streaming.", samples=tuple(streaming)),
        Family(
            "postgresql_timeline",
            "Timeline of the PostgreSQL primary (a new value means a failover or switchover).",
            samples=(Sample(report.timeline, {"cluster": cluster}),) if report.timeline is not None else (),
        ),
        Family("redis_replication_offset_lag_bytes", "Replication offset bytes each Redis replica is behind its master.", samples=tuple(redis_lag)),
        Family(
            "redis_sentinels_answering",
            "Sentinels that answered the check.",
            samples=(Sample(sentinels_answering, {"master_name": inventory.cluster.redis_master}),) if report.sentinels else (),
        ),
        Family(
            "redis_sentinels_agreeing",
            "Sentinels that agree on the Redis master (and that it is the real master).",
            samples=(Sample(sentinels_agreeing, {"master_name": inventory.cluster.redis_master}),) if report.sentinels else (),
        ),
        Family(
            "haproxy_write_servers_up",
            "HAProxy servers taking writes (exactly 1 is healthy).",
            samples=(Sample(writers),) if report.haproxy else (),
        ),
        *etcd,
        *_cloud_families(report, cluster),
        Family("up", "1 when at least one service on the node answered the replication check.", samples=tuple(up)),
        Family("gcp_fallback_active", "1 when the Cloud SQL fallback has been promoted (emergency mode).", samples=(Sample(1 if report.gcp_fallback_active else 0),)),
        Family(
            "prontuario_replication_check_status",
            "Verdict of the replication check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
            samples=(Sample(int(report.status)),),
        ),
        Family("prontuario_replication_check_duration_seconds", "Wall time the replication check's probes took.", samples=(Sample(report.elapsed_s),)),
        Family(
            "prontuario_replication_check_timestamp_seconds",
            "Unix time of the replication check (to alert on a stale file).",
            samples=(Sample(checked),) if checked is not None else (),
        ),
    ]
    return families


def _cloud_families(report: ReplicationReport, cluster: str) -> list[Family]:
    """The Cloud SQL replica as the check saw it (alerts: CloudReplicaNotFollowing, CloudReplicaBehind)."""
    cloud = report.cloud
    if cloud is None:
        return []
    labels = {"cluster": cluster, "subscription": cloud.subscription}
    return [
        Family("prontuario_cloud_replica_following", "1 when the Cloud SQL replica's subscription replicates from the primary's slot within the RPO target.",
               samples=(Sample(1 if cloud.following else 0, labels),)),
        Family("prontuario_cloud_replica_lag_bytes", "WAL bytes between the primary's position and what the cloud replica confirmed.",
               samples=(Sample(cloud.lag_bytes, labels),) if cloud.lag_bytes is not None else ()),
        Family("prontuario_cloud_replica_lag_seconds", "Seconds since the cloud replica began missing WAL (from the checks' samples of the primary's position).",
               samples=(Sample(cloud.lag_s, labels),) if cloud.lag_s is not None else ()),
    ]


def _etcd_families(report: ReplicationReport, cluster: str) -> list[Family]:
    """etcd's quorum as the check saw it (alerts: EtcdNoSpareVote, EtcdQuorumLost, EtcdAlarm)."""
    q = report.etcd_quorum
    if q is None:
        return []
    labels = {"cluster": cluster}
    alarms = sum(len([a for a in row.alarms.split(",") if a]) for row in report.etcd)
    families = [
        Family("prontuario_etcd_members", "etcd members the inventory lists.", samples=(Sample(q["total"], labels),)),
        Family("prontuario_etcd_members_healthy", "etcd members that answered and agree on a raft leader.", samples=(Sample(q["healthy"], labels),)),
        Family("prontuario_etcd_quorum", "1 when a majority of etcd members is healthy (Patroni can hold its leader key).", samples=(Sample(1 if q["quorum"] else 0, labels),)),
        Family("prontuario_etcd_alarms", "Active etcd alarms (NOSPACE, CORRUPT) reported by the members.", samples=(Sample(alarms, labels),)),
        Family(
            "prontuario_etcd_member_up",
            "1 when the etcd member answered its status within the check's timeout.",
            samples=tuple(Sample(1 if row.reachable == "up" else 0, {"cluster": cluster, "member": row.node}) for row in report.etcd),
        ),
    ]
    if report.failsafe_mode is not None:
        families.append(
            Family("prontuario_patroni_failsafe_mode", "1 when Patroni's failsafe_mode is on (the primary survives an etcd quorum loss).",
                   samples=(Sample(1 if report.failsafe_mode else 0, labels),))
        )
    return families


def replication_textfile(report: ReplicationReport, inventory: Inventory) -> str:
    return render(replication_families(report, inventory))


def write_replication_textfile(path, report: ReplicationReport, inventory: Inventory):
    from prontuario_cli.metrics import write_textfile

    return write_textfile(path, replication_textfile(report, inventory))
