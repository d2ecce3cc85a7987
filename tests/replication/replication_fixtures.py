"""Real answers captured from a healthy lab, turned into probe outcomes for the evaluator.

``healthy()`` is every probe of the fixture inventory answering as a healthy lab did;
tests change one fact at a time (``dataclasses.replace``) and evaluate.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from prontuario_cli.cluster import etcd, patroni
from prontuario_cli.connect import Refused, TimedOut
from prontuario_cli.connect.fanout import Outcome
from prontuario_cli.connect.haproxy import parse_haproxy_stat
from prontuario_cli.inventory import load_inventory
from prontuario_cli.replication import facts

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
INVENTORY = HERE / "fixture_cluster.yaml"


def text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def data(name: str):
    return json.loads(text(name))


def inventory():
    return load_inventory(INVENTORY)


def pg_rows() -> dict:
    return data("pg_rows.json")


def sentinel_view() -> facts.SentinelView:
    return facts.parse_sentinel(*data("sentinel_replies.json"))


def etcd_status(node: str, **changes) -> etcd.EtcdStatus:
    """The member's real ``/v3/maintenance/status`` answer, parsed, then changed."""
    return dataclasses.replace(etcd.parse_status(data("etcd_status.json")[node]), **changes)


def healthy() -> dict[str, Outcome]:
    rows = pg_rows()
    cluster = patroni.parse_patroni_cluster(data("patroni_cluster.json"))
    # The captured answers carry the capture's clock (dcs_last_seen); a test that looks at
    # it sets it against its own checked_at.
    values = {
        "patroni:mac-studio-1": (dataclasses.replace(patroni.parse_patroni_node(data("patroni_mac-studio-1.json")), dcs_last_seen=None), cluster),
        "patroni:mac-studio-2": (dataclasses.replace(patroni.parse_patroni_node(data("patroni_mac-studio-2.json")), dcs_last_seen=None), cluster),
        "postgres:mac-studio-1": facts.parse_pg_node(rows["primary_node"], rows["primary_replication"], rows["primary_slots"]),
        "postgres:mac-studio-2": facts.parse_pg_node(rows["replica_node"]),
        "postgres:cloud": facts.parse_pg_node(rows["cloud_node"], subscription_rows=rows["cloud_subscriptions"]),
        "redis:mac-studio-1": facts.parse_redis_replication(text("redis_info_mac-studio-1.txt")),
        "redis:mac-studio-2": facts.parse_redis_replication(text("redis_info_mac-studio-2.txt")),
        "sentinel:mac-studio-1": sentinel_view(),
        "sentinel:mac-studio-2": sentinel_view(),
        "sentinel:witness": sentinel_view(),
        "haproxy": parse_haproxy_stat(text("haproxy_show_stat.csv")),
        "patroni-config:mac-studio-1": True,  # failsafe_mode, as the lab renders it
        "patroni-config:mac-studio-2": True,
        **{f"etcd:{node}": etcd_status(node) for node in ("mac-studio-1", "mac-studio-2", "witness")},
    }
    return {name: Outcome(name, value=value) for name, value in values.items()}


def refused(name: str) -> Outcome:
    return Outcome(name, error=Refused(f"{name}: connection refused"))


def no_answer(name: str) -> Outcome:
    return Outcome(name, timed_out=True)


def hung(name: str) -> Outcome:
    return Outcome(name, error=TimedOut(f"{name}: no answer"))


def with_replicas(outcomes: dict[str, Outcome], *replicas: facts.PgReplica) -> dict[str, Outcome]:
    """The healthy outcomes with the primary's pg_stat_replication replaced."""
    primary = outcomes["postgres:mac-studio-1"].value
    changed = dict(outcomes)
    changed["postgres:mac-studio-1"] = Outcome("postgres:mac-studio-1", value=dataclasses.replace(primary, replicas=tuple(replicas)))
    return changed


def member_replica(**changes) -> facts.PgReplica:
    """The healthy sync standby's pg_stat_replication row, changed."""
    row = facts.parse_pg_replication(pg_rows()["primary_replication"])[1]
    assert row.application_name == "mac-studio-2"
    return dataclasses.replace(row, **changes)


def cloud_replica(**changes) -> facts.PgReplica:
    """The cloud replica's subscription walsender (pglogical: a logical slot, not a standby)."""
    row = facts.parse_pg_replication(pg_rows()["primary_replication"])[0]
    assert row.application_name == "cloudsql" and row.logical
    return dataclasses.replace(row, **changes)


def cloud_slot(outcomes: dict[str, Outcome], **changes) -> dict[str, Outcome]:
    """The healthy outcomes with the primary's logical slot for the cloud replica changed (or removed: ``gone=True``)."""
    primary = outcomes["postgres:mac-studio-1"].value
    gone = changes.pop("gone", False)
    slots = () if gone else tuple(dataclasses.replace(s, **changes) for s in primary.logical_slots)
    changed = dict(outcomes)
    changed["postgres:mac-studio-1"] = Outcome("postgres:mac-studio-1", value=dataclasses.replace(primary, logical_slots=slots))
    return changed


def cloud_subscription(outcomes: dict[str, Outcome], **changes) -> dict[str, Outcome]:
    """The healthy outcomes with the cloud replica's subscription changed."""
    cloud = outcomes["postgres:cloud"].value
    changed = dict(outcomes)
    subs = tuple(dataclasses.replace(s, **changes) for s in cloud.subscriptions)
    changed["postgres:cloud"] = Outcome("postgres:cloud", value=dataclasses.replace(cloud, subscriptions=subs))
    return changed


def replace_value(outcomes: dict[str, Outcome], name: str, **changes) -> dict[str, Outcome]:
    changed = dict(outcomes)
    changed[name] = Outcome(name, value=dataclasses.replace(outcomes[name].value, **changes))
    return changed
