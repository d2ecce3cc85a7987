"""Every file and command line of the lab, rendered from a :class:`LabSpec`.

The services' configs (Patroni, etcd, HAProxy, Redis, Sentinel) and their command lines
come from :mod:`prontuario_cli.render`, the renderers bootstrap uses for the Macs and the
witness: the lab only describes itself to them as a site (its directories, its binaries,
its profile's timings, trust on loopback) on top of its own inventory, ``cluster.yaml``.
What exists only in the lab is rendered here: the Cloud SQL stand-in, the inference
servers' command lines, and that inventory.

Pure functions: text in, text out (no processes, no files written here), so the
rendering is unit-tested without a running lab. The writers live in ``up.py``.
"""

from __future__ import annotations

import functools
import json

from prontuario_cli.inventory import Inventory, parse_inventory
from prontuario_cli.lab.spec import MACS, NODE_NAMES, SERVE_KINDS, LabSpec
from prontuario_cli.render import etcd as render_etcd
from prontuario_cli.render import haproxy as render_haproxy
from prontuario_cli.render import patroni as render_patroni
from prontuario_cli.render import redis as render_redis
from prontuario_cli.render.node import RenderedFile, render_node
from prontuario_cli.render.patroni import PG_SHARED
from prontuario_cli.render.spec import REPLICATION_USER, Binaries, Layout, NodeSpec, Policy, Site, SiteTimings, from_inventory

__all__ = ["PG_SHARED", "REPLICATION_USER"]

SENTINEL_FAILOVER_TIMEOUT_MS = 30000


def _yaml(data) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


# --------------------------------------------------------------------------- the lab as a site


def lab_layout(spec: LabSpec, node: str) -> Layout:
    """Where one lab node's files live, all under the lab directory."""
    return Layout(
        patroni_config=str(spec.sub("patroni", f"{node}.yml")),
        pg_data=str(spec.pg_data(node)),
        pg_socket_dir=str(spec.pg_socket_dir(node)),
        pgpass=str(spec.sub("pg", node, "pgpass")),
        etcd_config=str(spec.sub("etcd", f"{node}.yml")),
        etcd_data=str(spec.sub("etcd", node)),
        redis_config=str(spec.sub("redis", node, "redis.conf")),
        redis_dir=str(spec.sub("redis", node)),
        sentinel_config=str(spec.sub("sentinel", node, "sentinel.conf")),
        sentinel_dir=str(spec.sub("sentinel", node)),
        haproxy_config=str(spec.sub("haproxy", "haproxy.cfg")),
        haproxy_socket=str(spec.haproxy_socket),
        log_dir=str(spec.log_dir),
    )


# The lab's policy, the only settings besides addresses, ports, paths and timings in which
# it differs from production: trust on loopback (no secrets), no fsync at initdb and no
# Redis persistence (a lab is rebuilt, not recovered), its own etcd cluster token (two
# labs on different base ports never join each other), everything run by whoever runs it
# except PostgreSQL, which refuses root.
def lab_policy(spec: LabSpec) -> Policy:
    return Policy(
        pg_auth_method="trust",
        initdb_no_sync=True,
        redis_persistence=False,
        etcd_token=f"prontuario-lab-{spec.base_port}",
        postgres_user="postgres",
        service_user=None,
    )


def lab_site(spec: LabSpec, node: str) -> Site:
    t = spec.timings
    b = spec.binaries
    return Site(
        layout=lab_layout(spec, node),
        binaries=Binaries(pg_bin=b.pg_bin, patroni=b.patroni, etcd=b.etcd, haproxy=b.haproxy, redis_server=b.redis_server, redis_sentinel=b.redis_sentinel),
        timings=SiteTimings(
            ttl=t.ttl,
            loop_wait=t.loop_wait,
            retry_timeout=t.retry_timeout,
            sentinel_down_after_ms=t.sentinel_down_after_ms,
            sentinel_failover_timeout_ms=SENTINEL_FAILOVER_TIMEOUT_MS,
        ),
        policy=lab_policy(spec),
    )


@functools.lru_cache(maxsize=8)
def lab_inventory(spec: LabSpec) -> Inventory:
    """The lab's ``cluster.yaml``, parsed as every command parses it."""
    return parse_inventory(cluster_yaml(spec), str(spec.inventory_path))


def node_spec(spec: LabSpec, node: str) -> NodeSpec:
    """What the renderers need for one lab node: the lab inventory plus the lab site."""
    return from_inventory(lab_inventory(spec), node, lab_site(spec, node))


def node_files(spec: LabSpec) -> list[RenderedFile]:
    """Every service config file of every lab node (no launchd/systemd units: the lab runs
    the processes itself). The one HAProxy comes with mac-studio-1, whose inventory entry
    lists its ports."""
    return [f for node in NODE_NAMES for f in render_node(node_spec(spec, node), services=False)]


# --------------------------------------------------------------------------- etcd


def etcd_yaml(spec: LabSpec, node: str) -> str:
    return render_etcd.etcd_yaml(node_spec(spec, node))


def etcd_argv(spec: LabSpec, node: str) -> list[str]:
    """etcd 3.4 with its config file (``DIR/etcd/NODE.yml``)."""
    return render_etcd.etcd_argv(node_spec(spec, node))


# --------------------------------------------------------------------------- Patroni


def patroni_config(spec: LabSpec, node: str) -> dict:
    return render_patroni.patroni_config(node_spec(spec, node))


def patroni_yaml(spec: LabSpec, node: str) -> str:
    return render_patroni.patroni_yaml(node_spec(spec, node))


def patroni_argv(spec: LabSpec, node: str) -> list[str]:
    return render_patroni.patroni_argv(node_spec(spec, node))


# --------------------------------------------------------------------------- HAProxy


def haproxy_cfg(spec: LabSpec) -> str:
    return render_haproxy.haproxy_cfg(node_spec(spec, MACS[0]))


def haproxy_argv(spec: LabSpec, check_only: bool = False) -> list[str]:
    """Foreground (-db), so the recorded PID is HAProxy's own; ``-c`` only validates."""
    return render_haproxy.haproxy_argv(node_spec(spec, MACS[0]), check_only)


# --------------------------------------------------------------------------- Redis and Sentinel


def redis_conf(spec: LabSpec, node: str) -> str:
    return render_redis.redis_conf(node_spec(spec, node))


def sentinel_conf(spec: LabSpec, node: str) -> str:
    return render_redis.sentinel_conf(node_spec(spec, node))


def redis_argv(spec: LabSpec, node: str) -> list[str]:
    return render_redis.redis_argv(node_spec(spec, node))


def sentinel_argv(spec: LabSpec, node: str) -> list[str]:
    return render_redis.sentinel_argv(node_spec(spec, node))


# --------------------------------------------------------------------------- cloud stand-in


def standin_pg_conf(spec: LabSpec) -> str:
    """The stand-in's postgresql.conf: a plain PostgreSQL 15 that subscribes with pglogical.

    It follows the Macs as Cloud SQL follows an external server: a pglogical
    subscription to the HAProxy write frontend (:mod:`.logical`), so after a Patroni
    failover it reconnects to whichever Mac now leads and resumes from the position it
    had applied (the slot Patroni keeps on both Macs), never from a diverged timeline.
    ``track_commit_timestamp``: an applied transaction keeps its commit time on the Macs,
    which is how its lag in seconds is read.
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
        "track_commit_timestamp = on",
    ]
    lines += [f"{k} = {_pg_value(v)}" for k, v in PG_SHARED.items()]
    return "\n".join(lines) + "\n"


def standin_pg_hba(spec: LabSpec) -> str:
    """The stand-in's pg_hba.conf: the same lines as the Macs'."""
    return "\n".join(render_patroni.pg_hba(node_spec(spec, MACS[0]))) + "\n"


def standin_source(spec: LabSpec) -> str:
    """The source representation instance's ``hostPort``: HAProxy's write frontend, the
    address that follows the Patroni leader."""
    return f"127.0.0.1:{spec.haproxy_write_port}"


def standin_provider_dsn(spec: LabSpec, host_port: str | None = None) -> str:
    """The DSN the stand-in's subscription connects to (the source, by default)."""
    from prontuario_cli.lab.logical import dsn
    from prontuario_cli.lab.logical import host_port as split

    host, port = split(host_port or standin_source(spec))
    return dsn(host, port, spec.database)


def _pg_value(value) -> str:
    return str(value) if isinstance(value, int) else f"'{value}'"


def standin_pg_argv(spec: LabSpec) -> list[str]:
    return [f"{spec.binaries.pg_bin}/postgres", "-D", str(spec.standin_data), "-c", f"config_file={spec.sub('cloudsql', 'postgresql.conf')}"]


def standin_api_config(spec: LabSpec) -> str:
    """JSON config of the Cloud SQL Admin API stand-in process."""
    replication = lab_inventory(spec).cloud.replication
    return json.dumps(
        {
            "port": spec.standin_api_port,
            "project": spec.project,
            "region": spec.region,
            "instances": [spec.sql_instance, spec.drill_instance],
            "master_instance": f"{spec.scope}-macs",
            "source_host_port": standin_source(spec),
            "database": spec.database,
            "provider_node": replication.provider_node,
            "subscription": replication.subscription,
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
        if node in MACS:  # each Mac's documents (docs sync pushes the leader's to the other)
            entry["docs_dir"] = str(spec.sub("docs", node))
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
            # Cloud SQL's source representation instance points at the address that
            # follows the Patroni leader; the pglogical names keep their defaults.
            "replication": {"source": standin_source(spec)},
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
