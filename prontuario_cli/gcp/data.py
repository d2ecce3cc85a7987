"""The data path to the Cloud SQL instance: one interface, two ways in.

- ``dsn``: psycopg to ``cloud.data`` (host, port, user, database, password) — the lab,
  or a private IP reachable from here.
- ``connector``: the Cloud SQL Python Connector with the pg8000 driver, private IP,
  the same credentials as the Admin API — production.

``cloud.data_via`` chooses; left out, a lab inventory uses ``dsn`` and any other uses
``connector``. The SQL below runs unchanged on both (``%s`` parameters).

Used to measure the replica's lag before promotion, to prove an emergency write after
it, and (failback) to freeze the instance and count what it holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from prontuario_cli.errors import ConfigError
from prontuario_cli.inventory import Inventory

CHECK_TABLE = "prontuario_emergency_checks"


class Session(Protocol):
    where: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def __enter__(self) -> "Session": ...

    def __exit__(self, *exc_info) -> None: ...


def data_via(inventory: Inventory) -> str:
    """``cloud.data_via``; left out, ``dsn`` in a lab and ``connector`` anywhere else."""
    from prontuario_cli.cluster.nodes import is_lab

    cloud = inventory.cloud
    if cloud.data_via:
        return cloud.data_via
    return "dsn" if is_lab(inventory) else "connector"


def open_session(inventory: Inventory, instance: str, deadline: float, *, private_ip: str | None = None) -> Session:
    """A session to ``instance`` (not yet entered): use it as ``with open_session(...) as s``.

    With ``dsn`` outside a lab, an instance other than ``cloud.sql_instance`` (the drill
    instance) is reached at ``private_ip`` (from instances.get) on port 5432, never at
    ``cloud.data.host``, which is the live replica.
    """
    from prontuario_cli.cluster.nodes import is_lab
    from prontuario_cli.secrets import optional_secret

    cloud = inventory.cloud
    data = cloud.data
    user = data.user if data else "postgres"
    database = data.database if data else inventory.cluster.database
    password = optional_secret(data.password, "cloud.data.password") if data else None
    if data_via(inventory) == "dsn":
        from prontuario_cli.connect.cloudsql import DsnTarget, dsn_session

        if data is None:
            raise ConfigError(f"{inventory.source}: cloud.data (host, port, user, database) is needed to reach the instance by DSN")
        host, port = data.host, data.port
        if not is_lab(inventory) and instance != cloud.sql_instance:
            if not private_ip:
                raise ConfigError(f"cannot reach {instance} by DSN: instances.get shows no private IP", hint="set cloud.data_via: connector")
            host, port = private_ip, 5432
        return dsn_session(DsnTarget(host, port, user, database, password), deadline)
    from prontuario_cli.connect.cloudsql import ConnectorSession, load_credentials

    credentials = load_credentials(cloud.api_base_url, cloud.credentials_file)
    return ConnectorSession(f"{cloud.project}:{cloud.region}:{instance}", user, database, password, credentials, deadline)


# --------------------------------------------------------------------------- facts

LAG_SQL = """
SELECT pg_is_in_recovery() AS pg_in_recovery,
       to_regclass('pglogical.subscription') IS NOT NULL AS has_pglogical,
       pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::bigint AS replay_behind_bytes,
       extract(epoch FROM pg_last_xact_replay_timestamp())::float8 AS last_replay_epoch,
       extract(epoch FROM clock_timestamp())::float8 AS server_epoch,
       (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS receiver_status
"""
# A Cloud SQL replica of an external server subscribes with pglogical: it is read-write
# all along, and a replica exactly as long as it holds a subscription (promoteReplica
# removes it). Its last applied commit keeps the source's commit time when the
# instance tracks commit timestamps (track_commit_timestamp); otherwise the lag is unknown.
SUBSCRIPTION_SQL = """
SELECT (SELECT count(*) FROM pglogical.subscription) AS subscriptions,
       (SELECT string_agg(status, ',' ORDER BY status) FROM pglogical.show_subscription_status()) AS status,
       CASE WHEN current_setting('track_commit_timestamp')::bool
            THEN extract(epoch FROM (SELECT timestamp FROM pg_last_committed_xact()))::float8 END AS last_apply_epoch
"""


@dataclass(frozen=True)
class ReplicaLag:
    """The replica's position, read on the replica itself.

    ``in_recovery``: the instance still follows the Macs — a physical standby in
    recovery, or a logical (pglogical) subscriber holding its subscription; False once
    promoted. ``receiver_status``: the WAL receiver's status, or for a subscriber its
    subscription's (``replicating``, ``down`` …). ``lag_s`` is the server's clock minus
    its last replayed commit (it grows while the Macs are down, and on an idle
    primary). ``replay_behind_bytes`` is WAL received but not yet replayed (a promotion
    replays it first: not lost).
    """

    in_recovery: bool
    receive_lsn: str | None
    replay_lsn: str | None
    replay_behind_bytes: int
    last_replay_epoch: float | None
    server_epoch: float
    receiver_status: str | None
    measured_at: float  # local Unix time of the measurement
    logical: bool = False  # follows through a pglogical subscription

    @property
    def streaming(self) -> bool:
        """Following the Macs right now (WAL streaming, or the subscription replicating)."""
        return self.in_recovery and self.receiver_status in ("streaming", "replicating")

    @property
    def lag_s(self) -> float | None:
        if self.last_replay_epoch is None:
            return None
        return max(0.0, self.server_epoch - self.last_replay_epoch)

    def rpo_bound_s(self, down_since: float | None) -> float | None:
        """Seconds between the last replayed commit and the moment the Macs were seen down.

        Computed from the server's own clock (no skew with this host): the lag at
        measurement minus how long the Macs had been down by then. An upper bound of
        the data lost: an idle primary makes it look larger than it is.
        """
        lag = self.lag_s
        if lag is None:
            return None
        if down_since is None:
            return round(lag, 3)
        return round(max(0.0, lag - max(0.0, self.measured_at - down_since)), 3)


def read_lag(session: Session) -> ReplicaLag:
    row = session.execute(LAG_SQL)[0]
    in_recovery = bool(row["pg_in_recovery"])
    last_replay, receiver, logical = row.get("last_replay_epoch"), row.get("receiver_status"), False
    if not in_recovery and row.get("has_pglogical"):
        sub = session.execute(SUBSCRIPTION_SQL)[0]
        if int(sub["subscriptions"] or 0):
            in_recovery, logical = True, True
            receiver, last_replay = sub.get("status"), sub.get("last_apply_epoch")
    return ReplicaLag(
        in_recovery=in_recovery,
        receive_lsn=row.get("receive_lsn"),
        replay_lsn=row.get("replay_lsn"),
        replay_behind_bytes=int(row.get("replay_behind_bytes") or 0),
        last_replay_epoch=float(last_replay) if last_replay is not None else None,
        server_epoch=float(row["server_epoch"]),
        receiver_status=receiver,
        measured_at=time.time(),
        logical=logical,
    )


def measure_lag(session: Session, catch_up_s: float = 10.0) -> ReplicaLag:
    """Read the lag, waiting up to ``catch_up_s`` for received WAL to be replayed."""
    deadline = time.monotonic() + catch_up_s
    lag = read_lag(session)
    while lag.in_recovery and lag.replay_behind_bytes > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        lag = read_lag(session)
    return lag


def write_check(session: Session, run_id: str, note: str) -> dict[str, Any]:
    """Prove the instance takes writes: insert one row into the check table and read it back."""
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {CHECK_TABLE} ("
        " id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(),"
        " run_id text NOT NULL, note text NOT NULL, server text)"
    )
    rows = session.execute(
        f"INSERT INTO {CHECK_TABLE} (run_id, note, server)"
        " VALUES (%s, %s, host(inet_server_addr()) || ':' || current_setting('port'))"
        " RETURNING id, at::text AS at, server, pg_is_in_recovery() AS in_recovery",
        (run_id, note),
    )
    row = rows[0]
    back = session.execute(f"SELECT count(*) AS n FROM {CHECK_TABLE} WHERE id = %s", (row["id"],))
    return {"id": row["id"], "at": row["at"], "server": row["server"], "read_back": back[0]["n"] == 1}


ROW_COUNTS_SQL = """
SELECT n.nspname AS schema, c.relname AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'
  -- an extension's own tables (pglogical's catalog on a logical replica): pg_dump
  -- recreates the extension, not their rows, so they are not the data being copied
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


def row_counts(session: Session) -> dict[str, int]:
    """Exact row count of every user table (``schema.table`` -> rows)."""
    counts: dict[str, int] = {}
    for table in session.execute(ROW_COUNTS_SQL):
        qualified = f'"{table["schema"]}"."{table["name"]}"'
        counts[f"{table['schema']}.{table['name']}"] = int(session.execute(f"SELECT count(*) AS n FROM {qualified}")[0]["n"])
    return counts
