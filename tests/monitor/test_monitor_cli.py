"""``prontuario monitor rules`` at the terminal: exit codes, stdout, --output, --dry-run, audit."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from prontuario_cli.errors import ExitCode
from tests.helpers import run, run_process
from tests.monitor.promtool_harness import EXAMPLE_INVENTORY, check_rules, groups_of_manifest, promtool

INV = str(EXAMPLE_INVENTORY)


def audit_entries(state):
    path = state / "audit.jsonl"
    return [e for e in map(json.loads, path.read_text().splitlines()) if "outcome" in e] if path.exists() else []  # outcomes, not intents


def lowered_inventory(tmp_path):
    path = tmp_path / "lowered.yaml"
    path.write_text(EXAMPLE_INVENTORY.read_text().replace("alert_s: 10,", "alert_s: 5,"))
    return str(path)


def test_yaml_on_stdout_is_accepted_by_promtool(tmp_path, isolated_state):
    result = run("-i", INV, "monitor", "rules")
    assert result.code == 0, result.err
    path = tmp_path / "rules.yaml"
    path.write_text(result.out)
    checked = promtool("check", "rules", str(path), cwd=tmp_path)
    assert checked.code == 0, checked.out
    assert audit_entries(isolated_state) == []  # printing is not a state change


def test_prometheusrule_on_stdout(tmp_path):
    result = run("-i", INV, "monitor", "rules", "--kind", "prometheusrule", "--namespace", "monitoring")
    assert result.code == 0, result.err
    manifest = yaml.safe_load(result.out)
    assert manifest["kind"] == "PrometheusRule" and manifest["metadata"]["namespace"] == "monitoring"
    assert check_rules(groups_of_manifest(manifest), tmp_path).code == 0


def test_json_parses_and_equals_the_yaml():
    as_json = run("-i", INV, "monitor", "rules", "--json")
    as_yaml = run("-i", INV, "monitor", "rules")
    assert as_json.code == 0 and as_yaml.code == 0
    assert json.loads(as_json.out) == yaml.safe_load(as_yaml.out)
    global_json = run("-i", INV, "--json", "monitor", "rules", "--kind", "prometheusrule")
    assert global_json.code == 0 and global_json.json()["kind"] == "PrometheusRule"


def test_json_follows_the_inventory_threshold(tmp_path):
    result = run("-i", lowered_inventory(tmp_path), "monitor", "rules", "--json")
    assert result.code == 0
    exprs = [r["expr"] for r in result.json()["groups"][0]["rules"]]
    assert "postgresql_replication_lag_seconds > 5" in exprs


def test_table_summary():
    result = run("-i", INV, "monitor", "rules", "--format", "table")
    assert result.code == 0
    for alert in ("MacStudioDown", "DatabaseReplicationLag", "GCPFallbackActivated", "HAClusterDegraded"):
        assert alert in result.out


def test_usage_errors_exit_64():
    assert run("-i", INV, "monitor", "rules", "--namespace", "monitoring").code == ExitCode.USAGE
    assert run("-i", INV, "monitor", "rules", "--kind", "alertmanager").code == ExitCode.USAGE
    assert run("-i", INV, "monitor", "rules", "--format", "nagios").code == ExitCode.USAGE
    assert run("-i", INV, "monitor", "rules", "--dry-run").code == ExitCode.USAGE


def test_missing_inventory_exits_78(tmp_path):
    assert run("-i", str(tmp_path / "nope.yaml"), "monitor", "rules").code == ExitCode.CONFIG


def test_output_writes_the_file_and_audits_it(tmp_path, isolated_state):
    target = tmp_path / "prontuario.rules.yaml"
    result = run("-i", INV, "monitor", "rules", "--output", str(target))
    assert result.code == 0, result.err
    assert result.json()["action"] == "create" and result.json()["path"] == str(target)
    assert target.read_text() == run("-i", INV, "monitor", "rules").out
    assert promtool("check", "rules", str(target), cwd=tmp_path).code == 0
    assert not list(tmp_path.glob(".*.tmp"))
    [entry] = audit_entries(isolated_state)
    assert entry["command"] == "monitor rules" and entry["outcome"] == "ok"
    assert entry["details"]["action"] == "create"

    again = run("-i", INV, "monitor", "rules", "--output", str(target))
    assert again.code == 0 and again.json()["action"] == "unchanged"


def test_dry_run_changes_nothing(tmp_path, isolated_state):
    target = tmp_path / "prontuario.rules.yaml"
    result = run("-i", INV, "monitor", "rules", "--output", str(target), "--dry-run")
    assert result.code == 0, result.err
    assert result.json()["action"] == "would create"
    assert not target.exists()
    [entry] = audit_entries(isolated_state)
    assert entry["outcome"] == "dry-run"


def test_replacing_a_different_file_asks(tmp_path, isolated_state):
    target = tmp_path / "prontuario.rules.yaml"
    target.write_text("groups: []\n")

    unattended = run("-i", INV, "monitor", "rules", "-o", str(target))
    assert unattended.code == ExitCode.USAGE and "--yes" in unattended.err
    declined = run("-i", INV, "monitor", "rules", "-o", str(target), tty=True, stdin="n\n")
    assert declined.code == ExitCode.ABORTED
    assert target.read_text() == "groups: []\n"

    accepted = run("-i", INV, "monitor", "rules", "-o", str(target), tty=True, stdin="y\n")
    assert accepted.code == 0, accepted.err
    assert "prontuario.availability" in target.read_text()

    target.write_text("groups: []\n")
    forced = run("-i", lowered_inventory(tmp_path), "monitor", "rules", "-o", str(target), "--yes")
    assert forced.code == 0 and "postgresql_replication_lag_seconds > 5" in target.read_text()
    outcomes = [e["outcome"] for e in audit_entries(isolated_state)]
    assert len(outcomes) == 4 and "ok" not in outcomes[:2] and outcomes[2:] == ["ok", "ok"]


def test_output_into_a_missing_directory_exits_64(tmp_path):
    result = run("-i", INV, "monitor", "rules", "-o", str(tmp_path / "no" / "such" / "rules.yaml"))
    assert result.code == ExitCode.USAGE and "does not exist" in result.err


def test_help_has_examples():
    assert "Example:" in run("monitor", "--help").out
    assert "Example:" in run("monitor", "rules", "--help").out


def test_the_installed_command_renders_a_manifest(tmp_path):
    result = run_process("-i", INV, "monitor", "rules", "--kind", "prometheusrule")
    assert result.code == 0, result.err
    assert check_rules(groups_of_manifest(yaml.safe_load(result.out)), tmp_path).code == 0


def test_importing_the_cli_does_not_load_yaml_or_the_rules():
    code = "import sys, prontuario_cli.cli.monitor; print(sorted(m for m in ('yaml', 'prontuario_cli.monitor.rules') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
