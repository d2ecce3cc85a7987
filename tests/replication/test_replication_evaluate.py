"""The evaluator: facts + thresholds -> verdict. One changed fact per test."""

from __future__ import annotations

import dataclasses

import pytest

from prontuario_cli.replication import facts
from prontuario_cli.replication.evaluate import effective_lag_s, evaluate, replica_verdict
from prontuario_cli.replication.state import TimelineState, read_timeline, record_timeline
from prontuario_cli.report import Status
from tests.replication import replication_fixtures as fx

MiB = 1024 * 1024


def run(outcomes=None, **kw):
    return evaluate(fx.inventory(), outcomes if outcomes is not None else fx.healthy(), **kw)


def messages(report) -> str:
    return " | ".join(p.message for p in report.problems)


def test_a_healthy_lab_is_ok():
    report = run()
    assert report.status == Status.OK, messages(report)
    assert report.leader == "mac-studio-1" and report.timeline == 1
    assert [m.role for m in report.members] == ["leader", "sync_standby", "subscriber"]
    assert report.cloud.following and report.cloud.state == "replicating" and report.cloud.lag_bytes == 0
    sync = [r for r in report.replicas if r.sync_state == "sync"]
    assert [r.node for r in sync] == ["mac-studio-2"]
    assert [h.server for h in report.haproxy if h.takes_writes] == ["mac-studio-1"]
    assert all(s.agrees for s in report.sentinels)
    assert report.nodes_up == {"mac-studio-1": True, "mac-studio-2": True, "witness": True}
    assert report.exit_code() == 0
    assert report.nagios().line().startswith("PRONTUARIO OK - PostgreSQL leader mac-studio-1 (timeline 1)")


# --------------------------------------------------------------------------- lag: bytes and time


def test_idle_primary_is_not_a_false_alarm():
    # PostgreSQL keeps showing the last measured lag for a while after the replica caught up.
    stale = fx.member_replica(replay_lag_s=42.0, flush_lag_s=41.0, write_lag_s=40.0, replay_lag_bytes=0)
    assert effective_lag_s(stale) == 0.0
    report = run(fx.with_replicas(fx.healthy(), stale, fx.cloud_replica()))
    assert report.status == Status.OK, messages(report)


def test_null_lag_while_idle_counts_as_zero():
    idle = fx.member_replica(replay_lag_s=None, replay_lag_bytes=0)
    assert effective_lag_s(idle) == 0.0


def test_lag_over_the_sync_target_is_a_warning():
    slow = fx.member_replica(replay_lag_s=0.25, replay_lag_bytes=4096)
    report = run(fx.with_replicas(fx.healthy(), slow, fx.cloud_replica()))
    assert report.status == Status.WARNING
    assert "replay lag 250 ms > target 100 ms" in messages(report)


def test_long_lag_with_few_bytes_is_only_a_warning():
    trickle = fx.member_replica(replay_lag_s=30.0, replay_lag_bytes=1024)
    status, reasons = replica_verdict(trickle, fx.inventory().targets.replication_lag, member=True)
    assert status == Status.WARNING


def test_many_bytes_with_short_lag_is_only_a_warning():
    burst = fx.member_replica(replay_lag_s=0.5, replay_lag_bytes=200 * MiB)
    status, _ = replica_verdict(burst, fx.inventory().targets.replication_lag, member=True)
    assert status == Status.WARNING


def test_time_and_bytes_over_the_alert_is_critical():
    behind = fx.member_replica(replay_lag_s=12.0, replay_lag_bytes=20 * MiB)
    report = run(fx.with_replicas(fx.healthy(), behind, fx.cloud_replica()))
    assert report.status == Status.CRITICAL
    assert "12.0 s and 20.0 MiB behind" in messages(report)
    row = next(r for r in report.replicas if r.node == "mac-studio-2")
    assert row.status == Status.CRITICAL and row.lag_s == 12.0


def test_the_cloud_subscription_is_not_judged_as_a_standby():
    """pglogical's walsender has no lag times and replies on its own schedule: the slot says how it is doing."""
    cloud = fx.cloud_replica(replay_lag_s=120.0, replay_lag_bytes=64 * MiB, reply_age_s=45.0)
    report = run(fx.with_replicas(fx.healthy(), fx.member_replica(), cloud))
    assert report.status == Status.OK, messages(report)
    assert [r.name for r in report.replicas] == ["mac-studio-2"]


def test_an_asynchronous_patroni_replica_is_a_warning_and_no_sync_standby_is_critical():
    async_replica = fx.member_replica(sync_state="async")
    report = run(fx.with_replicas(fx.healthy(), async_replica, fx.cloud_replica()))
    assert report.status == Status.CRITICAL
    text = messages(report)
    assert "asynchronous (sync_state async)" in text and "no synchronous standby" in text


# --------------------------------------------------------------------------- a silent (frozen) standby
# What a SIGSTOPped sync standby looked like from the primary in the lab: its WAL sender
# row stays "streaming/sync" with the last measured replay lag (5 ms), while the bytes
# behind grow, its last reply ages, and commits queue on SyncRep.


def frozen_standby(**changes):
    row = dict(replay_lag_s=0.001, flush_lag_s=0.001, write_lag_s=0.001, replay_lag_bytes=140_920,
               flush_lag_bytes=140_920, write_lag_bytes=140_920, sent_lag_bytes=0, reply_age_s=30.2)
    row.update(changes)
    return fx.member_replica(**row)


def with_primary(outcomes, **changes):
    return fx.replace_value(outcomes, "postgres:mac-studio-1", **changes)


def test_lag_is_never_a_stale_zero_while_bytes_are_behind():
    assert effective_lag_s(frozen_standby()) == 30.2  # not the 0.001 s PostgreSQL kept
    assert effective_lag_s(fx.member_replica(replay_lag_s=None, flush_lag_s=None, write_lag_s=None, replay_lag_bytes=4096)) is None
    busy = fx.member_replica(replay_lag_s=0.004, replay_lag_bytes=8192, flush_lag_bytes=0, reply_age_s=0.002)
    assert effective_lag_s(busy) == 0.004
    # an idle primary: nothing behind, the last reply up to wal_receiver_status_interval old
    idle = fx.member_replica(replay_lag_s=None, replay_lag_bytes=0, flush_lag_bytes=0, write_lag_bytes=0, reply_age_s=8.0)
    assert effective_lag_s(idle) == 0.0


def test_commits_waiting_for_a_frozen_sync_standby_is_critical_and_names_it():
    outcomes = fx.with_replicas(fx.healthy(), frozen_standby(), fx.cloud_replica())
    outcomes = with_primary(outcomes, sync_rep_waiters=10, sync_rep_wait_s=18.2, status_interval_s=10.0)
    report = run(outcomes)
    assert report.status == Status.CRITICAL, messages(report)
    assert "commits are waiting for sync standby mac-studio-2 (10 waiting, the oldest for 18.2 s)" in messages(report)
    assert "mac-studio-2: has not replied for 30 s (137.6 KiB not confirmed)" in messages(report)
    row = next(r for r in report.replicas if r.node == "mac-studio-2")
    assert row.status == Status.CRITICAL and row.lag_s == 30.2 and row.reply_age_s == 30.2
    perf = {p.label: p.value for p in report.perfdata()}
    assert perf["pg_lag_mac-studio-2"] == 30.2  # the Nagios line never says 0 s with bytes behind


def test_the_frozen_standby_captured_in_the_lab_is_critical():
    rows = fx.data("pg_rows_frozen_standby.json")
    outcomes = fx.healthy()
    primary = facts.parse_pg_node(rows["primary_node"], rows["primary_replication"])
    outcomes["postgres:mac-studio-1"] = dataclasses.replace(outcomes["postgres:mac-studio-1"], value=dataclasses.replace(primary, timeline=1))
    outcomes["patroni:mac-studio-2"] = fx.no_answer("patroni:mac-studio-2")
    outcomes["postgres:mac-studio-2"] = fx.no_answer("postgres:mac-studio-2")
    report = run(outcomes)
    assert report.status == Status.CRITICAL, messages(report)
    assert "commits are waiting for sync standby mac-studio-2 (6 waiting, the oldest for 12.0 s)" in messages(report)
    row = next(r for r in report.replicas if r.node == "mac-studio-2")
    assert row.lag_s == 19.645355 and row.replay_lag_bytes == 58368  # not 0 s


def test_a_silent_sync_standby_is_critical_even_without_writes():
    """Nothing written, nothing waiting: it missed its periodic reply (status interval + timeout)."""
    silent = frozen_standby(replay_lag_bytes=0, flush_lag_bytes=0, write_lag_bytes=0, reply_age_s=12.5)
    outcomes = with_primary(fx.with_replicas(fx.healthy(), silent, fx.cloud_replica()), status_interval_s=10.0)
    report = run(outcomes)
    assert report.status == Status.CRITICAL
    assert "mac-studio-2: has not replied for 12 s" in messages(report)


def test_an_idle_standby_between_its_replies_is_ok():
    idle = fx.member_replica(replay_lag_bytes=0, flush_lag_bytes=0, write_lag_bytes=0, reply_age_s=9.5)
    outcomes = with_primary(fx.with_replicas(fx.healthy(), idle, fx.cloud_replica()), status_interval_s=10.0, sync_rep_waiters=0)
    report = run(outcomes)
    assert report.status == Status.OK, messages(report)


def test_a_commit_waiting_less_than_the_timeout_is_normal():
    busy = fx.member_replica(replay_lag_s=0.002, replay_lag_bytes=512, flush_lag_bytes=512, reply_age_s=0.01)
    outcomes = with_primary(fx.with_replicas(fx.healthy(), busy, fx.cloud_replica()), sync_rep_waiters=3, sync_rep_wait_s=0.004)
    report = run(outcomes)
    assert report.status == Status.OK, messages(report)


def test_commits_waiting_for_a_standby_that_is_not_connected_is_critical():
    outcomes = with_primary(fx.with_replicas(fx.healthy(), fx.cloud_replica()), sync_rep_waiters=2, sync_rep_wait_s=4.0)
    report = run(outcomes)
    assert "commits are waiting for a synchronous standby that is not connected" in messages(report)


def test_a_frozen_member_is_not_answering_rather_than_not_a_member():
    """Patroni's member key expired (ttl), but the node still holds its connections open."""
    outcomes = fx.with_replicas(fx.healthy(), frozen_standby(), fx.cloud_replica())
    outcomes = with_primary(outcomes, sync_rep_waiters=10, sync_rep_wait_s=25.0, status_interval_s=10.0)
    _, cluster = outcomes["patroni:mac-studio-1"].value
    gone = dataclasses.replace(cluster, members=tuple(m for m in cluster.members if m.name != "mac-studio-2"))
    outcomes["patroni:mac-studio-1"] = dataclasses.replace(outcomes["patroni:mac-studio-1"], value=(outcomes["patroni:mac-studio-1"].value[0], gone))
    outcomes["patroni:mac-studio-2"] = fx.no_answer("patroni:mac-studio-2")
    outcomes["postgres:mac-studio-2"] = fx.no_answer("postgres:mac-studio-2")
    report = run(outcomes)
    text = messages(report)
    assert report.status == Status.CRITICAL
    assert "mac-studio-2: not answering (frozen?)" in text and "Patroni stopped or never joined" not in text
    member = next(m for m in report.members if m.node == "mac-studio-2")
    assert member.status == Status.CRITICAL and "not answering (frozen?)" in member.note


def test_a_stopped_patroni_is_still_not_a_member():
    outcomes = fx.healthy()
    _, cluster = outcomes["patroni:mac-studio-1"].value
    gone = dataclasses.replace(cluster, members=tuple(m for m in cluster.members if m.name != "mac-studio-2"))
    outcomes["patroni:mac-studio-1"] = dataclasses.replace(outcomes["patroni:mac-studio-1"], value=(outcomes["patroni:mac-studio-1"].value[0], gone))
    outcomes["patroni:mac-studio-2"] = fx.refused("patroni:mac-studio-2")
    report = run(outcomes)
    assert "mac-studio-2: not a member of the Patroni cluster (Patroni stopped or never joined)" in messages(report)


def test_the_probe_looks_twice_at_a_standby_caught_mid_reply():
    from prontuario_cli.replication.facts import needs_second_look

    assert needs_second_look([frozen_standby()])
    assert not needs_second_look([fx.member_replica(reply_age_s=9.0)])  # idle: owes nothing
    assert not needs_second_look([fx.member_replica(replay_lag_bytes=512, flush_lag_bytes=512, reply_age_s=0.01)])


def test_replica_not_streaming_from_the_primary_is_critical():
    report = run(fx.with_replicas(fx.healthy(), fx.cloud_replica()))
    assert report.status == Status.CRITICAL
    assert "mac-studio-2: not streaming from the primary mac-studio-1" in messages(report)
    member = next(m for m in report.members if m.node == "mac-studio-2")
    assert member.status == Status.CRITICAL


# --------------------------------------------------------------------------- members


def test_a_member_down_is_critical():
    outcomes = fx.healthy()
    outcomes["postgres:mac-studio-2"] = fx.refused("postgres:mac-studio-2")
    outcomes["patroni:mac-studio-2"] = fx.refused("patroni:mac-studio-2")
    report = run(outcomes)
    assert report.status == Status.CRITICAL
    member = next(m for m in report.members if m.node == "mac-studio-2")
    assert member.reachable == "down" and member.status == Status.CRITICAL


def test_a_hung_member_is_unknown_not_ok():
    outcomes = fx.healthy()
    outcomes["postgres:mac-studio-2"] = fx.no_answer("postgres:mac-studio-2")
    outcomes["patroni:mac-studio-2"] = fx.hung("patroni:mac-studio-2")
    report = run(outcomes)
    assert report.status == Status.UNKNOWN
    member = next(m for m in report.members if m.node == "mac-studio-2")
    assert member.reachable == "no answer"
    assert "no answer within 1 s" in messages(report)


def test_two_primaries_is_critical():
    outcomes = fx.healthy()
    outcomes = fx.replace_value(outcomes, "postgres:mac-studio-2", in_recovery=False)
    report = run(outcomes)
    assert report.status == Status.CRITICAL
    assert "two read-write primaries: mac-studio-1, mac-studio-2" in messages(report)


def test_patroni_paused_is_a_warning():
    outcomes = fx.healthy()
    node, cluster = outcomes["patroni:mac-studio-1"].value
    paused = dataclasses.replace(cluster, paused=True)
    for name in ("patroni:mac-studio-1", "patroni:mac-studio-2"):
        outcomes[name] = dataclasses.replace(outcomes[name], value=(outcomes[name].value[0], paused))
    report = run(outcomes)
    assert report.status == Status.WARNING and "maintenance mode" in messages(report)


def test_a_probe_that_crashed_is_unknown_and_says_bug():
    from prontuario_cli.connect.fanout import Outcome

    outcomes = fx.healthy()
    outcomes["redis:mac-studio-2"] = Outcome("redis:mac-studio-2", bug="KeyError: 'role'")
    report = run(outcomes)
    assert report.status == Status.UNKNOWN and "this is a bug" in messages(report)


# --------------------------------------------------------------------------- timeline


def test_timeline_change_against_the_record_is_a_warning(tmp_path):
    outcomes = fx.healthy()
    previous = TimelineState("prontuario", 1, "mac-studio-1", "2026-11-25T03:00:00+00:00")
    record_timeline(tmp_path, previous)

    promoted = outcomes
    for name in ("postgres:mac-studio-1", "postgres:mac-studio-2", "postgres:cloud"):
        promoted = fx.replace_value(promoted, name, timeline=2)
    first = run(promoted, previous=read_timeline(tmp_path, "prontuario"))
    assert first.status == Status.WARNING and first.timeline_changed
    assert (first.previous_timeline, first.timeline) == (1, 2)
    assert "timeline changed 1→2" in messages(first)

    record_timeline(tmp_path, TimelineState("prontuario", first.timeline, first.leader, "2026-11-25T03:05:00+00:00"))
    second = run(promoted, previous=read_timeline(tmp_path, "prontuario"))
    assert second.status == Status.OK and not second.timeline_changed


def test_no_previous_record_is_not_a_change(tmp_path):
    report = run(previous=read_timeline(tmp_path, "prontuario"))
    assert report.status == Status.OK and not report.timeline_changed


def test_a_record_of_another_cluster_is_ignored(tmp_path):
    record_timeline(tmp_path, TimelineState("other-scope", 7))
    assert read_timeline(tmp_path, "prontuario") is None


# --------------------------------------------------------------------------- Redis and Sentinel


def test_sentinels_disagree_is_critical():
    outcomes = fx.healthy()
    outcomes = fx.replace_value(outcomes, "sentinel:witness", master_port=26024)
    report = run(outcomes)
    assert report.status == Status.CRITICAL
    assert "Sentinels disagree on the Redis master" in messages(report)
    witness = next(s for s in report.sentinels if s.node == "witness")
    assert witness.master == "mac-studio-2" and witness.agrees is False


def test_no_quorum_is_critical():
    outcomes = fx.replace_value(fx.healthy(), "sentinel:mac-studio-1", quorum_ok=False, quorum_message="NOQUORUM 1 usable Sentinels")
    report = run(outcomes)
    assert report.status == Status.CRITICAL and "CKQUORUM failed: NOQUORUM" in messages(report)


def test_one_sentinel_down_keeps_quorum_and_is_a_warning():
    outcomes = fx.healthy()
    outcomes["sentinel:witness"] = fx.refused("sentinel:witness")
    report = run(outcomes)
    assert report.status == Status.WARNING, messages(report)
    assert next(p for p in report.nagios().perfdata if p.label == "sentinels").render().startswith("sentinels=2")


def test_two_sentinels_down_is_critical():
    outcomes = fx.healthy()
    outcomes["sentinel:witness"] = fx.refused("sentinel:witness")
    outcomes["sentinel:mac-studio-2"] = fx.no_answer("sentinel:mac-studio-2")
    report = run(outcomes)
    assert report.status == Status.CRITICAL and "only 1 of 3 Sentinels answered" in messages(report)


def test_redis_replica_down_is_critical():
    outcomes = fx.healthy()
    outcomes["redis:mac-studio-2"] = fx.refused("redis:mac-studio-2")
    report = run(outcomes)
    assert report.status == Status.CRITICAL
    row = next(r for r in report.redis if r.node == "mac-studio-2")
    assert row.reachable == "down" and row.status == Status.CRITICAL


def test_redis_link_down_is_critical():
    outcomes = fx.replace_value(fx.healthy(), "redis:mac-studio-2", master_link_status="down", master_link_down_since_s=8)
    report = run(outcomes)
    assert report.status == Status.CRITICAL and "link to the master is down for 8 s" in messages(report)


def test_redis_offset_lag_bytes_and_silence():
    master = fx.healthy()["redis:mac-studio-1"].value
    link = dataclasses.replace(master.connected_replicas[0], offset=master.master_repl_offset - 20 * MiB)
    outcomes = fx.replace_value(fx.healthy(), "redis:mac-studio-1", connected_replicas=(link,))
    report = run(outcomes)
    assert report.status == Status.WARNING
    assert next(r for r in report.redis if r.node == "mac-studio-2").offset_lag_bytes == 20 * MiB
    silent = fx.replace_value(outcomes, "redis:mac-studio-2", master_last_io_s=30)
    assert run(silent).status == Status.CRITICAL


def test_two_redis_masters_is_critical():
    outcomes = fx.replace_value(fx.healthy(), "redis:mac-studio-2", role="master")
    report = run(outcomes)
    assert report.status == Status.CRITICAL and "two Redis masters" in messages(report)


# --------------------------------------------------------------------------- HAProxy


def _haproxy_with(outcomes, **status_by_server):
    servers = tuple(
        dataclasses.replace(s, status=status_by_server.get(f"{s.proxy}/{s.server}", s.status))
        for s in outcomes["haproxy"].value
    )
    changed = dict(outcomes)
    changed["haproxy"] = dataclasses.replace(outcomes["haproxy"], value=servers)
    return changed


def test_two_write_servers_is_critical():
    report = run(_haproxy_with(fx.healthy(), **{"write/mac-studio-2": "UP"}))
    assert report.status == Status.CRITICAL
    assert "2 write servers UP (mac-studio-1, mac-studio-2)" in messages(report)
    assert sum(1 for h in report.haproxy if h.takes_writes) == 2


def test_no_write_server_is_critical():
    report = run(_haproxy_with(fx.healthy(), **{"write/mac-studio-1": "DOWN"}))
    assert report.status == Status.CRITICAL and "no write server is UP" in messages(report)


def test_writes_routed_to_the_replica_is_critical():
    report = run(_haproxy_with(fx.healthy(), **{"write/mac-studio-1": "DOWN", "write/mac-studio-2": "UP"}))
    assert report.status == Status.CRITICAL
    assert "sends writes to mac-studio-2, but the primary is mac-studio-1" in messages(report)


def test_a_healthy_backup_beside_a_primary_is_a_split_brain_warning():
    report = run(_haproxy_with(fx.healthy(), **{"write/cloudsql": "UP"}))
    assert report.status == Status.WARNING and "it would take writes in a failover" in messages(report)


def test_haproxy_unreachable_is_critical():
    outcomes = fx.healthy()
    outcomes["haproxy"] = fx.refused("haproxy")
    assert run(outcomes).status == Status.CRITICAL


# --------------------------------------------------------------------------- cloud fallback


def test_gcp_fallback_active_is_critical():
    report = run(gcp_active=True)
    assert report.status == Status.CRITICAL and report.gcp_fallback_active


def test_a_cloud_subscription_that_stopped_following_is_critical():
    for status in ("down", "disabled", "initializing"):
        report = run(fx.cloud_subscription(fx.healthy(), status=status))
        assert report.status == Status.CRITICAL and f"cloud replica stopped following: subscription cloudsql is {status}" in messages(report)
        assert not report.cloud.following


def test_no_subscription_or_no_pglogical_on_the_cloud_replica_is_critical():
    outcomes = fx.replace_value(fx.healthy(), "postgres:cloud", subscriptions=())
    assert "cloud replica has no subscription 'cloudsql'" in messages(run(outcomes))
    outcomes = fx.replace_value(fx.healthy(), "postgres:cloud", subscriptions=None)
    report = run(outcomes)
    assert report.status == Status.CRITICAL and "cloud replica has no pglogical" in messages(report)


def test_the_cloud_slot_missing_or_lost_on_the_primary_is_critical():
    report = run(fx.cloud_slot(fx.healthy(), gone=True))
    assert report.status == Status.CRITICAL and "slot pgl_prontuario_onprem_cloudsql is missing on the primary mac-studio-1" in messages(report)
    report = run(fx.cloud_slot(fx.healthy(), wal_status="lost"))
    assert report.status == Status.CRITICAL and "has lost WAL the cloud replica still needs" in messages(report)


def test_the_cloud_replica_behind_past_the_rpo_target_is_critical_and_half_of_it_a_warning():
    from prontuario_cli.replication.evaluate import now_epoch

    checked_at = "2026-11-29T12:00:00+00:00"
    now = now_epoch(checked_at)
    confirmed = facts.lsn_to_int(fx.healthy()["postgres:mac-studio-1"].value.logical_slots[0].confirmed_flush_lsn)
    outcomes = fx.cloud_slot(fx.healthy(), behind_bytes=5 * MiB)
    for age, status in ((90, Status.CRITICAL), (40, Status.WARNING), (10, Status.OK)):
        samples = [(now - 300, confirmed - 100), (now - age, confirmed + 10), (now, confirmed + 5 * MiB)]
        report = evaluate(fx.inventory(), outcomes, checked_at=checked_at, cloud_samples=samples)
        assert report.status == status, (age, messages(report))
        assert report.cloud.lag_s == pytest.approx(age) and report.cloud.lag_bytes == 5 * MiB
    assert "past the 60 s RPO target" in messages(evaluate(fx.inventory(), outcomes, checked_at=checked_at,
                                                            cloud_samples=[(now - 90, confirmed + 1)]))


def test_after_a_promote_the_cloud_replica_follows_nothing():
    report = run(fx.cloud_subscription(fx.healthy(), status="disabled"), gcp_active=True)
    assert "stopped following" not in messages(report) and report.members[-1].state == "promoted"


def test_cloud_replica_unreachable_is_a_warning():
    outcomes = fx.healthy()
    outcomes["postgres:cloud"] = fx.refused("postgres:cloud")
    report = run(outcomes)
    assert report.status == Status.WARNING and "emergency fallback is degraded" in messages(report)


# --------------------------------------------------------------------------- output


@pytest.mark.parametrize("fmt", ["json", "table", "nagios"])
def test_every_format_renders(fmt):
    import io

    from prontuario_cli.cli.output import render

    out = io.StringIO()
    render(run(fx.with_replicas(fx.healthy(), fx.cloud_replica())), fmt, out, color=False, width=200)
    assert out.getvalue().strip()


def test_json_keys_are_stable():
    from prontuario_cli.report import to_jsonable

    data = to_jsonable(run())
    assert data["status"] == "ok"
    assert set(data) >= {"summary", "leader", "timeline", "members", "replicas", "redis", "sentinels", "haproxy", "problems", "nodes_up"}
    replica = data["replicas"][0]
    for key in ("write_lag_s", "flush_lag_s", "replay_lag_s", "write_lag_bytes", "flush_lag_bytes", "replay_lag_bytes", "lag_s", "sync_state"):
        assert key in replica
    assert "alert_bytes" not in data  # thresholds are for perfdata only


def test_nagios_perfdata_has_lag_seconds_and_bytes_per_replica():
    line = run().nagios().line()
    perf = line.split(" | ", 1)[1]
    assert "pg_lag_mac-studio-2=0s;0.1;10;0" in perf
    assert "pg_lag_bytes_mac-studio-2=0B;;16777216;0" in perf
    assert "redis_offset_lag_mac-studio-2=0B" in perf
    assert "sentinels=3;;;0;3" in perf
    assert "haproxy_write_servers=1" in perf
