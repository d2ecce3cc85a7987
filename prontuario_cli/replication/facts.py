"""Facts about replication: what to ask each service, and pure parsers of the answers.

Each fact is a query (SQL text, a Redis command, an HTTP path, a runtime-API
command) plus a parser from the raw answer to a frozen dataclass. Parsers never
touch the network, so they are tested with small fixtures of real answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

# The logical slots are read in the cluster layer (gcp reads the cloud replica's slot too);
# named here as well, beside every other fact the probes ask.
from prontuario_cli.cluster.logical import PG_LOGICAL_SLOTS_SQL, LogicalSlot, parse_logical_slots  # noqa: F401
from prontuario_cli.connect import as_float as _float
from prontuario_cli.connect import as_int as _int

# --------------------------------------------------------------------------- PostgreSQL

# One row about the server itself. On a primary the timeline is the first 8 hex
# digits of the current WAL file name; on a replica, the timeline its WAL receiver
# streams (or, when not streaming, the last checkpoint's).
PG_NODE_SQL = """
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery() THEN NULL
            ELSE pg_walfile_name(pg_current_wal_lsn()) END AS current_walfile,
       (SELECT received_tli FROM pg_stat_wal_receiver LIMIT 1) AS receiver_timeline,
       (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS receiver_status,
       (SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver LIMIT 1) AS receiver_sender,
       (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_timeline,
       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text
            ELSE pg_current_wal_lsn()::text END AS wal_lsn,
       current_setting('synchronous_standby_names') AS synchronous_standby_names,
       (SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep')::int AS sync_rep_waiters,
       (SELECT EXTRACT(EPOCH FROM max(clock_timestamp() - query_start))
          FROM pg_stat_activity WHERE wait_event = 'SyncRep')::float8 AS sync_rep_wait_s,
       (SELECT setting::float8 FROM pg_settings WHERE name = 'wal_receiver_status_interval') AS status_interval_s,
       (SELECT setting::float8 / 1000 FROM pg_settings WHERE name = 'wal_sender_timeout') AS wal_sender_timeout_s
""".strip()

# Per replica, on the primary. Lag times are NULL once a replica has caught up on an
# idle primary, and keep their last value while a replica is silent (frozen, cut off):
# the age of its last reply (reply_time, PostgreSQL 12+) says how long it has been
# silent. Byte counts are measured against the primary's current WAL position.
PG_REPLICATION_SQL = """
SELECT application_name,
       host(client_addr) AS client_addr,
       state,
       sync_state,
       sync_priority,
       EXTRACT(EPOCH FROM write_lag)::float8 AS write_lag_s,
       EXTRACT(EPOCH FROM flush_lag)::float8 AS flush_lag_s,
       EXTRACT(EPOCH FROM replay_lag)::float8 AS replay_lag_s,
       pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn)::bigint AS sent_lag_bytes,
       pg_wal_lsn_diff(pg_current_wal_lsn(), write_lsn)::bigint AS write_lag_bytes,
       pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)::bigint AS flush_lag_bytes,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS replay_lag_bytes,
       EXTRACT(EPOCH FROM (clock_timestamp() - reply_time))::float8 AS reply_age_s,
       EXISTS (SELECT 1 FROM pg_replication_slots s
                WHERE s.active_pid = pg_stat_replication.pid AND s.slot_type = 'logical') AS logical
FROM pg_stat_replication
ORDER BY application_name
""".strip()

# On the cloud replica (a pglogical subscriber): is pglogical there at all, then each
# subscription's state and the last provider position it applied (its replication origin).
PG_HAS_PGLOGICAL_SQL = "SELECT to_regprocedure('pglogical.show_subscription_status(name)') IS NOT NULL AS has_pglogical"
PG_SUBSCRIPTIONS_SQL = """
SELECT s.subscription_name::text AS name, s.status::text AS status, s.provider_node::text AS provider_node,
       s.slot_name::text AS slot_name, o.remote_lsn::text AS remote_lsn
FROM pglogical.show_subscription_status() AS s
LEFT JOIN pg_replication_origin_status AS o ON o.external_id = s.slot_name::text
ORDER BY 1
""".strip()

# What the cloud replica receives. pglogical replicates no DDL, and only the tables and
# sequences of a replication set: one created on the Macs after the subscription never
# reaches the replica, and a table without a primary key can carry only its inserts.
# Read on the primary (a provider: pglogical's catalog is there) and, for the columns, on
# the cloud replica too. User objects only: not the catalogs, nor an extension's own
# (pglogical's), nor temporary tables.
PG_HAS_PGLOGICAL_PROVIDER_SQL = "SELECT to_regclass('pglogical.replication_set_table') IS NOT NULL AS has_pglogical"
_USER_RELATION = """
      n.nspname NOT IN ('pg_catalog', 'information_schema', 'pglogical')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')"""
PG_RELATIONS_SQL = f"""
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name,
       CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END AS kind,
       c.relkind = 'S' OR EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_primary_key,
       CASE WHEN c.relkind = 'S' THEN EXISTS (SELECT 1 FROM pglogical.replication_set_seq q WHERE q.set_seqoid = c.oid)
            ELSE EXISTS (SELECT 1 FROM pglogical.replication_set_table t WHERE t.set_reloid = c.oid) END AS replicated
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'S') AND {_USER_RELATION}
ORDER BY 1
""".strip()
# Each table's columns ("name type", by name): the same text on both ends unless DDL ran on one only.
PG_TABLE_COLUMNS_SQL = f"""
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name,
       array_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attname)
         FILTER (WHERE a.attnum > 0 AND NOT a.attisdropped) AS columns
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid
WHERE c.relkind IN ('r', 'p') AND {_USER_RELATION}
GROUP BY 1
ORDER BY 1
""".strip()


@dataclass(frozen=True)
class PgNode:
    """One PostgreSQL server: primary or replica, its timeline, its WAL receiver."""

    in_recovery: bool
    timeline: int | None
    wal_lsn: str | None = None  # current (primary) or last replayed (replica) position
    receiver_status: str | None = None  # streaming, catchup, ... (replicas)
    receiver_sender: str | None = None  # host:port the replica streams from
    synchronous_standby_names: str = ""
    replicas: tuple["PgReplica", ...] = ()  # pg_stat_replication, primaries only
    sync_rep_waiters: int | None = None  # backends whose commit waits for a synchronous standby
    sync_rep_wait_s: float | None = None  # how long the oldest of them has waited
    status_interval_s: float | None = None  # wal_receiver_status_interval (a standby replies at least this often)
    wal_sender_timeout_s: float | None = None
    logical_slots: tuple[LogicalSlot, ...] | None = None  # every Mac (a standby holds Patroni's copies); None: not read
    subscriptions: tuple["Subscription", ...] | None = None  # a pglogical subscriber; None: no pglogical there
    relations: tuple[Relation, ...] | None = None  # a primary with pglogical: its tables and sequences; None: not read
    table_columns: Mapping[str, tuple[str, ...]] | None = None  # table -> its columns ("name type", by name); None: not read

    @property
    def role(self) -> str:
        return "replica" if self.in_recovery else "primary"

    @property
    def reply_every_s(self) -> float | None:
        """How often a healthy standby replies even when idle: its status interval, else
        half the sender timeout (when the primary asks for a reply)."""
        if self.status_interval_s and self.status_interval_s > 0:
            return self.status_interval_s
        if self.wal_sender_timeout_s and self.wal_sender_timeout_s > 0:
            return self.wal_sender_timeout_s / 2
        return None


@dataclass(frozen=True)
class Subscription:
    """A pglogical subscription, as the subscriber (the cloud replica) sees it."""

    name: str
    status: str  # replicating, initializing, down, disabled, unknown
    provider_node: str | None
    slot_name: str | None
    remote_lsn: str | None  # the last provider position it applied


@dataclass(frozen=True)
class Relation:
    """A user table or sequence on the primary, and whether pglogical can carry it."""

    name: str  # schema-qualified, quoted where SQL needs it
    kind: str  # table | sequence
    has_primary_key: bool  # always True for a sequence
    replicated: bool  # in a pglogical replication set


@dataclass(frozen=True)
class PgReplica:
    """One row of the primary's pg_stat_replication."""

    application_name: str
    client_addr: str | None
    state: str  # streaming, catchup, startup, backup, stopping
    sync_state: str  # sync, quorum, potential, async
    sync_priority: int | None = None
    write_lag_s: float | None = None
    flush_lag_s: float | None = None
    replay_lag_s: float | None = None
    sent_lag_bytes: int | None = None
    write_lag_bytes: int | None = None
    flush_lag_bytes: int | None = None
    replay_lag_bytes: int | None = None
    reply_age_s: float | None = None  # seconds since the standby's last reply (reply_time)
    logical: bool = False  # a logical walsender (a subscription), not a standby

    @property
    def unacknowledged_bytes(self) -> int:
        """WAL the standby has not confirmed flushing (commits on it wait for these)."""
        for value in (self.flush_lag_bytes, self.write_lag_bytes, self.replay_lag_bytes):
            if value is not None:
                return max(0, value)
        return 0

    @property
    def synchronous(self) -> bool:
        return self.sync_state in ("sync", "quorum")


def timeline_of_walfile(name: str | None) -> int | None:
    """``'000000030000000000000005'`` -> 3 (the first 8 hex digits are the timeline)."""
    if not name or len(name) < 8:
        return None
    try:
        return int(name[:8], 16)
    except ValueError:
        return None


def parse_pg_node(
    rows: Sequence[Mapping[str, Any]],
    replication_rows: Sequence[Mapping[str, Any]] = (),
    slot_rows: Sequence[Mapping[str, Any]] | None = None,
    subscription_rows: Sequence[Mapping[str, Any]] | None = None,
    relation_rows: Sequence[Mapping[str, Any]] | None = None,
    column_rows: Sequence[Mapping[str, Any]] | None = None,
) -> PgNode:
    """PG_NODE_SQL's single row (+ PG_REPLICATION_SQL's rows on a primary, PG_LOGICAL_SLOTS_SQL's
    on a Mac, PG_SUBSCRIPTIONS_SQL's on a pglogical subscriber, PG_RELATIONS_SQL's on a
    pglogical provider, PG_TABLE_COLUMNS_SQL's on either end) -> PgNode. Rows not given
    (None) leave their field None: not read, rather than "none there"."""
    if not rows:
        raise ValueError("PostgreSQL returned no row for the node query")
    row = rows[0]
    in_recovery = bool(row["in_recovery"])
    if in_recovery:
        timeline = _int(row.get("receiver_timeline")) or _int(row.get("checkpoint_timeline"))
    else:
        timeline = timeline_of_walfile(row.get("current_walfile")) or _int(row.get("checkpoint_timeline"))
    return PgNode(
        in_recovery=in_recovery,
        timeline=timeline,
        wal_lsn=row.get("wal_lsn"),
        receiver_status=row.get("receiver_status"),
        receiver_sender=row.get("receiver_sender"),
        synchronous_standby_names=row.get("synchronous_standby_names") or "",
        replicas=parse_pg_replication(replication_rows),
        sync_rep_waiters=_int(row.get("sync_rep_waiters")),
        sync_rep_wait_s=_float(row.get("sync_rep_wait_s")),
        status_interval_s=_float(row.get("status_interval_s")),
        wal_sender_timeout_s=_float(row.get("wal_sender_timeout_s")),
        logical_slots=None if slot_rows is None else parse_logical_slots(slot_rows),
        subscriptions=None if subscription_rows is None else tuple(
            Subscription(str(r.get("name") or ""), str(r.get("status") or "unknown"), r.get("provider_node"), r.get("slot_name"), r.get("remote_lsn"))
            for r in subscription_rows
        ),
        relations=None if relation_rows is None else parse_relations(relation_rows),
        table_columns=None if column_rows is None else parse_table_columns(column_rows),
    )


def parse_relations(rows: Sequence[Mapping[str, Any]]) -> tuple[Relation, ...]:
    """PG_RELATIONS_SQL rows -> Relation per table or sequence."""
    return tuple(
        Relation(str(r.get("name") or ""), str(r.get("kind") or "table"), bool(r.get("has_primary_key")), bool(r.get("replicated")))
        for r in rows
    )


def parse_table_columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, ...]]:
    """PG_TABLE_COLUMNS_SQL rows -> {table: ("name type", ...)} (a table without columns: ())."""
    return {str(r.get("name") or ""): tuple(str(col) for col in r.get("columns") or ()) for r in rows}


def parse_pg_replication(rows: Sequence[Mapping[str, Any]]) -> tuple[PgReplica, ...]:
    """PG_REPLICATION_SQL rows -> PgReplica per replica."""
    return tuple(
        PgReplica(
            application_name=str(row.get("application_name") or ""),
            client_addr=row.get("client_addr"),
            state=str(row.get("state") or ""),
            sync_state=str(row.get("sync_state") or ""),
            sync_priority=_int(row.get("sync_priority")),
            write_lag_s=_float(row.get("write_lag_s")),
            flush_lag_s=_float(row.get("flush_lag_s")),
            replay_lag_s=_float(row.get("replay_lag_s")),
            sent_lag_bytes=_int(row.get("sent_lag_bytes")),
            write_lag_bytes=_int(row.get("write_lag_bytes")),
            flush_lag_bytes=_int(row.get("flush_lag_bytes")),
            replay_lag_bytes=_int(row.get("replay_lag_bytes")),
            reply_age_s=_float(row.get("reply_age_s")),
            logical=bool(row.get("logical")),
        )
        for row in rows
    )


def needs_second_look(replicas: Sequence[PgReplica], silent_s: float = 0.5) -> bool:
    """True when a replica owes WAL and has been silent a while: worth one more look.

    Right after a write on an otherwise idle primary, a healthy standby owes a few bytes
    and its last reply is seconds old until it answers, a few milliseconds later. The
    probe then reads pg_stat_replication once more (within its deadline), so that the
    evaluator judges a standby that stays silent, not one caught mid-reply.
    """
    return any(not r.logical and r.unacknowledged_bytes > 0 and (r.reply_age_s or 0.0) > silent_s for r in replicas)


def lsn_to_int(lsn: str | None) -> int | None:
    """A pg_lsn text (``'16/B374D848'``) as a byte position; None for None or garbage."""
    if not lsn or "/" not in str(lsn):
        return None
    high, _, low = str(lsn).partition("/")
    try:
        return (int(high, 16) << 32) + int(low, 16)
    except ValueError:
        return None


# --------------------------------------------------------------------------- Redis

REDIS_INFO_COMMAND = ("INFO", "replication")


@dataclass(frozen=True)
class RedisReplicaLink:
    """A replica as its master lists it (``slaveN:ip=...,port=...,state=...,offset=...,lag=...``)."""

    host: str
    port: int | None
    state: str  # online, wait_bgsave, send_bulk
    offset: int | None
    lag_s: int | None  # seconds since the replica's last ack


@dataclass(frozen=True)
class RedisReplication:
    """INFO replication of one Redis server."""

    role: str  # master / replica
    master_repl_offset: int | None = None
    connected_replicas: tuple[RedisReplicaLink, ...] = ()
    master_host: str | None = None  # replicas only, from here on
    master_port: int | None = None
    master_link_status: str | None = None  # up / down
    master_last_io_s: int | None = None
    master_sync_in_progress: bool = False
    replica_repl_offset: int | None = None
    master_link_down_since_s: int | None = None


def parse_info_text(text: str) -> dict[str, str]:
    """Redis INFO text (``key:value`` lines, ``# Section`` headers) -> dict of strings."""
    from prontuario_cli.connect.redis import info_fields

    return info_fields(text)


def parse_redis_replication(text: str) -> RedisReplication:
    """INFO replication text -> RedisReplication."""
    info = parse_info_text(text)
    role = info.get("role", "unknown")
    role = "replica" if role == "slave" else role
    links = []
    for key in sorted((k for k in info if k.startswith("slave") and k[5:].isdigit()), key=lambda k: int(k[5:])):
        fields = dict(item.partition("=")[::2] for item in info[key].split(","))
        links.append(
            RedisReplicaLink(
                host=fields.get("ip", ""),
                port=_int(fields.get("port")),
                state=fields.get("state", ""),
                offset=_int(fields.get("offset")),
                lag_s=_int(fields.get("lag")),
            )
        )
    return RedisReplication(
        role=role,
        master_repl_offset=_int(info.get("master_repl_offset")),
        connected_replicas=tuple(links),
        master_host=info.get("master_host"),
        master_port=_int(info.get("master_port")),
        master_link_status=info.get("master_link_status"),
        master_last_io_s=_int(info.get("master_last_io_seconds_ago")),
        master_sync_in_progress=info.get("master_sync_in_progress") == "1",
        replica_repl_offset=_int(info.get("slave_repl_offset")),
        master_link_down_since_s=_int(info.get("master_link_down_since_seconds")),
    )


# --------------------------------------------------------------------------- Sentinel


def sentinel_commands(master_name: str) -> list[tuple[str, ...]]:
    """What each Sentinel is asked: its master's address, the quorum check, the master's record."""
    return [
        ("SENTINEL", "get-master-addr-by-name", master_name),
        ("SENTINEL", "ckquorum", master_name),
        ("SENTINEL", "master", master_name),
    ]


@dataclass(frozen=True)
class SentinelView:
    """One Sentinel's opinion about the monitored master."""

    master_host: str | None
    master_port: int | None
    quorum_ok: bool | None  # None when CKQUORUM was not answered
    quorum_message: str = ""
    other_sentinels: int | None = None
    known_replicas: int | None = None
    flags: tuple[str, ...] = ()
    quorum: int | None = None

    @property
    def master(self) -> str | None:
        return f"{self.master_host}:{self.master_port}" if self.master_host else None


def parse_sentinel(addr_reply: Any, ckquorum_reply: Any, master_reply: Any) -> SentinelView:
    """The three replies of :func:`sentinel_commands` -> SentinelView.

    An error reply (an exception object, e.g. ``NOQUORUM ...`` or ``No such master``)
    is accepted in any slot.
    """
    host = port = None
    if isinstance(addr_reply, (list, tuple)) and len(addr_reply) == 2:
        host, port = str(addr_reply[0]), _int(addr_reply[1])
    if isinstance(ckquorum_reply, BaseException):
        quorum_ok, message = False, getattr(ckquorum_reply, "reply", None) or str(ckquorum_reply)
    elif ckquorum_reply is None:
        quorum_ok, message = None, ""
    else:
        text = ckquorum_reply.decode() if isinstance(ckquorum_reply, bytes) else str(ckquorum_reply)
        quorum_ok, message = text.upper().startswith("OK"), text
    record: dict[str, str] = {}
    if isinstance(master_reply, (list, tuple)):
        items = list(master_reply)
        record = {str(items[i]): str(items[i + 1]) for i in range(0, len(items) - 1, 2)}
    elif isinstance(master_reply, dict):
        record = {str(k): str(v) for k, v in master_reply.items()}
    flags = tuple(f for f in record.get("flags", "").split(",") if f)
    return SentinelView(
        master_host=host,
        master_port=port,
        quorum_ok=quorum_ok,
        quorum_message=message.strip(),
        other_sentinels=_int(record.get("num-other-sentinels")),
        known_replicas=_int(record.get("num-slaves")),
        flags=flags,
        quorum=_int(record.get("quorum")),
    )


