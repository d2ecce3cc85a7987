"""The settings prontuario gives the HA engines, rendered the same for the lab and for the Macs.

One source for what must never differ between rehearsal and production: the lab's
renderer (:mod:`prontuario_cli.lab.config`) and bootstrap's take the safety settings
from here, and tests pin them.

Patroni's dynamic configuration (``bootstrap.dcs``, later ``patronictl edit-config``):

- ``synchronous_mode``: a commit is acknowledged only once the sync standby has it
  (RPO 0 on a Mac failover).
- ``failsafe_mode`` (Patroni ≥ 3.0): when etcd loses its quorum, the primary keeps
  running as long as **every** member still answers it through the REST API
  (``POST /failsafe``), instead of demoting itself when it cannot renew the leader
  key. It protects against the loss of the vote (two etcd members frozen, the
  witness and one Mac's etcd); it cannot help when the primary is cut off from its
  replica too (then it demotes: it cannot tell a dead replica from a partition), and
  no failover can happen while etcd has no quorum.
- ``ttl`` / ``loop_wait`` / ``retry_timeout``: how fast a lost leader is noticed;
  Patroni requires ``loop_wait + 2 × retry_timeout ≤ ttl``.
- ``slots``: permanent replication slots. The Cloud SQL replica subscribes with
  pglogical through a logical slot; Patroni creates it on the primary and copies and
  advances it on the replica, so the subscription finds it on whichever Mac leads
  after a failover.
"""

from __future__ import annotations

from typing import Any

# pglogical's output plugin: the plugin of the slot its subscriptions stream from.
PGLOGICAL_PLUGIN = "pglogical_output"
SAFETY = {"synchronous_mode": True, "failsafe_mode": True}
MAXIMUM_LAG_ON_FAILOVER = 1048576  # bytes: a replica further behind is never promoted

# The table prontuario itself writes to through HAProxy: the drills' write probes, and
# the marker rows that prove the cloud replica follows. It must be in the pglogical
# replication set (created before the subscription: pglogical replicates no DDL) and
# carries a primary key so every change to it can be replicated.
PROBE_SCHEMA = "prontuario_drill"
PROBE_TABLE = f"{PROBE_SCHEMA}.writes"
PROBE_TABLE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {PROBE_TABLE} (run_id text NOT NULL, seq bigint NOT NULL, "
    "written_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (run_id, seq))"
)


def logical_slot(database: str) -> dict[str, str]:
    """A permanent slot for a pglogical subscription to ``database``.

    Patroni copies a logical slot to a replica only when type, database and plugin all
    match what it was told, so the plugin must be pglogical's own.
    """
    return {"type": "logical", "database": database, "plugin": PGLOGICAL_PLUGIN}


def patroni_dcs(
    ttl: int, loop_wait: int, retry_timeout: int, postgresql: dict[str, Any], slots: dict[str, dict[str, str]] | None = None
) -> dict[str, Any]:
    """Patroni's ``bootstrap.dcs`` section (the cluster-wide dynamic configuration)."""
    if loop_wait + 2 * retry_timeout > ttl:
        raise ValueError(f"Patroni needs loop_wait + 2 x retry_timeout <= ttl (got {loop_wait} + 2 x {retry_timeout} > {ttl})")
    dcs: dict[str, Any] = {
        "ttl": ttl,
        "loop_wait": loop_wait,
        "retry_timeout": retry_timeout,
        "maximum_lag_on_failover": MAXIMUM_LAG_ON_FAILOVER,
        **SAFETY,
        "postgresql": postgresql,
    }
    if slots:
        dcs["slots"] = slots
    return dcs
