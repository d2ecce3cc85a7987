"""Each alert fires, or stays quiet, at the right moment: ``promtool test rules`` on synthetic series.

Rules are evaluated every 5 s and series are sampled every 5 s, so the boundaries
(30 s for MacStudioDown, 1 m for the others, at once for GCPFallbackActivated)
are hit exactly. Every test runs against the plain rules file and against the
groups taken out of the PrometheusRule manifest.
"""

from __future__ import annotations

import pytest
import yaml

from prontuario_cli.monitor.rules import rules_document, to_yaml
from tests.monitor.promtool_harness import expected_alert, groups_of_manifest, inventory, run_rule_tests

MAC1 = {"job": "mac-studio", "instance": "mac-studio-1"}
MAC2 = {"job": "mac-studio", "instance": "mac-studio-2"}
REPLICA = {"job": "postgres", "instance": "mac-studio-2"}
FALLBACK = {"job": "prontuario", "instance": "witness"}


def series(labels: dict, values: str, name: str = "up") -> dict:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def at(eval_time: str, alertname: str, *alerts: dict) -> dict:
    return {"eval_time": eval_time, "alertname": alertname, "exp_alerts": list(alerts)}


def render(alert_s=None, form: str = "rules") -> dict:
    """The rules document as the CLI renders it (through YAML), as a rules file."""
    if form == "rules":
        return yaml.safe_load(to_yaml(rules_document(inventory(alert_s), "rules")))
    manifest = yaml.safe_load(to_yaml(rules_document(inventory(alert_s), "prometheusrule", namespace="monitoring")))
    return groups_of_manifest(manifest)


@pytest.fixture(params=["rules", "prometheusrule"])
def form(request):
    return request.param


def assert_passes(rules, tests, tmp_path):
    result = run_rule_tests(rules, tests, tmp_path)
    assert result.code == 0, result.out
    assert "SUCCESS" in result.out


# ----------------------------------------------------------------------- MacStudioDown


def test_mac_studio_down_fires_after_30_seconds(tmp_path, form):
    rules = render(form=form)
    down = expected_alert(rules, "MacStudioDown", MAC1, instance="mac-studio-1")
    test = {
        "interval": "5s",
        "input_series": [series(MAC1, "0x24"), series(MAC2, "1x24")],
        "alert_rule_test": [
            at("20s", "MacStudioDown"),
            at("25s", "MacStudioDown"),
            at("30s", "MacStudioDown", down),
            at("2m", "MacStudioDown", down),
        ],
    }
    assert_passes(rules, [test], tmp_path)


def test_mac_studio_down_for_less_than_30_seconds_does_not_fire(tmp_path, form):
    rules = render(form=form)
    test = {
        "interval": "5s",
        "input_series": [series(MAC1, "0 0 0 0 0 1x20"), series(MAC2, "1x25")],
        "alert_rule_test": [at("25s", "MacStudioDown"), at("40s", "MacStudioDown"), at("2m", "MacStudioDown")],
    }
    assert_passes(rules, [test], tmp_path)


# ----------------------------------------------------------------------- DatabaseReplicationLag


def lag_test(values: str, checks: list[dict]) -> dict:
    return {
        "interval": "5s",
        "input_series": [series(REPLICA, values, name="postgresql_replication_lag_seconds")],
        "alert_rule_test": checks,
    }


def test_replication_lag_above_10_seconds_for_a_minute_fires(tmp_path, form):
    rules = render(form=form)
    lagging = expected_alert(rules, "DatabaseReplicationLag", REPLICA, instance="mac-studio-2", value="11")
    checks = [at("55s", "DatabaseReplicationLag"), at("1m", "DatabaseReplicationLag", lagging), at("2m", "DatabaseReplicationLag", lagging)]
    assert_passes(rules, [lag_test("11x24", checks)], tmp_path)


@pytest.mark.parametrize("values", ["9x24", "10x24", "11x5 1x18"], ids=["below", "at-threshold", "short-spike"])
def test_replication_lag_below_or_at_the_threshold_or_brief_does_not_fire(tmp_path, form, values):
    rules = render(form=form)
    checks = [at("1m", "DatabaseReplicationLag"), at("2m", "DatabaseReplicationLag")]
    assert_passes(rules, [lag_test(values, checks)], tmp_path)


def test_replication_lag_threshold_follows_the_inventory(tmp_path):
    """With alert_s: 5, a 6 s lag fires; with the brief's 10 it does not."""
    lowered = render(alert_s=5)
    lagging = expected_alert(lowered, "DatabaseReplicationLag", REPLICA, instance="mac-studio-2", value="6")
    (tmp_path / "lowered").mkdir()
    assert_passes(lowered, [lag_test("6x24", [at("2m", "DatabaseReplicationLag", lagging)])], tmp_path / "lowered")
    assert_passes(lowered, [lag_test("4x24", [at("2m", "DatabaseReplicationLag")])], tmp_path / "lowered")
    (tmp_path / "brief").mkdir()
    assert_passes(render(), [lag_test("6x24", [at("2m", "DatabaseReplicationLag")])], tmp_path / "brief")


# ----------------------------------------------------------------------- GCPFallbackActivated


def test_gcp_fallback_fires_at_once(tmp_path, form):
    rules = render(form=form)
    active = expected_alert(rules, "GCPFallbackActivated", FALLBACK, instance="witness")
    test = {
        "interval": "5s",
        "input_series": [series(FALLBACK, "0 0 1x5 0x10", name="gcp_fallback_active")],
        "alert_rule_test": [
            at("5s", "GCPFallbackActivated"),
            at("10s", "GCPFallbackActivated", active),
            at("1m", "GCPFallbackActivated"),  # failed back: quiet again
        ],
    }
    assert_passes(rules, [test], tmp_path)


# ----------------------------------------------------------------------- HAClusterDegraded


def ha_test(mac1: str, mac2: str | None, checks: list[dict]) -> dict:
    inputs = [series(MAC1, mac1)] + ([series(MAC2, mac2)] if mac2 is not None else [])
    return {"interval": "5s", "input_series": inputs, "alert_rule_test": checks}


def test_ha_degraded_fires_when_both_macs_are_down_for_a_minute(tmp_path, form):
    rules = render(form=form)
    degraded = expected_alert(rules, "HAClusterDegraded", {}, value="0")
    checks = [at("55s", "HAClusterDegraded"), at("1m", "HAClusterDegraded", degraded)]
    assert_passes(rules, [ha_test("0x24", "0x24", checks)], tmp_path)


def test_ha_degraded_one_of_two_up_is_exactly_half_and_does_not_fire(tmp_path, form):
    """50 % up is not "fewer than 50 %": MacStudioDown pages for the lost Mac instead."""
    rules = render(form=form)
    down = expected_alert(rules, "MacStudioDown", MAC1, instance="mac-studio-1")
    checks = [at("3m", "HAClusterDegraded"), at("3m", "MacStudioDown", down)]
    assert_passes(rules, [ha_test("0x40", "1x40", checks)], tmp_path)


def test_ha_degraded_stays_quiet_when_both_macs_are_up(tmp_path):
    checks = [at("3m", "HAClusterDegraded"), at("3m", "MacStudioDown")]
    assert_passes(render(), [ha_test("1x40", "1x40", checks)], tmp_path)


def test_ha_degraded_fires_when_no_mac_is_scraped_at_all(tmp_path):
    """Losing every mac-studio target counts as 0 % up, not as "no data, no alert"."""
    rules = render()
    degraded = expected_alert(rules, "HAClusterDegraded", {}, value="0")
    test = {
        "interval": "5s",
        "input_series": [series({"job": "node", "instance": "witness"}, "1x24")],
        "alert_rule_test": [at("55s", "HAClusterDegraded"), at("1m", "HAClusterDegraded", degraded)],
    }
    assert_passes(rules, [test], tmp_path)


# ----------------------------------------------------------------------- the harness can fail


def test_promtool_test_rules_fails_on_a_wrong_expectation(tmp_path):
    """Claiming MacStudioDown fires at 20 s must make promtool fail: the checks above are real."""
    rules = render()
    down = expected_alert(rules, "MacStudioDown", MAC1, instance="mac-studio-1")
    test = {"interval": "5s", "input_series": [series(MAC1, "0x24")], "alert_rule_test": [at("20s", "MacStudioDown", down)]}
    result = run_rule_tests(rules, [test], tmp_path)
    assert result.code != 0
    assert "FAILED" in result.out


# ----------------------------------------------------------------------- etcd

ETCD = {"cluster": "prontuario"}


def etcd_series(healthy: str, quorum: str, alarms: str = "0x30") -> list[dict]:
    return [
        series(ETCD, "3x30", name="prontuario_etcd_members"),
        series(ETCD, healthy, name="prontuario_etcd_members_healthy"),
        series(ETCD, quorum, name="prontuario_etcd_quorum"),
        series(ETCD, alarms, name="prontuario_etcd_alarms"),
        series(ETCD, "1x30", name="prontuario_patroni_failsafe_mode"),
    ]


def test_one_etcd_member_lost_warns_after_a_minute_and_quorum_loss_fires_at_once(tmp_path, form):
    rules = render(form=form)
    spare = expected_alert(rules, "EtcdNoSpareVote", ETCD, value="2")
    lost = expected_alert(rules, "EtcdQuorumLost", ETCD)
    # 0-85 s: one member lost (2 of 3, quorum kept); from 90 s a second one (1 of 3, no quorum).
    test = {
        "interval": "5s",
        "input_series": etcd_series("2x17 1x12", "1x17 0x12"),
        "alert_rule_test": [
            at("55s", "EtcdNoSpareVote"),  # pending: a restart does not page
            at("60s", "EtcdNoSpareVote", spare),
            at("85s", "EtcdQuorumLost"),
            at("90s", "EtcdQuorumLost", lost),  # at once
            at("90s", "EtcdNoSpareVote"),  # the quorum alert takes over
        ],
    }
    assert_passes(rules, [test], tmp_path)


def test_a_healthy_etcd_is_quiet_and_an_alarm_fires_at_once(tmp_path, form):
    rules = render(form=form)
    alarm = expected_alert(rules, "EtcdAlarm", ETCD, value="1")
    test = {
        "interval": "5s",
        "input_series": etcd_series("3x30", "1x30", alarms="0x5 1x24"),
        "alert_rule_test": [
            at("25s", "EtcdAlarm"),  # "0x5": six quiet samples, 0-25 s
            at("30s", "EtcdAlarm", alarm),  # at once
            at("2m", "EtcdNoSpareVote"),
            at("2m", "EtcdQuorumLost"),
            at("2m", "PatroniFailsafeOff"),
        ],
    }
    assert_passes(rules, [test], tmp_path)


# ----------------------------------------------------------------------- the Cloud SQL replica

CLOUD = {"cluster": "prontuario", "subscription": "cloudsql"}


def test_a_cloud_replica_that_stops_following_pages_after_two_minutes_unless_promoted(tmp_path, form):
    rules = render(form=form)
    stopped = expected_alert(rules, "CloudReplicaNotFollowing", CLOUD)
    test = {
        "interval": "15s",
        "input_series": [
            series(CLOUD, "1x3 0x20", name="prontuario_cloud_replica_following"),  # "1x3": 0-45 s; stopped from 60 s
            series({"cluster": "prontuario"}, "0x23", name="gcp_fallback_active"),
        ],
        "alert_rule_test": [at("2m45s", "CloudReplicaNotFollowing"), at("3m", "CloudReplicaNotFollowing", stopped)],
    }
    promoted = {
        "interval": "15s",
        "input_series": [
            series(CLOUD, "0x20", name="prontuario_cloud_replica_following"),
            series({"cluster": "prontuario"}, "1x20", name="gcp_fallback_active"),  # emergency mode: the replica is the primary
        ],
        "alert_rule_test": [at("4m", "CloudReplicaNotFollowing")],
    }
    assert_passes(rules, [test, promoted], tmp_path)


def test_a_cloud_replica_past_the_rpo_target_pages_after_a_minute(tmp_path, form):
    rules = render(form=form)
    behind = expected_alert(rules, "CloudReplicaBehind", CLOUD, value="90")
    test = {
        "interval": "15s",
        "input_series": [series(CLOUD, "30x3 90x10", name="prontuario_cloud_replica_lag_seconds")],  # 90 s behind from 60 s
        "alert_rule_test": [at("30s", "CloudReplicaBehind"), at("1m45s", "CloudReplicaBehind"), at("2m", "CloudReplicaBehind", behind)],
    }
    assert_passes(rules, [test], tmp_path)
