"""The stand-in's replication: a pglogical subscription to the Macs, as Cloud SQL does it.

Cloud SQL follows an external server through a *source representation instance* (the
server's host:port) and a pglogical subscription on the replica. The lab does the same
between its Macs and its stand-in PostgreSQL:

- **provider** (the cluster, reached through HAProxy's write frontend, so whichever Mac
  leads): ``CREATE EXTENSION pglogical``, a provider node, the lab's tables (each with a
  primary key, created before the subscription: pglogical replicates no DDL) and every
  table and sequence of the replicated schemas in the ``default`` set;
- **subscriber** (the stand-in): a node and one subscription, whose structure and data
  are copied first (``synchronize_structure``), then changes streamed through the
  logical slot Patroni keeps on both Macs (``pgl_<db>_<provider node>_<subscription>``).

Every function is idempotent (it looks before it creates), so ``lab up`` and a rebuild
can run it again on a half-made pair. Lab only: plain psycopg with short timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prontuario_cli.engines import PROBE_SCHEMA, PROBE_TABLE_DDL

# The tables the lab and its drills write to: prontuario's probe table (the drills'
# write probes and the cloud replica's marker rows), and clinical_notes, which stands
# for the application's tables. Created before the subscription, since tables created
# later on the Macs never reach the replica.
LAB_SCHEMA = (
    f"CREATE SCHEMA IF NOT EXISTS {PROBE_SCHEMA}",
    PROBE_TABLE_DDL,
    "CREATE TABLE IF NOT EXISTS public.clinical_notes (id bigserial PRIMARY KEY, tag text, at timestamptz DEFAULT now())",
)
REPLICATED_SCHEMAS = ("public", PROBE_SCHEMA)
REPLICATION_SET = "default"
SUBSCRIBER_NODE = "cloudsql"

MISSING_TABLES_SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname) AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = %s AND n.nspname = ANY(%s)
  AND NOT EXISTS (
    SELECT 1 FROM pglogical.replication_set s
    JOIN pglogical.{catalog} t ON t.set_id = s.set_id
    WHERE s.set_name = %s AND t.{column} = c.oid)
ORDER BY 1
"""


@dataclass(frozen=True)
class Subscription:
    """What the subscriber says about its subscription (None fields: not there)."""

    name: str | None
    status: str | None  # initializing, replicating, down, disabled
    provider_dsn: str | None
    slot: str | None

    @property
    def replicating(self) -> bool:
        return self.status == "replicating"


def dsn(host: str, port: int, database: str, user: str = "postgres") -> str:
    """A libpq DSN for pglogical. ``connect_timeout``: a reconnect to a frontend with no
    primary behind it fails in seconds instead of hanging; keepalives: a provider that
    vanished without closing the connection is noticed in about 10 s."""
    return (
        f"host={host} port={port} dbname={database} user={user} connect_timeout=2 "
        "keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=3"
    )


def host_port(text: str) -> tuple[str, int]:
    """``host:port`` (the Admin API's ``onPremisesConfiguration.hostPort``) as a pair."""
    host, _, port = str(text).rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"not host:port: {text!r}")
    return host, int(port)


def _connect(port: int, database: str, timeout_s: float = 5.0, host: str = "127.0.0.1"):
    import psycopg

    return psycopg.connect(host=host, port=port, user="postgres", dbname=database, connect_timeout=max(1, int(timeout_s)), autocommit=True)


def _rows(conn, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params or None)
        return cur.fetchall() if cur.description else []


def _has_extension(conn) -> bool:
    return bool(_rows(conn, "SELECT to_regclass('pglogical.local_node') IS NOT NULL AS ok")[0]["ok"])


def _local_node(conn) -> str | None:
    rows = _rows(conn, "SELECT n.node_name FROM pglogical.local_node l JOIN pglogical.node n ON n.node_id = l.node_id")
    return rows[0]["node_name"] if rows else None


def ensure_database(port: int, database: str) -> None:
    """The subscriber's database (its name is the first part of the slot's name)."""
    with _connect(port, "postgres") as conn:
        if not _rows(conn, "SELECT 1 AS x FROM pg_database WHERE datname = %s", (database,)):
            conn.execute(f'CREATE DATABASE "{database}"')


def prepare_provider(port: int, database: str, provider_node: str, provider_dsn: str) -> list[str]:
    """On the cluster (``port``: the HAProxy write frontend): the extension, the provider
    node, the lab's tables, and every table and sequence of the replicated schemas in the
    set. Returns the names it added to the set."""
    added: list[str] = []
    with _connect(port, database) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pglogical")
        if _local_node(conn) is None:
            conn.execute("SELECT pglogical.create_node(node_name := %s, dsn := %s)", (provider_node, provider_dsn))
        for statement in LAB_SCHEMA:
            conn.execute(statement)
        schemas = list(REPLICATED_SCHEMAS)
        tables = MISSING_TABLES_SQL.format(catalog="replication_set_table", column="set_reloid")
        for row in _rows(conn, tables, ("r", schemas, REPLICATION_SET)):
            conn.execute("SELECT pglogical.replication_set_add_table(%s, %s::regclass, synchronize_data := true)", (REPLICATION_SET, row["name"]))
            added.append(row["name"])
        sequences = MISSING_TABLES_SQL.format(catalog="replication_set_seq", column="set_seqoid")
        for row in _rows(conn, sequences, ("S", schemas, REPLICATION_SET)):
            conn.execute("SELECT pglogical.replication_set_add_sequence(%s, %s::regclass, synchronize_data := true)", (REPLICATION_SET, row["name"]))
            added.append(row["name"])
    return added


def subscribe(port: int, database: str, subscription: str, provider_dsn: str) -> bool:
    """On the stand-in: its node and the subscription (structure and data copied first).
    True when it created the subscription now."""
    with _connect(port, database) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pglogical")
        if _local_node(conn) is None:
            conn.execute(
                "SELECT pglogical.create_node(node_name := %s, dsn := %s)",
                (SUBSCRIBER_NODE, dsn("127.0.0.1", port, database)),
            )
        if _rows(conn, "SELECT 1 AS x FROM pglogical.subscription WHERE sub_name = %s", (subscription,)):
            return False
        conn.execute(
            "SELECT pglogical.create_subscription(subscription_name := %s, provider_dsn := %s, "
            "synchronize_structure := true, synchronize_data := true)",
            (subscription, provider_dsn),
        )
        return True


def subscription(port: int, database: str, name: str, timeout_s: float = 2.0) -> Subscription | None:
    """The subscription as the stand-in reports it; a Subscription of Nones when there is
    none; None when the stand-in does not answer."""
    import psycopg

    try:
        with _connect(port, database, timeout_s) as conn:
            if not _has_extension(conn):
                return Subscription(None, None, None, None)
            rows = _rows(conn, "SELECT subscription_name, status, provider_dsn, slot_name FROM pglogical.show_subscription_status(%s)", (name,))
    except psycopg.Error:
        return None
    if not rows:
        return Subscription(None, None, None, None)
    row = rows[0]
    return Subscription(row["subscription_name"], row["status"], row["provider_dsn"], row["slot_name"])


def promoted(port: int, database: str, timeout_s: float = 2.0) -> bool | None:
    """True once the stand-in stands alone: it was made a subscriber (its pglogical node
    exists) and holds no subscription any more. False while it subscribes, or before it
    ever did; None when it does not answer. Read from the database, never remembered."""
    import psycopg

    try:
        with _connect(port, database, timeout_s) as conn:
            if not _has_extension(conn):
                return False
            row = _rows(conn, "SELECT (SELECT count(*) FROM pglogical.local_node) AS nodes, (SELECT count(*) FROM pglogical.subscription) AS subs")[0]
    except psycopg.Error:
        return None
    return row["nodes"] > 0 and row["subs"] == 0


def unsubscribe(port: int, database: str, name: str) -> None:
    """Stop following the Macs for good: drop the subscription (the replica becomes a
    stand-alone primary). Its slot on the Macs is dropped when they answer; Patroni
    keeps the permanent slot, which a rebuilt subscription takes over."""
    with _connect(port, database, 10) as conn:
        conn.execute("SELECT pglogical.drop_subscription(%s, ifexists := true)", (name,))


SEQUENCE_OWNERS_SQL = """
SELECT format('%I.%I', sn.nspname, s.relname) AS seq, format('%I.%I', tn.nspname, t.relname) AS tbl, quote_ident(a.attname) AS col
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE d.deptype IN ('a', 'i') AND sn.nspname <> 'pglogical'
"""


def advance_sequences(port: int, database: str) -> int:
    """Move every column-owned sequence past the largest value its column holds.

    pglogical copies sequences only now and then (and ahead by a margin), so a replica
    promoted right after a burst of inserts could hand out ids its tables already hold.
    Returns how many sequences it looked at."""
    with _connect(port, database, 10) as conn:
        owned = _rows(conn, SEQUENCE_OWNERS_SQL)
        for row in owned:
            conn.execute(
                f"SELECT setval('{row['seq']}', GREATEST((SELECT last_value FROM {row['seq']}), "
                f"(SELECT COALESCE(max({row['col']}), 0) FROM {row['tbl']})::bigint, 1))"
            )
    return len(owned)


def repoint(port: int, database: str, name: str, provider_node: str, provider_dsn: str) -> str:
    """Point the subscription at another address of the provider: a new interface of the
    provider node, then the subscription moved onto it (its apply worker restarts there).
    Returns the interface's name."""
    import hashlib

    interface = f"{provider_node}_{hashlib.sha1(provider_dsn.encode()).hexdigest()[:8]}"
    with _connect(port, database, 10) as conn:
        known = _rows(
            conn,
            "SELECT 1 AS x FROM pglogical.node_interface i JOIN pglogical.node n ON n.node_id = i.if_nodeid WHERE n.node_name = %s AND i.if_name = %s",
            (provider_node, interface),
        )
        if not known:
            conn.execute("SELECT pglogical.alter_node_add_interface(%s, %s, %s)", (provider_node, interface, provider_dsn))
        conn.execute("SELECT pglogical.alter_subscription_interface(%s, %s)", (name, interface))
    return interface


def restart(port: int, database: str, name: str) -> None:
    """Restart a subscription's apply worker now (disable, enable). pglogical's manager
    retries a failed worker once after a few seconds, then only every 180 s."""
    with _connect(port, database, 5) as conn:
        conn.execute("SELECT pglogical.alter_subscription_disable(%s, immediate := true)", (name,))
        conn.execute("SELECT pglogical.alter_subscription_enable(%s, immediate := true)", (name,))
