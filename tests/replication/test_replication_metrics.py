"""The node_exporter textfile: right names, HELP/TYPE, accepted by promtool, written atomically."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from prontuario_cli.metrics import Family, Sample, render, write_textfile
from prontuario_cli.replication.evaluate import evaluate
from prontuario_cli.replication.metrics import replication_textfile
from prontuario_cli.cluster.fallback import FALLBACK_FILE as GCP_FALLBACK_FILE
from prontuario_cli.cluster.fallback import fallback_active as gcp_fallback_active
from tests.replication import replication_fixtures as fx


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed (apt-get install prometheus)", pytrace=False)
    return found


def textfile(**kw) -> str:
    report = evaluate(fx.inventory(), fx.healthy(), checked_at="2026-11-25T03:00:00+00:00", **kw)
    return replication_textfile(report, fx.inventory())


def test_promtool_accepts_the_textfile():
    result = subprocess.run([promtool(), "check", "metrics"], input=textfile(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_would_catch_a_bad_name():
    bad = render([Family("checks_count", "a counter named badly", "counter", (Sample(1),))])
    result = subprocess.run([promtool(), "check", "metrics"], input=bad, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0


def test_the_metrics_the_alert_rules_use():
    text = textfile()
    assert '# TYPE postgresql_replication_lag_seconds gauge' in text
    assert 'postgresql_replication_lag_seconds{cluster="prontuario",replica="mac-studio-2",kind="member",sync_state="sync"} 0.0' in text
    assert 'postgresql_replication_lag_bytes{cluster="prontuario",replica="mac-studio-2",kind="member",sync_state="sync"} 0' in text
    assert 'redis_replication_offset_lag_bytes{master_name="prontuario",replica="mac-studio-2"} 0' in text
    assert 'up{job="mac-studio",instance="mac-studio-1"} 1' in text
    assert 'up{job="mac-studio",instance="mac-studio-2"} 1' in text
    assert 'up{job="witness",instance="witness"} 1' in text
    assert "\ngcp_fallback_active 0\n" in text
    assert "prontuario_replication_check_timestamp_seconds 1795575600.0" in text
    for line in text.splitlines():
        if not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            assert f"# HELP {name} " in text and f"# TYPE {name} " in text


def test_a_node_down_is_up_zero():
    outcomes = fx.healthy()
    for name in [name for name in outcomes if name.endswith(":mac-studio-2")]:  # every service of the node
        outcomes[name] = fx.refused(name)
    report = evaluate(fx.inventory(), outcomes)
    assert 'up{job="mac-studio",instance="mac-studio-2"} 0' in replication_textfile(report, fx.inventory())


def test_gcp_fallback_active_comes_from_the_state_file(tmp_path):
    assert gcp_fallback_active(tmp_path) is False
    (tmp_path / GCP_FALLBACK_FILE).write_text(json.dumps({"active": True, "since": "2026-11-25T03:00:00Z"}))
    assert gcp_fallback_active(tmp_path) is True
    assert "\ngcp_fallback_active 1\n" in textfile(gcp_active=True)
    (tmp_path / GCP_FALLBACK_FILE).write_text("{not json")
    assert gcp_fallback_active(tmp_path) is False


def test_label_values_are_escaped():
    text = render([Family("x_info", "h", samples=(Sample(1, {"a": 'quote" back\\ line\nend'}),))])
    assert 'x_info{a="quote\\" back\\\\ line\\nend"} 1' in text


def test_write_textfile_replaces_atomically(tmp_path):
    target = tmp_path / "textfile" / "prontuario.prom"
    write_textfile(target, "old 1\n")
    inode = os.stat(target).st_ino
    write_textfile(target, "new 1\n")
    assert target.read_text() == "new 1\n"
    assert os.stat(target).st_ino != inode  # a new file renamed over the old one
    assert os.stat(target).st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["prontuario.prom"]  # no temp file left


def test_write_textfile_failure_is_an_operation_failed(tmp_path):
    from prontuario_cli.errors import OperationFailed

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OperationFailed):
        write_textfile(blocker / "sub" / "prontuario.prom", "x 1\n")
