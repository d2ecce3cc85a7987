"""Rendering the alert rules: the data, both YAML forms, and promtool's verdict on them."""

from __future__ import annotations

import dataclasses
import math

import pytest
import yaml

from prontuario_cli.errors import ConfigError, UsageError
from prontuario_cli.monitor.rules import (
    build_rule_group,
    prometheus_duration,
    prometheus_rule,
    rules_document,
    rules_file,
    to_yaml,
)
from tests.monitor.promtool_harness import check_rules, groups_of_manifest, inventory, promtool, rule

BRIEF = ["MacStudioDown", "DatabaseReplicationLag", "GCPFallbackActivated", "HAClusterDegraded"]
ETCD = ["EtcdQuorumLost", "EtcdNoSpareVote", "EtcdAlarm", "PatroniFailsafeOff"]
CLOUD = ["CloudReplicaNotFollowing", "CloudReplicaBehind"]
ALERTS = BRIEF + ETCD + CLOUD


def test_the_four_alerts_of_the_brief():
    rules = rules_file(build_rule_group(inventory()))
    assert [r["alert"] for r in rules["groups"][0]["rules"]] == ALERTS

    down = rule(rules, "MacStudioDown")
    assert down["expr"] == 'up{job="mac-studio"} == 0'
    assert down["for"] == "30s" and down["labels"]["severity"] == "critical"

    lag = rule(rules, "DatabaseReplicationLag")
    assert lag["expr"] == "postgresql_replication_lag_seconds > 10"
    assert lag["for"] == "1m" and lag["labels"]["severity"] == "warning"

    fallback = rule(rules, "GCPFallbackActivated")
    assert fallback["expr"] == "gcp_fallback_active == 1"
    assert "for" not in fallback and fallback["labels"]["severity"] == "critical"

    degraded = rule(rules, "HAClusterDegraded")
    assert degraded["expr"].endswith("< 0.5") and 'count(up{job="mac-studio"})' in degraded["expr"]
    assert degraded["for"] == "1m" and degraded["labels"]["severity"] == "critical"


def test_the_etcd_alerts():
    rules = rules_file(build_rule_group(inventory()))
    lost = rule(rules, "EtcdQuorumLost")
    assert lost["expr"] == "prontuario_etcd_quorum == 0" and "for" not in lost and lost["labels"]["severity"] == "critical"
    spare = rule(rules, "EtcdNoSpareVote")
    assert spare["expr"] == "prontuario_etcd_members_healthy < prontuario_etcd_members and prontuario_etcd_quorum == 1"
    assert spare["for"] == "1m" and spare["labels"]["severity"] == "warning"
    assert rule(rules, "EtcdAlarm")["expr"] == "prontuario_etcd_alarms > 0"
    off = rule(rules, "PatroniFailsafeOff")
    assert off["expr"] == "prontuario_patroni_failsafe_mode == 0" and off["for"] == "10m"


def test_every_alert_has_summary_description_and_a_prontuario_runbook():
    rules = rules_file(build_rule_group(inventory()))
    for alert in ALERTS:
        annotations = rule(rules, alert)["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}
        assert annotations["runbook"].startswith("prontuario "), alert
        assert rule(rules, alert)["labels"]["cluster"] == "prontuario"
    assert "{{ $labels.instance }}" in rule(rules, "MacStudioDown")["annotations"]["description"]
    assert "{{ $value }}" in rule(rules, "DatabaseReplicationLag")["annotations"]["description"]


@pytest.mark.parametrize("alert_s, expected", [(5, "5"), (2.5, "2.5"), (30.0, "30"), (0.25, "0.25")])
def test_the_lag_threshold_follows_the_inventory(alert_s, expected):
    rules = rules_file(build_rule_group(inventory(alert_s)))
    lag = rule(rules, "DatabaseReplicationLag")
    assert lag["expr"] == f"postgresql_replication_lag_seconds > {expected}"
    assert f"above {expected} s" in lag["annotations"]["summary"]


@pytest.mark.parametrize("alert_s", [0, -1, math.inf, math.nan])
def test_a_threshold_that_cannot_alert_is_a_config_error(alert_s):
    inv = inventory()
    lag = dataclasses.replace(inv.targets.replication_lag, alert_s=alert_s)
    inv = dataclasses.replace(inv, targets=dataclasses.replace(inv.targets, replication_lag=lag))
    with pytest.raises(ConfigError, match="alert_s"):
        build_rule_group(inv)


def test_the_prometheusrule_manifest_holds_the_same_group():
    group = build_rule_group(inventory())
    manifest = prometheus_rule(group, namespace="monitoring")
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["metadata"]["name"] == "prontuario-alerts"
    assert manifest["metadata"]["namespace"] == "monitoring"
    assert manifest["metadata"]["labels"]["app.kubernetes.io/name"] == "prontuario"
    assert manifest["spec"]["groups"] == rules_file(group)["groups"]
    assert "namespace" not in prometheus_rule(group)["metadata"]


def test_kind_and_namespace_are_checked():
    with pytest.raises(UsageError):
        rules_document(inventory(), "alertmanager")
    with pytest.raises(UsageError, match="--namespace"):
        rules_document(inventory(), "rules", namespace="monitoring")


def test_yaml_round_trips_and_says_where_it_came_from():
    document = rules_document(inventory(), "prometheusrule", namespace="monitoring")
    text = to_yaml(document, source="cluster.yaml")
    assert text.startswith("# Generated by 'prontuario monitor rules' from cluster.yaml.")
    assert yaml.safe_load(text) == document


@pytest.mark.parametrize(
    "seconds, text", [(0, "0s"), (30, "30s"), (60, "1m"), (90, "1m30s"), (3600, "1h"), (0.5, "500ms"), (3661, "1h1m1s")]
)
def test_prometheus_duration(seconds, text):
    assert prometheus_duration(seconds) == text


# ----------------------------------------------------------------------- promtool check rules


@pytest.mark.parametrize("alert_s", [None, 5, 2.5])
def test_promtool_accepts_the_rules_file(tmp_path, alert_s):
    text = to_yaml(rules_document(inventory(alert_s), "rules"), source="cluster.yaml")
    path = tmp_path / "prontuario.rules.yaml"
    path.write_text(text, encoding="utf-8")
    result = promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.code == 0, result.out
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.out


@pytest.mark.parametrize("alert_s", [None, 5])
def test_promtool_accepts_the_groups_of_the_prometheusrule_manifest(tmp_path, alert_s):
    text = to_yaml(rules_document(inventory(alert_s), "prometheusrule", namespace="monitoring"))
    result = check_rules(groups_of_manifest(yaml.safe_load(text)), tmp_path)
    assert result.code == 0, result.out
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.out


def test_promtool_rejects_a_broken_expression(tmp_path):
    """The harness can fail: a rule with an unbalanced expression must not pass."""
    rules = rules_file(build_rule_group(inventory()))
    rule(rules, "HAClusterDegraded")["expr"] = '(sum(up{job="mac-studio"}) / count(up{job="mac-studio"}) < 0.5'
    result = check_rules(rules, tmp_path)
    assert result.code != 0
    assert "HAClusterDegraded" in result.out or "parse error" in result.out


def test_promtool_rejects_a_bad_duration(tmp_path):
    rules = rules_file(build_rule_group(inventory()))
    rule(rules, "MacStudioDown")["for"] = "30 seconds"
    assert check_rules(rules, tmp_path).code != 0
