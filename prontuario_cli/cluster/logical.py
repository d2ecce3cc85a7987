"""Logical replication slots: the cloud replica's pglogical subscription reads one on the Macs.

Patroni keeps the subscription's slot as a permanent slot on every Mac, so that the
subscription continues from whichever Mac leads. The slot's ``confirmed_flush_lsn`` is
what the subscriber confirmed applying; the WAL between it and the server's position is
what the cloud replica would lose if it were promoted now. ``replication check`` reads
the slots on each Mac; ``gcp`` reads the subscription's slot on the current primary
through HAProxy's write frontend (:func:`read_slot`); the failover drill waits until the
sync standby holds its copy (:func:`slot_on`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prontuario_cli.connect import as_int
from prontuario_cli.inventory import Inventory

# Every logical slot of the server. On a standby (a copy Patroni keeps for a failover)
# pg_current_wal_lsn() raises an error, so the distance is taken from the replayed position.
PG_LOGICAL_SLOTS_SQL = """
SELECT slot_name, plugin, active, wal_status,
       confirmed_flush_lsn::text AS confirmed_flush_lsn,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
                       confirmed_flush_lsn)::bigint AS behind_bytes
FROM pg_replication_slots
WHERE slot_type = 'logical'
ORDER BY slot_name
""".strip()


@dataclass(frozen=True)
class LogicalSlot:
    """A logical replication slot on one server (the primary, or a standby's copy)."""

    name: str
    plugin: str | None
    active: bool
    wal_status: str | None  # reserved, extended, unreserved, lost
    confirmed_flush_lsn: str | None
    behind_bytes: int | None  # the server's position (replayed, on a standby) minus confirmed_flush_lsn


def parse_logical_slots(rows: Sequence[Mapping[str, Any]]) -> tuple[LogicalSlot, ...]:
    """PG_LOGICAL_SLOTS_SQL rows -> LogicalSlot per slot."""
    return tuple(
        LogicalSlot(
            name=str(row.get("slot_name") or ""),
            plugin=row.get("plugin"),
            active=bool(row.get("active")),
            wal_status=row.get("wal_status"),
            confirmed_flush_lsn=row.get("confirmed_flush_lsn"),
            behind_bytes=as_int(row.get("behind_bytes")),
        )
        for row in rows
    )


def read_slot(inventory: Inventory, name: str, deadline: float, *, application_name: str = "prontuario") -> LogicalSlot | None:
    """The logical slot ``name`` on the current primary, reached through HAProxy's write
    frontend (whichever Mac leads); None when the primary does not hold it.

    Raises the connector's errors (Refused, TimedOut, UnavailableError, ...), which name
    the frontend that did not answer.
    """
    from prontuario_cli.cluster.haproxy import frontend_target

    return _slot_at(frontend_target(inventory, application_name=application_name), name, deadline)


def slot_on(inventory: Inventory, node_name: str, name: str, timeout_s: float = 5.0) -> LogicalSlot | None:
    """The logical slot ``name`` on one node's PostgreSQL (a standby holds Patroni's copy);
    None when it does not hold it."""
    import time

    from prontuario_cli.connect.postgres import PgTarget
    from prontuario_cli.secrets import secret_or_none

    node = inventory.node(node_name)
    target = PgTarget(node.address, node.ports.postgresql, inventory.cluster.postgres_user, inventory.cluster.database,
                      secret_or_none(inventory, "postgres_password"), "prontuario-slots")
    return _slot_at(target, name, time.monotonic() + timeout_s)


def _slot_at(target, name: str, deadline: float) -> LogicalSlot | None:
    from prontuario_cli.connect.postgres import session

    with session(target, deadline) as pg:
        rows = pg.execute(PG_LOGICAL_SLOTS_SQL)
    return next((slot for slot in parse_logical_slots(rows) if slot.name == name), None)
