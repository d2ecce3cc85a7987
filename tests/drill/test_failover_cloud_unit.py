"""The failover drill's cloud verdict, without a cluster: what counts as diverged."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from prontuario_cli.drill.engine import StepFailed
from prontuario_cli.drill.failover import FailoverOptions, PostgresFailover
from prontuario_cli.drill.probes import Attempt, ProbeLog
from prontuario_cli.inventory import load_inventory
from tests.helpers import EXAMPLE


def _drill(monkeypatch, on_cloud: set[int], committed: set[int], acked: range, arrives: bool = True) -> PostgresFailover:
    from prontuario_cli.gcp import follow

    drill = PostgresFailover(load_inventory(EXAMPLE), FailoverOptions(mode="kill"), "run-1", say=lambda text: None)
    log = ProbeLog("writes")
    log.attempts = [Attempt(seq, seq * 0.02, seq * 0.02 + 0.01, "acked") for seq in acked]
    log.attempts.append(Attempt(max(acked) + 1, 9.0, 9.5, "unknown"))  # in flight at the fault
    drill.writes = SimpleNamespace(log=log)
    drill.committed = committed

    def marker_arrives(inventory, instance, run_id, within_s=None):
        assert instance == "prontuario-pg-replica" and run_id == "run-1-cloud-marker" and within_s == 60
        if not arrives:
            raise follow.NotFollowing(f"{instance} did not receive a write made on the Macs within 60 s")
        return follow.Arrival(run_id, "10.0.0.2:5432", 0.4)

    monkeypatch.setattr(follow, "marker_arrives", marker_arrives)
    monkeypatch.setattr(follow, "seqs_on", lambda inventory, instance, run_id: set(on_cloud))
    return drill


def test_every_acknowledged_write_and_nothing_more_is_consistent(monkeypatch):
    # The write in flight at the fault (seq 6) committed on the new primary: the cloud may hold it.
    drill = _drill(monkeypatch, on_cloud={1, 2, 3, 4, 5, 6}, committed={1, 2, 3, 4, 5, 6}, acked=range(1, 6))
    assert drill.cloud == "prontuario-pg-replica"
    assert drill._cloud_consistent().endswith("none the new primary lacks")
    assert drill.m["cloud_missing_acked"] == 0 and drill.m["cloud_only_rows"] == 0
    missing = [t for t in drill.targets() if t.name.startswith("cloud replica: acknowledged writes missing")]
    assert missing and missing[0].value == 0 and missing[0].met


def test_an_in_flight_write_only_the_cloud_holds_is_reported_not_failed(monkeypatch):
    """PostgreSQL 15: the old primary's walsender sent a commit the sync standby never had.
    The write was never acknowledged: the drill says so loudly, and the targets still hold."""
    said = []
    drill = _drill(monkeypatch, on_cloud={1, 2, 3, 4, 5, 6}, committed={1, 2, 3, 4, 5}, acked=range(1, 6))
    drill.say = said.append
    out = drill._cloud_consistent()
    assert "1 write(s) in flight at the fault (never acknowledged; seq 6)" in out and "PostgreSQL 15" in out
    assert said and said[0].startswith("cloud: 1 write(s) in flight")
    assert drill.m["cloud_only_seqs"] == [6] and drill.m["cloud_only_rows"] == 1 and drill.m["cloud_missing_acked"] == 0
    assert next(t for t in drill.targets() if t.name.startswith("cloud replica: acknowledged")).met


def test_an_extra_row_that_was_never_in_flight_is_divergence(monkeypatch):
    """Seq 9 was never written by this drill's probe: the replica holds something else."""
    drill = _drill(monkeypatch, on_cloud={1, 2, 3, 4, 5, 9}, committed={1, 2, 3, 4, 5}, acked=range(1, 6))
    with pytest.raises(StepFailed, match="1 rows the new primary does not hold that were never in flight"):
        drill._cloud_consistent()
    assert drill.m["cloud_only_seqs"] == [9]


def test_an_acknowledged_write_missing_on_the_cloud_is_divergence(monkeypatch):
    """The replica resumed past a commit of the new timeline (it asked for a position the
    new primary reached with other WAL): a write the hospital was told is safe is not there."""
    drill = _drill(monkeypatch, on_cloud={1, 2, 4, 5}, committed={1, 2, 3, 4, 5}, acked=range(1, 6))
    with pytest.raises(StepFailed, match="1 acknowledged writes missing"):
        drill._cloud_consistent()
    assert drill.m["cloud_missing_seqs"] == [3]
    assert not next(t for t in drill.targets() if t.name.startswith("cloud replica: acknowledged")).met


def test_a_replica_that_does_not_follow_fails_the_step_with_the_reason(monkeypatch):
    drill = _drill(monkeypatch, on_cloud=set(), committed={1}, acked=range(1, 2), arrives=False)
    with pytest.raises(StepFailed, match="did not receive a write made on the Macs within 60 s"):
        drill._cloud_consistent()
    assert "cloud_rows" not in drill.m
    assert next(t for t in drill.targets() if t.name.startswith("cloud replica: acknowledged")).value is None


def test_no_cloud_in_the_inventory_or_skipped_means_no_cloud_step(tmp_path):
    import dataclasses

    inventory = load_inventory(EXAMPLE)
    skipped = PostgresFailover(inventory, FailoverOptions(mode="kill", cloud=False), "run-2", say=lambda text: None)
    without = PostgresFailover(dataclasses.replace(inventory, cloud=None), FailoverOptions(mode="kill"), "run-3", say=lambda text: None)
    for drill in (skipped, without):
        assert drill.cloud is None
        assert not [a for a in drill.steady_state() + drill.steady_state_after() if "cloud" in a.name]
        assert not [t for t in drill.targets() if t.name.startswith("cloud")]
