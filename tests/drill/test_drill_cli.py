"""Drill commands without a cluster: plans, confirmation, bad options."""

from __future__ import annotations

from prontuario_cli.errors import ExitCode
from tests.helpers import EXAMPLE, run


def test_dry_run_prints_the_plan_and_is_audited():
    result = run("-i", str(EXAMPLE), "drill", "failover", "--mode", "hang", "--dry-run", "--json")
    assert result.code == 0, result.err
    plan = result.json()["details"]["plan"]
    assert any("SIGSTOP" in step for step in plan) and any("rollback" in step for step in plan)
    entry = run("audit", "show", "--json").json()["entries"][-1]
    assert entry["command"] == "drill failover" and entry["outcome"] == "dry-run" and entry["args"]["mode"] == "hang"


def test_health_dry_run():
    result = run("-i", str(EXAMPLE), "drill", "health", "--dry-run", "--json")
    assert result.code == 0 and any("check-port" in step or "check" in step for step in result.json()["details"]["plan"])


def test_a_drill_from_a_script_needs_yes():
    result = run("-i", str(EXAMPLE), "drill", "failover", "--mode", "kill")
    assert result.code == ExitCode.USAGE and "--yes" in result.err


def test_unknown_mode_and_service_are_usage_errors():
    bad_mode = run("-i", str(EXAMPLE), "drill", "failover", "--mode", "explode", "--dry-run")
    assert bad_mode.code == ExitCode.USAGE and "switchover, kill, stop, hang" in bad_mode.err
    bad_service = run("-i", str(EXAMPLE), "drill", "failover", "--service", "mysql", "--dry-run")
    assert bad_service.code == ExitCode.USAGE
    redis_switchover = run("-i", str(EXAMPLE), "drill", "failover", "--service", "redis", "--mode", "switchover", "--dry-run")
    assert redis_switchover.code == ExitCode.USAGE and "SENTINEL FAILOVER" in redis_switchover.err


def test_cloud_drill_refuses_without_a_drill_instance(tmp_path):
    text = EXAMPLE.read_text().replace("  drill_instance: prontuario-pg-drill\n", "")
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    result = run("-i", str(path), "drill", "cloud", "--dry-run")
    assert result.code == ExitCode.REFUSED and "cloud.drill_instance" in result.err


def test_cloud_drill_plan_never_names_the_live_replica():
    result = run("-i", str(EXAMPLE), "drill", "cloud", "--dry-run", "--json")
    assert result.code == 0
    plan = " ".join(result.json()["details"]["plan"])
    assert "prontuario-pg-drill" in plan and "prontuario-pg-replica" not in plan
