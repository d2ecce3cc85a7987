"""The cloud replica's lag in seconds, from the primary's WAL positions the checks saw (pure rules)."""

from __future__ import annotations

import pytest

from prontuario_cli.replication.state import SAMPLES_KEEP_S, add_wal_sample, lag_seconds, read_wal_samples, record_wal_samples


def test_the_lag_is_the_time_since_the_primary_was_first_seen_past_the_confirmed_position():
    samples = [(100.0, 1000), (110.0, 2000), (120.0, 3000), (130.0, 4000)]
    assert lag_seconds(samples, confirmed=4000, now=135.0) == 0.0  # caught up with everything seen
    assert lag_seconds(samples, confirmed=2500, now=135.0) == pytest.approx(15.0)  # missing what appeared at t=120
    assert lag_seconds(samples, confirmed=2000, now=135.0) == pytest.approx(15.0)
    assert lag_seconds(samples, confirmed=500, now=135.0) == pytest.approx(35.0)  # at least since the oldest sample
    assert lag_seconds([], confirmed=500, now=135.0) is None


def test_samples_are_bounded_kept_in_order_and_restart_on_a_new_history():
    samples: list[tuple[float, int]] = []
    for i in range(5):
        samples = add_wal_sample(samples, 100.0 + i, 1000 + i)
    assert samples == [(100.0 + i, 1000 + i) for i in range(5)]
    assert add_wal_sample(samples, 106.0, 1004) == samples, "an idle primary adds nothing"
    assert add_wal_sample(samples, 107.0, 10) == [(107.0, 10)], "a lower position is another history (a new primary)"
    assert add_wal_sample(samples, 100.0 + SAMPLES_KEEP_S + 2.5, 5000)[0][0] > 100.0 + 1, "old positions are dropped"


def test_samples_survive_a_round_trip_and_a_damaged_file_reads_as_none(tmp_path):
    record_wal_samples(tmp_path, [(1.5, 10), (2.5, 20)])
    assert read_wal_samples(tmp_path) == [(1.5, 10), (2.5, 20)]
    (tmp_path / "replication-cloud-wal.json").write_text("{not json")
    assert read_wal_samples(tmp_path) == []
