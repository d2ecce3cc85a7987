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


def test_a_failover_drill_plans_to_prove_the_cloud_replica_follows_unless_skipped():
    """With a cloud fallback in the inventory, the plan waits for the standby's copy of the
    cloud replica's slot and ends on the replica following; --skip-cloud leaves both out
    and says so in the audit entry."""
    result = run("-i", str(EXAMPLE), "drill", "failover", "--mode", "kill", "--dry-run", "--json")
    assert result.code == 0, result.err
    plan = result.json()["details"]["plan"]
    assert any("holds the cloud replica's logical slot" in step for step in plan), plan
    follows = [step for step in plan if step.startswith("cloud: ")]
    assert len(follows) == 1 and "prontuario-pg-replica" in follows[0] and "60 s RPO" in follows[0], plan
    assert plan.index(follows[0]) > next(i for i, step in enumerate(plan) if step.startswith("fault: "))
    skipped = run("-i", str(EXAMPLE), "drill", "failover", "--mode", "kill", "--skip-cloud", "--dry-run", "--json")
    assert skipped.code == 0, skipped.err
    assert not [step for step in skipped.json()["details"]["plan"] if "cloud" in step]
    entry = run("audit", "show", "--json").json()["entries"][-1]
    assert entry["args"]["skip_cloud"] is True


# Each activity the health drill runs (steady state, method, rollback) -> the words of the plan
# step that announces it. A new activity without a plan step fails the test below.
HEALTH_PLAN = {
    "a Patroni leader with a streaming sync standby": "check: a Patroni leader with a streaming sync standby; Sentinel quorum",
    "start the write and read probes": "start a write probe (every 20 ms) and a read probe through HAProxy",
    "Patroni REST contracts on the leader": "REST contracts on the leader",
    "Patroni REST contracts on the sync standby": "on the sync standby",
    # example inventory: interval 5 s, timeout 2 s, fall 3, rise 2 ->
    # DOWN budget 5 + (3 - 1) x 5 + 2 + 1 = 18 s; UP budget 5 + (2 - 1) x 5 + 2 + 1 = 13 s
    "HAProxy marks the replica's read server DOWN when its check fails": "read check of the replica at a closed port; expect DOWN within 18 s",
    "HAProxy marks it UP again when the check passes": "restore the check port; expect UP within 13 s",
    "Sentinels agree on the master and have quorum": "check the Sentinels agree and have quorum",
    "stop the probes: writes and reads flowed throughout": "stop the probes: no write may have failed",
    "restore the replica's read check port; stop the probes": "rollback (always): restore the check port if it was changed",
}


def test_health_dry_run(isolated_state):
    from prontuario_cli.drill.health import HealthDrill
    from prontuario_cli.inventory import load_inventory

    result = run("-i", str(EXAMPLE), "drill", "health", "--dry-run", "--json")
    assert result.code == 0, result.err
    plan = result.json()["details"]["plan"]

    drill = HealthDrill(load_inventory(EXAMPLE), "dry-run-test", say=lambda text: None)
    activities = [a.name for a in [*drill.steady_state(), *drill.method(), *drill.rollback()]]
    assert activities == list(HEALTH_PLAN), "the health drill's activities changed: update its plan() and this test"
    # every activity is announced, in the order it runs, and the rollback comes last
    positions = []
    for activity, words in HEALTH_PLAN.items():
        steps = [i for i, step in enumerate(plan) if words in step]
        assert steps, f"no plan step announces {activity!r}: {plan}"
        positions.append(steps[0])
    assert positions == sorted(positions), plan
    assert len(plan) == 7 and plan[-1].startswith("rollback (always)")
    assert "Patroni's REST contracts on the leader and on the sync standby" in plan[2]

    entry = run("audit", "show", "--json").json()["entries"][-1]
    assert entry["command"] == "drill health" and entry["outcome"] == "dry-run"
    touched = sorted(p.name for p in isolated_state.rglob("*"))
    assert touched == ["audit.jsonl", "audit.jsonl.head", "audit.jsonl.key"], f"a dry run wrote {touched}"


def test_a_drill_from_a_script_needs_yes():
    result = run("-i", str(EXAMPLE), "drill", "failover", "--mode", "kill")
    assert result.code == ExitCode.USAGE and "--yes" in result.err


def test_unknown_mode_and_service_are_usage_errors():
    bad_mode = run("-i", str(EXAMPLE), "drill", "failover", "--mode", "explode", "--dry-run")
    assert bad_mode.code == ExitCode.USAGE and "'switchover', 'kill', 'stop', 'hang'" in bad_mode.err
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


def test_mode_and_service_choices_are_in_the_help_and_exit_75_is_documented():
    help_text = " ".join(run("drill", "failover", "--help").out.split())
    assert "<switchover|kill|stop|hang>" in help_text and "<postgres|redis>" in help_text
    drill_help = " ".join(run("drill", "--help").out.split())
    assert "75 another drill holds the lock" in drill_help


def test_mode_and_service_tab_complete_their_choices():
    from tests.test_startup import probe

    words = "prontuario drill failover --mode "
    result, out = probe([], {"_PRONTUARIO_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "4"})
    assert out.split() == ["switchover", "kill", "stop", "hang"]
    assert result["heavy"] == []
    words = "prontuario drill failover --service r"
    _, out = probe([], {"_PRONTUARIO_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "4"})
    assert out.split() == ["redis"]
