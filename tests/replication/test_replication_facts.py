"""Parsers: real answers captured from a lab in, facts out."""

from __future__ import annotations

import pytest

from prontuario_cli.cluster import patroni
from prontuario_cli.connect.haproxy import HAProxyServer, parse_haproxy_stat
from prontuario_cli.connect.redis import ReplyError
from prontuario_cli.replication import facts
from tests.replication.replication_fixtures import data, pg_rows, text


def test_patroni_cluster_view():
    cluster = patroni.parse_patroni_cluster(data("patroni_cluster.json"))
    assert cluster.leader == "mac-studio-1"
    standby = cluster.member("mac-studio-2")
    assert (standby.role, standby.state, standby.timeline, standby.lag_bytes) == ("sync_standby", "streaming", 1, 0)
    assert standby.port == 26020 and not cluster.paused


def test_patroni_cluster_with_unknown_lag_and_no_leader():
    cluster = patroni.parse_patroni_cluster(
        {"members": [{"name": "a", "role": "replica", "state": "stopped", "lag": "unknown"}], "pause": True}
    )
    assert cluster.leader is None and cluster.paused
    assert cluster.members[0].lag_bytes is None


def test_patroni_node_views():
    primary = patroni.parse_patroni_node(data("patroni_mac-studio-1.json"))
    replica = patroni.parse_patroni_node(data("patroni_mac-studio-2.json"))
    assert (primary.name, primary.role, primary.state, primary.timeline) == ("mac-studio-1", "primary", "running", 1)
    assert replica.sync_standby and replica.replication_state == "streaming"
    assert patroni.parse_patroni_node({"role": "master", "state": "running"}).role == "primary"


def test_pg_primary_with_replicas():
    rows = pg_rows()
    node = facts.parse_pg_node(rows["primary_node"], rows["primary_replication"])
    assert node.role == "primary" and node.timeline == 1
    names = [r.application_name for r in node.replicas]
    assert names == ["cloudsql", "mac-studio-2"] and node.replicas[0].logical and not node.replicas[1].logical
    sync = node.replicas[1]
    assert sync.synchronous and sync.state == "streaming" and sync.replay_lag_bytes == 0
    assert sync.replay_lag_s is None  # idle primary: PostgreSQL reports NULL lag
    assert not node.replicas[0].synchronous


def test_the_cloud_replica_seen_from_both_ends():
    rows = pg_rows()
    primary = facts.parse_pg_node(rows["primary_node"], rows["primary_replication"], rows["primary_slots"])
    [slot] = primary.logical_slots
    assert (slot.name, slot.plugin, slot.active, slot.behind_bytes) == ("pgl_prontuario_onprem_cloudsql", "pglogical_output", True, 0)
    cloud = facts.parse_pg_node(rows["cloud_node"], subscription_rows=rows["cloud_subscriptions"])
    assert cloud.role == "primary" and [(s.name, s.status, s.slot_name) for s in cloud.subscriptions] == [("cloudsql", "replicating", slot.name)]
    assert facts.parse_pg_node(rows["cloud_node"]).subscriptions is None  # no pglogical there: unknown, not "none"


def test_pg_primary_with_a_frozen_sync_standby():
    """Captured from the lab 12 s after the sync standby was SIGSTOPped, a writer blocked."""
    rows = data("pg_rows_frozen_standby.json")
    node = facts.parse_pg_node(rows["primary_node"], rows["primary_replication"])
    assert (node.sync_rep_waiters, node.sync_rep_wait_s) == (6, 12.005675)
    assert node.reply_every_s == 10.0
    standby = next(r for r in node.replicas if r.application_name == "mac-studio-2")
    assert standby.reply_age_s == 19.645355 and standby.unacknowledged_bytes == 58368
    assert standby.replay_lag_s is None  # PostgreSQL knows no lag time: the old check showed 0 s
    assert facts.needs_second_look(node.replicas)


def test_pg_replica_timeline_comes_from_its_wal_receiver():
    node = facts.parse_pg_node(pg_rows()["replica_node"])
    assert node.role == "replica" and node.receiver_status == "streaming" and node.timeline == 1
    assert node.replicas == ()


def test_timeline_of_a_wal_file_name():
    assert facts.timeline_of_walfile("000000030000000000000005") == 3
    assert facts.timeline_of_walfile("0000000A0000000000000005") == 10
    assert facts.timeline_of_walfile(None) is None and facts.timeline_of_walfile("zz") is None


def test_primary_timeline_after_a_promotion():
    row = dict(pg_rows()["primary_node"][0], current_walfile="000000020000000000000007", checkpoint_timeline=1)
    assert facts.parse_pg_node([row]).timeline == 2  # the checkpoint still says 1 until the next one


def test_lsn_to_int():
    assert facts.lsn_to_int("0/5000368") == 0x5000368
    assert facts.lsn_to_int("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert facts.lsn_to_int(None) is None and facts.lsn_to_int("garbage") is None


def test_pg_node_needs_a_row():
    with pytest.raises(ValueError):
        facts.parse_pg_node([])


def test_redis_master_lists_its_replica_links():
    info = facts.parse_redis_replication(text("redis_info_mac-studio-1.txt"))
    assert info.role == "master" and info.master_repl_offset == 6185
    (link,) = info.connected_replicas
    assert (link.host, link.port, link.state, link.offset, link.lag_s) == ("127.0.0.1", 26024, "online", 6185, 1)


def test_redis_replica():
    info = facts.parse_redis_replication(text("redis_info_mac-studio-2.txt"))
    assert info.role == "replica"  # Redis still says "slave"
    assert (info.master_host, info.master_port, info.master_link_status) == ("127.0.0.1", 26004, "up")
    assert info.master_last_io_s == 2 and info.replica_repl_offset == 6185 and not info.master_sync_in_progress


def test_redis_replica_with_the_link_down():
    raw = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:6379\r\nmaster_link_status:down\r\nmaster_link_down_since_seconds:42\r\nmaster_sync_in_progress:0\r\nslave_repl_offset:100\r\n"
    info = facts.parse_redis_replication(raw)
    assert info.master_link_status == "down" and info.master_link_down_since_s == 42 and info.master_last_io_s is None


def test_sentinel_replies_resp3_map():
    view = facts.parse_sentinel(*data("sentinel_replies.json"))
    assert view.master == "127.0.0.1:26004" and view.quorum_ok
    assert view.other_sentinels == 2 and view.known_replicas == 1 and view.flags == ("master",) and view.quorum == 2


def test_sentinel_replies_resp2_flat_list():
    flat = ["name", "prontuario", "flags", "master,s_down", "num-other-sentinels", "1", "num-slaves", "1"]
    view = facts.parse_sentinel(["10.0.0.1", "6379"], "OK 2 usable Sentinels", flat)
    assert view.flags == ("master", "s_down") and view.other_sentinels == 1


def test_sentinel_without_quorum_or_master():
    noquorum = ReplyError("x", "NOQUORUM 1 usable Sentinels. Not enough available Sentinels to reach the specified quorum")
    view = facts.parse_sentinel(None, noquorum, ReplyError("y", "No such master with that name"))
    assert view.master is None and view.quorum_ok is False and view.quorum_message.startswith("NOQUORUM")


def test_haproxy_show_stat():
    servers = parse_haproxy_stat(text("haproxy_show_stat.csv"))
    by_name = {(s.proxy, s.server): s for s in servers}
    assert set(by_name) == {
        ("write", "mac-studio-1"), ("write", "mac-studio-2"), ("write", "cloudsql"),
        ("read", "mac-studio-1"), ("read", "mac-studio-2"),
    }
    writer = by_name[("write", "mac-studio-1")]
    assert writer.up and not writer.backup and writer.check_status == "L7OK" and writer.address == "127.0.0.1:26000"
    assert by_name[("write", "cloudsql")].backup and not by_name[("write", "cloudsql")].up
    assert not by_name[("write", "mac-studio-2")].up


@pytest.mark.parametrize(
    "status, up",
    [("UP", True), ("UP 1/2", True), ("DOWN", False), ("DOWN 1/2", False), ("NOLB", False), ("MAINT", False), ("DRAIN", False)],
)
def test_haproxy_server_up_states(status, up):
    assert HAProxyServer("write", "a", status).up is up


def test_haproxy_rejects_something_else():
    with pytest.raises(ValueError):
        parse_haproxy_stat("Unknown command\n")
