"""Patroni's ``patroni.yml`` for one Mac: etcd3 DCS, the safety settings, pg_rewind, slots.

The cluster-wide part (``bootstrap.dcs``) comes from :func:`prontuario_cli.engines.patroni_dcs`,
so sync mode and failsafe mode are the same wherever Patroni runs.
"""

from __future__ import annotations

from prontuario_cli.engines import logical_slot, patroni_dcs
from prontuario_cli.render.common import HEADER, to_yaml
from prontuario_cli.render.spec import REPLICATION_USER, NodeSpec

# Parameters a hot standby needs at least as high as its primary: the Macs share them,
# and so does the lab's stand-in of the cloud replica. The cloud replica subscribes with
# pglogical (logical decoding): wal_level logical and the library loaded at start on
# every Mac (either may lead); slots for each Mac's physical slot plus the subscription's
# logical one; workers for pglogical's supervisor, manager, apply and table-sync workers.
PG_SHARED = {
    "max_connections": 100,
    "max_wal_senders": 10,
    "max_replication_slots": 10,
    "max_worker_processes": 10,
    "max_locks_per_transaction": 64,
    "max_prepared_transactions": 0,
    "hot_standby": "on",
    "wal_level": "logical",
    "wal_keep_size": "256MB",
    "shared_preload_libraries": "pglogical",
}

MAX_SLOT_WAL_KEEP = "16GB"


def pg_hba(ns: NodeSpec) -> list[str]:
    """Local connections, then every Mac (HAProxy and Patroni connect from there) and the
    cloud replica, for queries and for replication."""
    method = ns.policy.pg_auth_method
    return [
        f"local all all {method}",
        *(f"host all all {host} {method}" for host in ns.pg_hba_hosts),
        *(f"host replication all {host} {method}" for host in ns.pg_hba_hosts),
    ]


def patroni_config(ns: NodeSpec) -> dict:
    """The Patroni configuration of one Mac, as a dict. Passwords are not in it: Patroni
    reads them from its environment (``PATRONI_SUPERUSER_PASSWORD`` …)."""
    me = next((m for m in ns.macs if m.name == ns.name), None)
    if me is None:
        raise ValueError(f"{ns.name} is not a data node: it runs no Patroni")
    t = ns.timings
    parameters = dict(PG_SHARED)
    # hot_standby_feedback: a replica holding a copy of a logical slot must keep the rows
    # its catalog_xmin needs (Patroni would force it on; rendered so it is visible).
    parameters.update({"wal_log_hints": "on", "max_wal_size": "256MB", "logging_collector": "off", "hot_standby_feedback": "on"})
    # A subscriber gone for a long time (the cloud replica promoted, or being re-created)
    # keeps WAL on the Macs through its slot: past this the slot is given up ("lost":
    # replication check says CRITICAL, the replica must be seeded again) instead of the
    # Macs' disks filling up under the primary.
    parameters["max_slot_wal_keep_size"] = MAX_SLOT_WAL_KEEP
    slots = {ns.cloud_slot: logical_slot(ns.database)} if ns.cloud_slot else None
    initdb: list = [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}]
    if ns.policy.initdb_no_sync:
        initdb.append("no-sync")
    return {
        "scope": ns.scope,
        "namespace": "/service/",
        "name": ns.name,
        "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
        "restapi": {"listen": f"{me.address}:{me.patroni}", "connect_address": f"{me.address}:{me.patroni}"},
        "etcd3": {"hosts": [f"{m.address}:{m.client_port}" for m in ns.etcd], "protocol": "http"},
        "bootstrap": {
            "dcs": patroni_dcs(t.ttl, t.loop_wait, t.retry_timeout, {"use_pg_rewind": True, "use_slots": True, "parameters": parameters}, slots),
            "initdb": initdb,
        },
        "postgresql": {
            "listen": f"{me.address}:{me.postgresql}",
            "connect_address": f"{me.address}:{me.postgresql}",
            "data_dir": ns.layout.pg_data,
            "bin_dir": ns.binaries.pg_bin,
            "use_unix_socket": True,
            "pgpass": ns.layout.pgpass,
            "authentication": {
                "superuser": {"username": ns.postgres_user},
                "replication": {"username": REPLICATION_USER},
                "rewind": {"username": ns.postgres_user},
            },
            "parameters": {"unix_socket_directories": ns.layout.pg_socket_dir},
            "pg_hba": pg_hba(ns),
        },
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }


def patroni_yaml(ns: NodeSpec) -> str:
    return HEADER + "\n" + to_yaml(patroni_config(ns))


def patroni_argv(ns: NodeSpec) -> list[str]:
    return [ns.binaries.patroni, ns.layout.patroni_config]
