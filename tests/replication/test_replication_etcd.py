"""etcd, Patroni's store, in the replication check: members, quorum, alarms, failsafe, Patroni's view."""

from __future__ import annotations

import dataclasses
import json

import pytest

from prontuario_cli.cluster import etcd
from prontuario_cli.connect.fanout import Outcome
from prontuario_cli.replication.evaluate import evaluate
from prontuario_cli.replication.metrics import replication_textfile
from prontuario_cli.report import Status
from tests.replication import replication_fixtures as fx

CHECKED_AT = "2026-11-29T03:00:00+00:00"


def run(outcomes, **kw):
    return evaluate(fx.inventory(), outcomes, **kw)


def frozen(outcomes, *nodes):
    changed = dict(outcomes)
    for node in nodes:
        changed[f"etcd:{node}"] = fx.no_answer(f"etcd:{node}")
    return changed


def with_value(outcomes, name, value):
    changed = dict(outcomes)
    changed[name] = Outcome(name, value=value)
    return changed


# --------------------------------------------------------------------------- parsing


def test_a_real_status_answer_is_parsed():
    raw = fx.data("etcd_status.json")
    statuses = {node: etcd.parse_status(body) for node, body in raw.items()}
    leaders = {s.leader_id for s in statuses.values()}
    assert len(leaders) == 1 and None not in leaders
    assert [node for node, s in statuses.items() if s.is_leader] == ["witness"]
    s = statuses["mac-studio-1"]
    assert s.raft_term == 2 and s.raft_index > 0 and s.db_size > 0 and s.version == "3.4.23" and s.alarms == ()


def test_no_leader_and_an_alarm_are_read_from_what_the_gateway_leaves_out_or_adds():
    body = dict(fx.data("etcd_status.json")["mac-studio-1"])
    body.pop("leader")  # grpc-gateway leaves zero values out: raft.None
    body["errors"] = ["etcdserver: no leader", "memberID:15926306641384836019 alarm:NOSPACE "]
    s = etcd.parse_status(body)
    assert s.leader_id is None and s.alarms == ("NOSPACE",)
    with pytest.raises(ValueError):
        etcd.parse_status({"health": "true"})


# --------------------------------------------------------------------------- the verdict


def test_healthy_etcd_is_ok_with_every_member_in_the_table():
    report = run(fx.healthy())
    assert report.status == Status.OK
    assert report.etcd_quorum == {"healthy": 3, "total": 3, "majority": 2, "spare": 1, "quorum": True, "leader": "witness"}
    assert [(e.node, e.reachable, e.leader) for e in report.etcd] == [("mac-studio-1", "up", False), ("mac-studio-2", "up", False), ("witness", "up", True)]
    assert report.failsafe_mode is True


def test_one_frozen_member_leaves_no_spare_vote_warning():
    report = run(frozen(fx.healthy(), "witness"))
    assert report.status == Status.WARNING
    (problem,) = report.problems
    assert problem.component == "etcd"
    assert problem.message.startswith("etcd has no spare vote (witness: no answer within")
    assert "frozen?" in problem.message and "one more loss stops failover" in problem.message
    row = {e.node: e for e in report.etcd}["witness"]
    assert row.status == Status.WARNING and row.reachable == "no answer"


def test_two_frozen_members_lose_the_quorum_critical_naming_etcd_first():
    # The lone member cut off from the others answers at once and knows no leader.
    outcomes = frozen(fx.healthy(), "witness", "mac-studio-2")
    outcomes = with_value(outcomes, "etcd:mac-studio-1", fx.etcd_status("mac-studio-1", leader_id=None))
    # ... and the PostgreSQL symptom that follows without failsafe: no leader key.
    cluster = outcomes["patroni:mac-studio-1"].value[1]
    unled = dataclasses.replace(cluster, members=tuple(dataclasses.replace(m, role="replica") for m in cluster.members))
    for node in ("mac-studio-1", "mac-studio-2"):
        outcomes = with_value(outcomes, f"patroni:{node}", (outcomes[f"patroni:{node}"].value[0], unled))
    report = run(outcomes)
    assert report.status == Status.CRITICAL
    first = report.problems[0]
    assert first.component == "etcd" and first.message.startswith("etcd has no quorum (0 of 3 members healthy, 2 needed")
    assert "mac-studio-1: answers but knows no leader" in first.message
    assert "failsafe mode keeps the primary" in first.message
    assert report.summary.startswith("2 problems: etcd has no quorum")
    assert report.etcd_quorum["quorum"] is False


def test_without_failsafe_the_quorum_loss_says_writes_stop_and_failsafe_off_warns():
    outcomes = fx.healthy()
    for node in ("mac-studio-1", "mac-studio-2"):
        outcomes = with_value(outcomes, f"patroni-config:{node}", False)
    report = run(outcomes)
    assert report.status == Status.WARNING
    assert "failsafe_mode is off" in report.problems[0].message and "patronictl edit-config -s failsafe_mode=true" in report.problems[0].message
    lost = run(frozen(outcomes, "witness", "mac-studio-2"))
    assert lost.status == Status.CRITICAL and "the primary demotes itself" in lost.problems[0].message


def test_an_alarm_is_critical_even_with_the_quorum():
    outcomes = with_value(fx.healthy(), "etcd:mac-studio-2", fx.etcd_status("mac-studio-2", alarms=("NOSPACE",)))
    report = run(outcomes)
    assert report.status == Status.CRITICAL
    assert [p.message for p in report.problems] == [
        "etcd alarm NOSPACE on mac-studio-2: etcd refuses writes, Patroni cannot renew the leader key"
    ]
    assert {e.node: e.alarms for e in report.etcd}["mac-studio-2"] == "NOSPACE"


def test_a_member_down_is_named():
    outcomes = dict(fx.healthy())
    outcomes["etcd:mac-studio-2"] = fx.refused("etcd:mac-studio-2")
    report = run(outcomes)
    assert report.status == Status.WARNING
    assert report.problems[0].message.startswith("etcd has no spare vote (mac-studio-2: ")
    assert "refused" in report.problems[0].message


def test_patroni_running_on_failsafe_is_critical():
    own, cluster = fx.healthy()["patroni:mac-studio-1"].value
    outcomes = with_value(fx.healthy(), "patroni:mac-studio-1", (dataclasses.replace(own, failsafe_active=True), cluster))
    report = run(outcomes)
    assert report.status == Status.CRITICAL
    assert "Patroni on mac-studio-1 runs in failsafe mode" in report.problems[0].message


def test_patroni_that_has_not_reached_etcd_for_long_warns():
    import datetime as dt

    now = dt.datetime.fromisoformat(CHECKED_AT).timestamp()
    own, cluster = fx.healthy()["patroni:mac-studio-2"].value
    fresh = with_value(fx.healthy(), "patroni:mac-studio-2", (dataclasses.replace(own, dcs_last_seen=now - 2), cluster))
    assert run(fresh, checked_at=CHECKED_AT).status == Status.OK
    stale = with_value(fx.healthy(), "patroni:mac-studio-2", (dataclasses.replace(own, dcs_last_seen=now - 45), cluster))
    report = run(stale, checked_at=CHECKED_AT)
    assert report.status == Status.WARNING
    assert report.problems[0].message == "Patroni on mac-studio-2 last reached etcd 45 s ago (its leader key lives there)"


def test_json_and_metrics_carry_the_quorum():
    import io

    from prontuario_cli.cli.output import render

    report = run(frozen(fx.healthy(), "witness"))
    out = io.StringIO()
    render(report, "json", out)
    shown = json.loads(out.getvalue())
    assert shown["etcd_quorum"]["spare"] == 0 and [e["node"] for e in shown["etcd"]] == ["mac-studio-1", "mac-studio-2", "witness"]
    text = replication_textfile(report, fx.inventory())
    assert 'prontuario_etcd_members_healthy{cluster="prontuario"} 2' in text
    assert 'prontuario_etcd_quorum{cluster="prontuario"} 1' in text
    assert 'prontuario_etcd_member_up{cluster="prontuario",member="witness"} 0' in text
    assert 'prontuario_patroni_failsafe_mode{cluster="prontuario"} 1' in text
    lost = replication_textfile(run(frozen(fx.healthy(), "witness", "mac-studio-2")), fx.inventory())
    assert 'prontuario_etcd_quorum{cluster="prontuario"} 0' in lost
