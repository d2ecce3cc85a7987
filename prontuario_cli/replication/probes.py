"""The probes of one replication check, built from the inventory.

A probe is a callable taking the absolute deadline and returning one fact (see
:mod:`prontuario_cli.replication.facts`). Probe names say what and where, and are
what the evaluator looks results up by::

    patroni:<node>   patroni-config:<node>   postgres:<node>   postgres:cloud
    redis:<node>     sentinel:<node>   etcd:<node>
    haproxy  (the runtime API)   haproxy:<node>  (a stats page)
"""

from __future__ import annotations

import time
from typing import Callable

from prontuario_cli.inventory import Inventory, Node
from prontuario_cli.replication import facts

Probe = Callable[[float], object]


def build_probes(inventory: Inventory) -> dict[str, Probe]:
    """Every probe the inventory calls for; secrets are read here, before any clock starts."""
    from prontuario_cli.secrets import optional_secret

    secrets = inventory.secrets
    pg_password = optional_secret(secrets.postgres_password, "postgres_password")
    redis_password = optional_secret(secrets.redis_password, "redis_password")
    cloud = inventory.cloud.data if inventory.cloud else None
    probes: dict[str, Probe] = {}
    for node in inventory.nodes:
        ports = node.ports
        if ports.patroni:
            probes[f"patroni:{node.name}"] = _patroni_probe(node)
            # Apart: a /config that cannot be read must not hide the member's own facts.
            probes[f"patroni-config:{node.name}"] = _patroni_config_probe(node)
        if ports.etcd_client:
            probes[f"etcd:{node.name}"] = _etcd_probe(node.address, ports.etcd_client)
        if ports.postgresql:
            probes[f"postgres:{node.name}"] = _postgres_probe(
                node.address, ports.postgresql, inventory.cluster.postgres_user, inventory.cluster.database, pg_password,
                provider=cloud is not None,
            )
        if ports.redis:
            probes[f"redis:{node.name}"] = _redis_probe(node.address, ports.redis, redis_password)
        if ports.sentinel:
            probes[f"sentinel:{node.name}"] = _sentinel_probe(node.address, ports.sentinel, inventory.cluster.redis_master)
    if cloud is not None:
        cloud_password = optional_secret(cloud.password, "cloud.data.password")
        probes["postgres:cloud"] = _postgres_probe(cloud.host, cloud.port, cloud.user, cloud.database, cloud_password, primary_queries=False, subscriber=True)
    from prontuario_cli.cluster.haproxy import haproxy_socket

    socket = haproxy_socket(inventory)
    if socket:
        probes["haproxy"] = _haproxy_socket_probe(socket)
    else:
        for node in inventory.nodes:
            if node.ports.haproxy_stats:
                probes[f"haproxy:{node.name}"] = _haproxy_stats_probe(node)
    return probes


def _patroni_probe(node: Node) -> Probe:
    def probe(deadline: float):
        from prontuario_cli.cluster import patroni

        own = patroni.rest_json(node, patroni.PATRONI_NODE_PATH, deadline)
        cluster = patroni.rest_json(node, patroni.PATRONI_CLUSTER_PATH, deadline)
        return patroni.parse_patroni_node(own), patroni.parse_patroni_cluster(cluster)

    return probe


def _patroni_config_probe(node: Node) -> Probe:
    def probe(deadline: float):
        from prontuario_cli.cluster import patroni

        return patroni.parse_failsafe_mode(patroni.rest_json(node, patroni.PATRONI_CONFIG_PATH, deadline))

    return probe


def _etcd_probe(address: str, port: int) -> Probe:
    def probe(deadline: float):
        from prontuario_cli.cluster.etcd import member_status

        return member_status(address, port, deadline)

    return probe


def _postgres_probe(host: str, port: int, user: str, dbname: str, password: str | None, primary_queries: bool = True,
                    subscriber: bool = False, provider: bool = False) -> Probe:
    """A Mac (``primary_queries``): its standbys when primary, its logical slots either way
    (a standby must hold a copy of the cloud replica's slot before it takes over); with
    ``provider`` (a cloud replica follows the Macs), the primary's tables and sequences as
    pglogical sees them. The cloud replica (``subscriber``): its subscriptions and tables."""

    def probe(deadline: float):
        from prontuario_cli.connect.postgres import PgTarget, session

        target = PgTarget(host=host, port=port, user=user, dbname=dbname, password=password, application_name="prontuario-replication")
        with session(target, deadline) as pg:
            node_rows = pg.execute(facts.PG_NODE_SQL)
            primary = bool(node_rows) and not node_rows[0]["in_recovery"]
            replication_rows, slot_rows, subscription_rows, relation_rows, column_rows = [], None, None, None, None
            if primary_queries:
                if primary:
                    replication_rows = pg.execute(facts.PG_REPLICATION_SQL)
                    if facts.needs_second_look(facts.parse_pg_replication(replication_rows)) and deadline - time.monotonic() > 0.5:
                        time.sleep(0.2)  # a standby caught mid-reply answers within milliseconds
                        replication_rows = pg.execute(facts.PG_REPLICATION_SQL)
                slot_rows = pg.execute(facts.PG_LOGICAL_SLOTS_SQL)
                if provider and primary and pg.execute(facts.PG_HAS_PGLOGICAL_PROVIDER_SQL)[0]["has_pglogical"]:
                    relation_rows = pg.execute(facts.PG_RELATIONS_SQL)
                    column_rows = pg.execute(facts.PG_TABLE_COLUMNS_SQL)
            if subscriber and pg.execute(facts.PG_HAS_PGLOGICAL_SQL)[0]["has_pglogical"]:
                subscription_rows = pg.execute(facts.PG_SUBSCRIPTIONS_SQL)
                column_rows = pg.execute(facts.PG_TABLE_COLUMNS_SQL)
        return facts.parse_pg_node(node_rows, replication_rows, slot_rows, subscription_rows, relation_rows, column_rows)

    return probe


def _redis_probe(host: str, port: int, password: str | None) -> Probe:
    def probe(deadline: float):
        from prontuario_cli.connect.redis import RedisTarget, commands

        (reply,) = commands(RedisTarget(host, port, password), [facts.REDIS_INFO_COMMAND], deadline)
        if isinstance(reply, BaseException):
            raise reply
        return facts.parse_redis_replication(reply)

    return probe


def _sentinel_probe(host: str, port: int, master_name: str) -> Probe:
    def probe(deadline: float):
        from prontuario_cli.connect.redis import RedisTarget, commands

        # Sentinel's own authentication is separate from the data password; none is used here.
        replies = commands(RedisTarget(host, port, None, kind="Sentinel"), facts.sentinel_commands(master_name), deadline)
        return facts.parse_sentinel(*replies)

    return probe


def _haproxy_socket_probe(path: str) -> Probe:
    def probe(deadline: float):
        from prontuario_cli.connect.haproxy import show_stat

        return show_stat(path, deadline)

    return probe


def _haproxy_stats_probe(node: Node) -> Probe:
    from prontuario_cli.connect.haproxy import HAPROXY_STATS_CSV_PATH
    from prontuario_cli.connect.http import url_of

    url = url_of(node.address, node.ports.haproxy_stats, HAPROXY_STATS_CSV_PATH)

    def probe(deadline: float):
        from prontuario_cli.connect.haproxy import parse_haproxy_stat
        from prontuario_cli.connect.http import get_text
        from prontuario_cli.errors import UnavailableError

        try:
            return parse_haproxy_stat(get_text(url, deadline))
        except ValueError as exc:
            raise UnavailableError(f"{url}: {exc}") from None

    return probe
