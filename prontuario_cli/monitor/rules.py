"""The four alerts of the design, and prontuario's own for etcd, built from the inventory and rendered for Prometheus.

:func:`build_rule_group` turns an :class:`~prontuario_cli.inventory.Inventory` into a
:class:`RuleGroup` (plain data). :func:`rules_file` gives the document Prometheus
loads with ``rule_files:``; :func:`prometheus_rule` wraps the same group in a
Prometheus Operator ``PrometheusRule`` manifest; :func:`to_yaml` writes either.

Where each number comes from:

- ``DatabaseReplicationLag`` fires above ``targets.replication_lag.alert_s`` (the
  brief: 10 s), for 1 m.
- ``MacStudioDown`` waits 30 s and ``HAClusterDegraded`` 1 m: both are the brief's
  numbers, kept fixed on purpose. 30 s happens to equal the failover RTO
  (``targets.primary_lost.rto_s``), but the alert is about a node being down,
  not about failover, so a different RTO should not silently move it.
- ``GCPFallbackActivated`` fires at once (no ``for``): the fallback is never
  promoted by accident and every minute of it matters.
- ``HAClusterDegraded`` fires when strictly fewer than half of the Mac nodes are
  up (``< 0.5``). With two Macs, one of two up is exactly 50 % and does not
  fire (``MacStudioDown`` already pages for it); both down fires. A job with no
  ``up`` series at all counts as 0 % up, so losing the scrape targets cannot
  hide an outage.

etcd, the vote behind every failover (the brief has no alert for it; these read the
``prontuario_etcd_*`` gauges the replication check writes):

- ``EtcdQuorumLost`` fires at once: Patroni can no longer renew or take its leader
  key; without failsafe the primary demotes itself within ``ttl``.
- ``EtcdNoSpareVote`` warns after 1 m with the quorum kept but a member lost: one
  more loss stops failover.
- ``EtcdAlarm`` fires at once: a NOSPACE or CORRUPT etcd refuses writes.
- ``PatroniFailsafeOff`` warns after 10 m: the cluster would demote a healthy
  primary on an etcd quorum loss.

The Cloud SQL replica (the brief's RPO < 60 s when both Macs are lost; these read the
``prontuario_cloud_replica_*`` gauges the replication check writes):

- ``CloudReplicaNotFollowing`` pages after 2 m: its subscription is not replicating, or
  its slot is gone from the primary (a failover the replica could not follow). Two
  minutes let a switchover's reconnection finish; quiet in emergency mode (promoted).
- ``CloudReplicaBehind`` pages after 1 m past ``targets.both_lost.rpo_s``: losing both
  Macs now would lose more than the brief allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from prontuario_cli.errors import ConfigError, UsageError

JOB = "mac-studio"  # the Prometheus scrape job of the Mac Studios' exporters
MAC_DOWN_FOR_S = 30.0  # brief: MacStudioDown for 30 s
REPLICATION_LAG_FOR_S = 60.0  # brief: DatabaseReplicationLag for 1 m
HA_DEGRADED_FOR_S = 60.0  # brief: HAClusterDegraded for 1 m
HA_MIN_UP_RATIO = 0.5  # brief: fewer than 50 % of Mac nodes up
ETCD_MEMBER_LOST_FOR_S = 60.0  # a restart or a short blip does not page
FAILSAFE_OFF_FOR_S = 600.0  # a configuration to fix in working hours, not a page
CLOUD_NOT_FOLLOWING_FOR_S = 120.0  # a switchover's reconnection is not a page
CLOUD_BEHIND_FOR_S = 60.0

KINDS = ("rules", "prometheusrule")
API_VERSION = "monitoring.coreos.com/v1"

# What the on-call engineer runs first when each alert pages.
RUNBOOK = {
    "MacStudioDown": "prontuario replication status (who is primary now, is HAProxy routing to it); then prontuario inventory show {{ $labels.instance }}",
    "DatabaseReplicationLag": "prontuario replication status (lag in seconds and bytes per replica, Patroni roles)",
    "GCPFallbackActivated": "prontuario gcp status (what was promoted, when, by whom); recover the Macs, then fail back",
    "HAClusterDegraded": "prontuario replication status; if both Macs are down: prontuario gcp status",
    "EtcdQuorumLost": "prontuario status (which etcd members are frozen or down); bring one back: the primary waits on it",
    "EtcdNoSpareVote": "prontuario replication status (the etcd table: which member is lost); restart it before anything else fails",
    "EtcdAlarm": "prontuario replication status (which member raised it); then etcdctl alarm list, compact, defrag, alarm disarm",
    "PatroniFailsafeOff": "prontuario replication check; then patronictl edit-config -s failsafe_mode=true",
    "CloudReplicaNotFollowing": "prontuario gcp status (the subscription's state, the slot on the primary); prontuario replication check",
    "CloudReplicaBehind": "prontuario gcp status (bytes and seconds behind); check the Macs' uplink and the replica's load",
}


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule; ``for_s`` 0 means it fires on the first evaluation."""

    alert: str
    expr: str
    for_s: float
    severity: str
    summary: str
    description: str
    runbook: str

    def to_prometheus(self, labels: dict[str, str]) -> dict[str, Any]:
        """The rule as Prometheus writes it (``for`` left out when it is 0)."""
        rule: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_s > 0:
            rule["for"] = prometheus_duration(self.for_s)
        rule["labels"] = {"severity": self.severity, **labels}
        rule["annotations"] = {"summary": self.summary, "description": self.description, "runbook": self.runbook}
        return rule


@dataclass(frozen=True)
class RuleGroup:
    """The alert rules of one cluster, with the labels every alert carries."""

    name: str
    cluster: str
    rules: tuple[AlertRule, ...]

    @property
    def labels(self) -> dict[str, str]:
        return {"cluster": self.cluster}

    def to_prometheus(self) -> dict[str, Any]:
        return {"name": self.name, "rules": [rule.to_prometheus(self.labels) for rule in self.rules]}

    def tables(self):
        from prontuario_cli.report import Table

        rows = tuple(
            (r.alert, r.severity, prometheus_duration(r.for_s) if r.for_s else "at once", r.expr) for r in self.rules
        )
        return [Table(f"alert rules: group {self.name}", ("alert", "severity", "for", "expr"), rows)]


def build_rule_group(inventory) -> RuleGroup:
    """The brief's four alerts with the inventory's thresholds, then etcd's."""
    lag_s = inventory.targets.replication_lag.alert_s
    if not (math.isfinite(lag_s) and lag_s > 0):
        raise ConfigError(
            f"{inventory.source or 'inventory'}: targets.replication_lag.alert_s must be a number above 0, got {lag_s!r}",
            hint="the brief's value is 10",
        )
    lag = _number(lag_s)
    up = f'up{{job="{JOB}"}}'
    ratio = _number(HA_MIN_UP_RATIO)
    rules = (
        AlertRule(
            alert="MacStudioDown",
            expr=f"{up} == 0",
            for_s=MAC_DOWN_FOR_S,
            severity="critical",
            summary="Mac Studio {{ $labels.instance }} is down",
            description=(
                "Prometheus cannot scrape the Mac Studio {{ $labels.instance }} (job " + JOB + ") "
                f"for more than {prometheus_duration(MAC_DOWN_FOR_S)}. The cluster runs on one Mac: "
                "check that failover happened and that the other Mac is serving."
            ),
            runbook=RUNBOOK["MacStudioDown"],
        ),
        AlertRule(
            alert="DatabaseReplicationLag",
            expr=f"postgresql_replication_lag_seconds > {lag}",
            for_s=REPLICATION_LAG_FOR_S,
            severity="warning",
            summary="PostgreSQL replication lag on {{ $labels.instance }} is above " + lag + " s",
            description=(
                "The replica on {{ $labels.instance }} is {{ $value }} s behind the primary "
                f"(alert above {lag} s, target {_number(inventory.targets.replication_lag.sync_target_ms)} ms) "
                f"for {prometheus_duration(REPLICATION_LAG_FOR_S)}. A failover now could lose data."
            ),
            runbook=RUNBOOK["DatabaseReplicationLag"],
        ),
        AlertRule(
            alert="GCPFallbackActivated",
            expr="gcp_fallback_active == 1",
            for_s=0.0,
            severity="critical",
            summary="The emergency Cloud SQL fallback is active",
            description=(
                "gcp_fallback_active is 1 on {{ $labels.instance }}: the hospital runs in emergency mode "
                "(basic chat, limited transcription, password login, 50 users). Recover the Macs."
            ),
            runbook=RUNBOOK["GCPFallbackActivated"],
        ),
        AlertRule(
            alert="HAClusterDegraded",
            expr=f"(sum({up}) / count({up}) or vector(0)) < {ratio}",
            for_s=HA_DEGRADED_FOR_S,
            severity="critical",
            summary=f"Fewer than {HA_MIN_UP_RATIO:.0%} of the Mac Studios are up",
            description=(
                "Only {{ $value | humanizePercentage }} of the Mac Studios (job " + JOB + ") are up "
                f"for {prometheus_duration(HA_DEGRADED_FOR_S)}. Without a Mac the cloud fallback must carry the hospital."
            ),
            runbook=RUNBOOK["HAClusterDegraded"],
        ),
        *_etcd_rules(),
        *_cloud_rules(inventory.targets.both_lost.rpo_s),
    )
    name = f"{inventory.cluster.name}.availability"
    return RuleGroup(name=name, cluster=inventory.cluster.name, rules=rules)


def _cloud_rules(rpo_s: float) -> tuple[AlertRule, ...]:
    rpo = _number(rpo_s)
    return (
        AlertRule(
            alert="CloudReplicaNotFollowing",
            expr="prontuario_cloud_replica_following == 0 and on(cluster) gcp_fallback_active == 0",
            for_s=CLOUD_NOT_FOLLOWING_FOR_S,
            severity="critical",
            summary="The Cloud SQL replica has stopped following the Macs",
            description=(
                "The cloud replica's subscription is not replicating, or its slot is missing on the primary, "
                f"for {prometheus_duration(CLOUD_NOT_FOLLOWING_FOR_S)}. If both Macs were lost now, the fallback "
                f"would be behind by more than the {rpo} s RPO target."
            ),
            runbook=RUNBOOK["CloudReplicaNotFollowing"],
        ),
        AlertRule(
            alert="CloudReplicaBehind",
            expr=f"prontuario_cloud_replica_lag_seconds > {rpo}",
            for_s=CLOUD_BEHIND_FOR_S,
            severity="critical",
            summary=f"The Cloud SQL replica is more than {rpo} s behind",
            description=(
                "The cloud replica is {{ $value }} s behind the primary "
                f"(the brief's RPO when both Macs are lost: {rpo} s) for {prometheus_duration(CLOUD_BEHIND_FOR_S)}."
            ),
            runbook=RUNBOOK["CloudReplicaBehind"],
        ),
    )


def _etcd_rules() -> tuple[AlertRule, ...]:
    return (
        AlertRule(
            alert="EtcdQuorumLost",
            expr="prontuario_etcd_quorum == 0",
            for_s=0.0,
            severity="critical",
            summary="etcd has lost its quorum: Patroni cannot hold or elect a leader",
            description=(
                "Fewer than a majority of etcd members agree on a leader. Patroni cannot renew its leader key: "
                "with failsafe_mode the primary keeps writes only while every member answers it; without it, writes stop "
                "within ttl. No failover is possible until etcd is back."
            ),
            runbook=RUNBOOK["EtcdQuorumLost"],
        ),
        AlertRule(
            alert="EtcdNoSpareVote",
            expr="prontuario_etcd_members_healthy < prontuario_etcd_members and prontuario_etcd_quorum == 1",
            for_s=ETCD_MEMBER_LOST_FOR_S,
            severity="warning",
            summary="etcd lost a member: one more loss stops failover",
            description=(
                "{{ $value }} etcd members are healthy: the quorum holds without a spare vote "
                f"for {prometheus_duration(ETCD_MEMBER_LOST_FOR_S)}. Losing one more member stops Patroni's failover."
            ),
            runbook=RUNBOOK["EtcdNoSpareVote"],
        ),
        AlertRule(
            alert="EtcdAlarm",
            expr="prontuario_etcd_alarms > 0",
            for_s=0.0,
            severity="critical",
            summary="etcd raised an alarm (NOSPACE or CORRUPT): it refuses writes",
            description="{{ $value }} etcd alarms are active: Patroni cannot renew its leader key while etcd refuses writes.",
            runbook=RUNBOOK["EtcdAlarm"],
        ),
        AlertRule(
            alert="PatroniFailsafeOff",
            expr="prontuario_patroni_failsafe_mode == 0",
            for_s=FAILSAFE_OFF_FOR_S,
            severity="warning",
            summary="Patroni's failsafe_mode is off",
            description=(
                f"failsafe_mode has been off for {prometheus_duration(FAILSAFE_OFF_FOR_S)}: if etcd loses its quorum "
                "the healthy primary demotes itself and the hospital stops writing."
            ),
            runbook=RUNBOOK["PatroniFailsafeOff"],
        ),
    )


def rules_file(group: RuleGroup) -> dict[str, Any]:
    """The document Prometheus loads through ``rule_files:``."""
    return {"groups": [group.to_prometheus()]}


def prometheus_rule(group: RuleGroup, *, namespace: str | None = None, name: str | None = None) -> dict[str, Any]:
    """A Prometheus Operator ``PrometheusRule`` manifest holding the group."""
    metadata: dict[str, Any] = {"name": name or f"{group.cluster}-alerts"}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = {
        "app.kubernetes.io/name": "prontuario",
        "app.kubernetes.io/component": "alert-rules",
        "app.kubernetes.io/managed-by": "prontuario",
        "prontuario/cluster": group.cluster,
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": [group.to_prometheus()]},
    }


def rules_document(inventory, kind: str = "rules", *, namespace: str | None = None) -> dict[str, Any]:
    """The document of ``kind`` (``rules`` or ``prometheusrule``) for this inventory."""
    if kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}", hint=f"choose one of: {', '.join(KINDS)}")
    if namespace and kind != "prometheusrule":
        raise UsageError("--namespace only applies to --kind prometheusrule")
    group = build_rule_group(inventory)
    if kind == "rules":
        return rules_file(group)
    return prometheus_rule(group, namespace=namespace)


def to_yaml(document: dict[str, Any], *, source: str = "") -> str:
    """YAML text of a document, with a header saying where it came from."""
    import yaml

    origin = f" from {source}" if source else ""
    header = f"# Generated by 'prontuario monitor rules'{origin}. Change the inventory, not this file.\n"
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1 << 16)
    return header + body


def prometheus_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration: 30 -> 30s, 60 -> 1m, 90 -> 1m30s, 0.5 -> 500ms."""
    ms = round(seconds * 1000)
    if ms < 0:
        raise ValueError(f"negative duration: {seconds!r}")
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _number(value: float) -> str:
    """A threshold as PromQL reads it: 10.0 -> 10, 2.5 -> 2.5."""
    return f"{value:.12g}" if value != int(value) else str(int(value))
