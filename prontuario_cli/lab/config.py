"""Every file and command line of the lab, rendered from a :class:`LabSpec`.

Pure functions: text in, text out (no processes, no files written here), so the
rendering is unit-tested without a running lab. The writers live in ``up.py``.
"""

from __future__ import annotations

import json

from prontuario_cli.engines import patroni_dcs
from prontuario_cli.lab.spec import MACS, NODE_NAMES, SERVE_KINDS, LabSpec

REPLICATION_USER = "replicator"
STANDIN_APPLICATION_NAME = "cloudsql-standin"

# Parameters shared by the Patroni nodes and the stand-in: a hot standby needs
# these at least as high as on the primary it follows.
PG_SHARED = {
    "max_connections": 100,
    "max_wal_senders": 10,
    "max_replication_slots": 10,
    "max_worker_processes": 8,
    "max_locks_per_transaction": 64,
    "max_prepared_transactions": 0,
    "hot_standby": "on",
    "wal_level": "replica",
    "wal_keep_size": "256MB",
}

PG_HBA = [
    "local all all trust",
    "host all all 127.0.0.1/32 trust",
    "host replication all 127.0.0.1/32 trust",
]


def _yaml(data) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def _seconds(value: float) -> str:
    """HAProxy time: whole seconds as ``5s``, fractions as milliseconds."""
    return f"{int(value)}s" if float(value).is_integer() else f"{int(round(value * 1000))}ms"


# --------------------------------------------------------------------------- etcd


def etcd_argv(spec: LabSpec, node: str) -> list[str]:
    """etcd 3.4 command line for one member (v3 API, zap logger to stderr)."""
    ports = spec.node_ports(node)
    cluster = ",".join(f"{n}=http://127.0.0.1:{spec.node_ports(n).etcd_peer}" for n in NODE_NAMES)
    return [
        spec.binaries.etcd,
        "--name", node,
        "--data-dir", str(spec.sub("etcd", node)),
        "--listen-client-urls", f"http://127.0.0.1:{ports.etcd_client}",
        "--advertise-client-urls", f"http://127.0.0.1:{ports.etcd_client}",
        "--listen-peer-urls", f"http://127.0.0.1:{ports.etcd_peer}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{ports.etcd_peer}",
        "--initial-cluster", cluster,
        "--initial-cluster-state", "new",
        "--initial-cluster-token", f"prontuario-lab-{spec.base_port}",
        "--logger", "zap",
        "--log-outputs", "stderr",
    ]  # fmt: skip


# --------------------------------------------------------------------------- Patroni


def patroni_config(spec: LabSpec, node: str) -> dict:
    """The Patroni YAML for one Mac (as a dict): etcd3 DCS, the shared safety settings
    (:mod:`prontuario_cli.engines`: sync mode, failsafe mode), pg_rewind, slots."""
    t = spec.timings
    ports = spec.node_ports(node)
    parameters = dict(PG_SHARED)
    parameters.update({"wal_log_hints": "on", "max_wal_size": "256MB", "logging_collector": "off"})
    return {
        "scope": spec.scope,
        "namespace": "/service/",
        "name": node,
        "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
        "restapi": {"listen": f"127.0.0.1:{ports.patroni}", "connect_address": f"127.0.0.1:{ports.patroni}"},
        "etcd3": {"hosts": spec.etcd_hosts, "protocol": "http"},
        "bootstrap": {
            "dcs": patroni_dcs(t.ttl, t.loop_wait, t.retry_timeout, {"use_pg_rewind": True, "use_slots": True, "parameters": parameters}),
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "no-sync"],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{ports.postgresql}",
            "connect_address": f"127.0.0.1:{ports.postgresql}",
            "data_dir": str(spec.pg_data(node)),
            "bin_dir": spec.binaries.pg_bin,
            "use_unix_socket": True,
            "pgpass": str(spec.sub("pg", node, "pgpass")),
            "authentication": {
                "superuser": {"username": "postgres"},
                "replication": {"username": REPLICATION_USER},
                "rewind": {"username": "postgres"},
            },
            "parameters": {"unix_socket_directories": str(spec.pg_socket_dir(node))},
            "pg_hba": PG_HBA,
        },
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }


def patroni_yaml(spec: LabSpec, node: str) -> str:
    return "# Rendered by 'prontuario lab up'; edits are overwritten.\n" + _yaml(patroni_config(spec, node))


def patroni_argv(spec: LabSpec, node: str) -> list[str]:
    return [spec.binaries.patroni, str(spec.sub("patroni", f"{node}.yml"))]


# --------------------------------------------------------------------------- HAProxy


def haproxy_cfg(spec: LabSpec) -> str:
    """HAProxy: write -> Patroni /primary, read -> /replica, cloud stand-in as a guarded backup.

    The backup server's check hits the stand-in API, which answers 200 on /primary only
    once the stand-in PostgreSQL has really been promoted (a healthy backup that is still
    a replica would take writes during a Mac failover: split brain).
    """
    t = spec.timings
    default_server = [f"inter {_seconds(t.inter_s)}"]
    if t.fastinter_s:
        default_server.append(f"fastinter {_seconds(t.fastinter_s)}")
    if t.downinter_s:
        default_server.append(f"downinter {_seconds(t.downinter_s)}")
    default_server += [
        f"fall {t.fall}",
        f"rise {t.rise}",
        "on-marked-down shutdown-sessions",
        "on-marked-up shutdown-backup-sessions",
    ]
    # A read session may outlive its server's check (a replica is still a valid copy): only
    # the write backend must cut sessions the moment a server is marked down.
    read_server = [option for option in default_server if option != "on-marked-down shutdown-sessions"]
    servers_write = []
    servers_read = []
    for node in MACS:
        ports = spec.node_ports(node)
        servers_write.append(f"    server {node} 127.0.0.1:{ports.postgresql} check port {ports.patroni}")
        servers_read.append(f"    server {node} 127.0.0.1:{ports.postgresql} check port {ports.patroni}")
    servers_write.append(
        f"    server cloudsql 127.0.0.1:{spec.standin_pg_port} backup check port {spec.standin_api_port}"
    )
    lines = [
        "# Rendered by 'prontuario lab up'; edits are overwritten.",
        "global",
        "    maxconn 512",
        f"    stats socket {spec.haproxy_socket} mode 600 level admin",
        "",
        "defaults",
        "    mode tcp",
        "    retries 2",
        "    option redispatch 1",
        "    timeout connect 2s",
        "    timeout client 30m",
        "    timeout server 30m",
        f"    timeout check {_seconds(t.timeout_s)}",
        "",
        "listen stats",
        "    mode http",
        f"    bind 127.0.0.1:{spec.haproxy_stats_port}",
        "    stats enable",
        "    stats uri /",
        "    stats refresh 5s",
        "",
        "listen write",
        f"    bind 127.0.0.1:{spec.haproxy_write_port}",
        "    option httpchk",
        "    http-check send meth GET uri /primary",
        "    http-check expect status 200",
        f"    default-server {' '.join(default_server)}",
        *servers_write,
        "",
        # Reads go to the replicas; when none is healthy (one replica down, or its check
        # failed on purpose by the daily health drill) they fall back to any node that
        # takes read-only queries, the primary included: a lost replica costs no reads.
        "frontend read_in",
        f"    bind 127.0.0.1:{spec.haproxy_read_port}",
        "    use_backend read if { nbsrv(read) gt 0 }",
        "    default_backend read_any",
        "",
        "backend read",
        "    balance roundrobin",
        "    option httpchk",
        "    http-check send meth GET uri /replica",
        "    http-check expect status 200",
        f"    default-server {' '.join(read_server)}",
        *servers_read,
        "",
        "backend read_any",
        "    balance roundrobin",
        "    option httpchk",
        "    http-check send meth GET uri /read-only",
        "    http-check expect status 200",
        f"    default-server {' '.join(read_server)}",
        *servers_read,
        "",
    ]
    return "\n".join(lines)


def haproxy_argv(spec: LabSpec, check_only: bool = False) -> list[str]:
    """Foreground (-db), so the recorded PID is HAProxy's own; ``-c`` only validates."""
    cfg = str(spec.sub("haproxy", "haproxy.cfg"))
    return [spec.binaries.haproxy, "-c", "-f", cfg] if check_only else [spec.binaries.haproxy, "-db", "-f", cfg]


# --------------------------------------------------------------------------- Redis and Sentinel


def redis_conf(spec: LabSpec, node: str) -> str:
    """Primary on mac-studio-1, replica of it on mac-studio-2; no persistence (a lab)."""
    ports = spec.node_ports(node)
    lines = [
        "# Rendered by 'prontuario lab up' on a fresh lab; Sentinel may rewrite it.",
        "bind 127.0.0.1",
        f"port {ports.redis}",
        "protected-mode no",
        "daemonize no",
        'logfile ""',
        f"dir {spec.sub('redis', node)}",
        'save ""',
        "appendonly no",
        "repl-diskless-sync yes",
        "repl-diskless-sync-delay 0",
    ]
    if node != MACS[0]:
        lines.append(f"replicaof 127.0.0.1 {spec.node_ports(MACS[0]).redis}")
    return "\n".join(lines) + "\n"


def sentinel_conf(spec: LabSpec, node: str) -> str:
    ports = spec.node_ports(node)
    name = spec.redis_master
    primary = spec.node_ports(MACS[0]).redis
    lines = [
        "# Rendered by 'prontuario lab up' on a fresh lab; Sentinel rewrites it.",
        "bind 127.0.0.1",
        f"port {ports.sentinel}",
        "protected-mode no",
        "daemonize no",
        'logfile ""',
        f"dir {spec.sub('sentinel', node)}",
        f"sentinel monitor {name} 127.0.0.1 {primary} 2",
        f"sentinel down-after-milliseconds {name} {spec.timings.sentinel_down_after_ms}",
        f"sentinel failover-timeout {name} 30000",
        f"sentinel parallel-syncs {name} 1",
    ]
    return "\n".join(lines) + "\n"


def redis_argv(spec: LabSpec, node: str) -> list[str]:
    return [spec.binaries.redis_server, str(spec.sub("redis", node, "redis.conf"))]


def sentinel_argv(spec: LabSpec, node: str) -> list[str]:
    return [spec.binaries.redis_sentinel, str(spec.sub("sentinel", node, "sentinel.conf"))]


# --------------------------------------------------------------------------- cloud stand-in


def standin_pg_conf(spec: LabSpec) -> str:
    """The stand-in replica's own postgresql.conf (the copied leader's files are ignored).

    It streams asynchronously through the HAProxy write port, so after a Patroni
    failover its walreceiver reconnects to whichever Mac is now the primary and follows
    the new timeline (recovery_target_timeline 'latest', the default). No replication
    slot: Patroni manages the Macs' slots, and wal_keep_size covers a lab's gaps.
    """
    lines = [
        "# Rendered by 'prontuario lab up'; the Cloud SQL replica stand-in.",
        f"data_directory = '{spec.standin_data}'",
        f"hba_file = '{spec.sub('cloudsql', 'pg_hba.conf')}'",
        f"ident_file = '{spec.sub('cloudsql', 'pg_ident.conf')}'",
        "listen_addresses = '127.0.0.1'",
        f"port = {spec.standin_pg_port}",
        f"unix_socket_directories = '{spec.standin_socket_dir}'",
        "cluster_name = 'cloudsql-standin'",
        "logging_collector = off",
        "hot_standby_feedback = off",
        "recovery_target_timeline = 'latest'",
        f"primary_conninfo = '{standin_primary_conninfo(spec)}'",
    ]
    lines += [f"{k} = {_pg_value(v)}" for k, v in PG_SHARED.items()]
    return "\n".join(lines) + "\n"


def standin_primary_conninfo(spec: LabSpec) -> str:
    return (
        f"host=127.0.0.1 port={spec.haproxy_write_port} user={REPLICATION_USER} "
        f"application_name={STANDIN_APPLICATION_NAME} connect_timeout=2"
    )


def _pg_value(value) -> str:
    return str(value) if isinstance(value, int) else f"'{value}'"


def standin_pg_argv(spec: LabSpec) -> list[str]:
    return [f"{spec.binaries.pg_bin}/postgres", "-D", str(spec.standin_data), "-c", f"config_file={spec.sub('cloudsql', 'postgresql.conf')}"]


def standin_api_config(spec: LabSpec) -> str:
    """JSON config of the Cloud SQL Admin API stand-in process."""
    return json.dumps(
        {
            "port": spec.standin_api_port,
            "project": spec.project,
            "region": spec.region,
            "instances": [spec.sql_instance, spec.drill_instance],
            "master_instance": f"{spec.scope}-macs",
            "pg_host": "127.0.0.1",
            "pg_port": spec.standin_pg_port,
            "pg_user": "postgres",
            "state_file": str(spec.sub("cloudsql", "operations.json")),
        },
        indent=2,
    ) + "\n"


def standin_api_argv(spec: LabSpec) -> list[str]:
    return [spec.binaries.python, "-m", "prontuario_cli.lab.cloudsql_standin", "--config", str(spec.sub("cloudsql", "standin.json"))]


# --------------------------------------------------------------------------- inference servers


def serve_log(spec: LabSpec, node: str, kind: str):
    return spec.log_dir / f"serve-{kind}-{node}.log"


def serve_argv(spec: LabSpec, node: str, kind: str) -> list[str]:
    """``prontuario serve KIND`` for one Mac: its own store, its port, the model the inventory names."""
    return [
        spec.prontuario, "serve", kind,
        "--store", str(spec.store_dir(node)),
        "--model", SERVE_KINDS[kind][0],
        "--port", str(spec.serve_port(node, kind)),
        "--log", str(serve_log(spec, node, kind)),
    ]  # fmt: skip


# --------------------------------------------------------------------------- the lab's inventory


def cluster_yaml(spec: LabSpec) -> str:
    """The lab's own cluster.yaml; it passes ``prontuario inventory check``.

    One HAProxy serves the lab; its ports are listed on mac-studio-1 (all nodes share
    127.0.0.1, so a port may appear only once). No secrets: loopback trust auth. With
    serve on, each Mac also has its model store (``models_dir``) and its servers' ports.
    """
    t = spec.timings
    nodes = []
    roles = {"mac-studio-1": "primary", "mac-studio-2": "secondary", "witness": "witness"}
    for node in NODE_NAMES:
        p = spec.node_ports(node)
        ports = {k: v for k, v in dataclass_items(p) if v is not None}
        serve_ports = spec.serve_ports(node)
        if serve_ports:
            ports.update(serve_ports._asdict())
        if node == MACS[0]:
            ports.update(
                haproxy_write=spec.haproxy_write_port,
                haproxy_read=spec.haproxy_read_port,
                haproxy_stats=spec.haproxy_stats_port,
            )
        entry = {
            "name": node,
            "role": roles[node],
            "address": "127.0.0.1",
            "os": "debian",
            "ssh": {"port": 22, "user": "root"},
            "ports": ports,
        }
        if serve_ports:
            entry["models_dir"] = str(spec.store_dir(node))
        nodes.append(entry)
    health = {"interval_s": t.inter_s, "timeout_s": t.timeout_s, "fall": t.fall, "rise": t.rise}
    if t.fastinter_s:
        health["fastinter_s"] = t.fastinter_s
    if t.downinter_s:
        health["downinter_s"] = t.downinter_s
    data = {
        "version": 1,
        "cluster": {
            "name": spec.scope,
            "patroni_scope": spec.scope,
            "redis_master": spec.redis_master,
            "database": spec.database,
            "postgres_user": "postgres",
        },
        "nodes": nodes,
        "health_checks": health,
        "cloud": {
            "project": spec.project,
            "region": spec.region,
            "sql_instance": spec.sql_instance,
            "drill_instance": spec.drill_instance,
            "api_base_url": f"http://127.0.0.1:{spec.standin_api_port}",
            "data": {"host": "127.0.0.1", "port": spec.standin_pg_port, "user": "postgres", "database": spec.database},
            "haproxy_backup_port": spec.standin_api_port,
        },
        "paths": {
            # The lab's own audit log: commands run with -i DIR/cluster.yaml never write
            # to the machine's (production) audit log.
            "audit_log": str(spec.audit_log_path),
            "state_dir": str(spec.sub("state")),
            "reports_dir": str(spec.sub("reports")),
            "metrics_textfile": str(spec.sub("metrics", "prontuario.prom")),
        },
        # The Macs' commands run here, with the lab's own prontuario; the manifests and
        # the servers' logs live in the lab directory.
        "models": {"manifests": str(spec.manifests_dir), "prontuario": spec.prontuario},
        "serve": {"log_dir": str(spec.log_dir)},
        "lab": {"dir": str(spec.path)},
    }
    header = (
        f"# The loopback lab made by 'prontuario lab up' (profile {spec.profile}, base port {spec.base_port}).\n"
        "# Trust authentication on 127.0.0.1: no secrets. Rewritten on every 'lab up'.\n"
    )
    return header + _yaml(data)


def dataclass_items(obj):
    import dataclasses

    return [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]
