"""Bad inventories: every problem named by file, line and key, all at once, never a traceback."""

from __future__ import annotations

import re

import pytest

from prontuario_cli.errors import ExitCode
from tests.helpers import EXAMPLE, run

GOOD = EXAMPLE.read_text()


def write(tmp_path, text: str, name: str = "cluster.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def check(path: str):
    return run("-i", path, "inventory", "check", "--json")


def test_example_inventory_is_valid():
    result = check(str(EXAMPLE))
    assert result.code == ExitCode.OK, result.err
    data = result.json()
    assert data["valid"] is True and data["nodes"] == 3 and data["witness"] is True


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, GOOD.replace("  fall: 3", "  fall: [3"))
    result = run("-i", path, "inventory", "show")
    assert result.code == ExitCode.CONFIG
    assert "Traceback" not in result.err
    assert re.search(rf"{re.escape(path)}:\d+: malformed YAML", result.err)


def test_unknown_key_suggests_the_right_one(tmp_path):
    path = write(tmp_path, GOOD.replace("  fall: 3", "  fal: 3"))
    result = check(path)
    assert result.code == ExitCode.CONFIG
    line = GOOD.splitlines().index("  fall: 3") + 1
    assert f"{path}:{line}: health_checks.fal: unknown key (did you mean 'fall'?)" in result.json()["problems"]


def test_wrong_type_is_named(tmp_path):
    path = write(tmp_path, GOOD.replace("  interval_s: 5", '  interval_s: "five"'))
    problems = check(path).json()["problems"]
    assert any("health_checks.interval_s: expected a number, got str 'five'" in p for p in problems)


def test_string_port_is_not_silently_converted(tmp_path):
    path = write(tmp_path, GOOD.replace("      redis: 6379", '      redis: "6379"', 1))
    problems = check(path).json()["problems"]
    assert any("nodes[0].ports.redis: expected an integer" in p for p in problems)


def test_duplicate_node_names(tmp_path):
    path = write(tmp_path, GOOD.replace("name: mac-studio-2", "name: mac-studio-1"))
    problems = check(path).json()["problems"]
    assert any("nodes[1].name: duplicate node name 'mac-studio-1'" in p for p in problems)


def test_two_primaries(tmp_path):
    path = write(tmp_path, GOOD.replace("role: secondary", "role: primary"))
    result = check(path)
    assert result.code == ExitCode.CONFIG
    assert any("two primaries (mac-studio-1, mac-studio-2)" in p for p in result.json()["problems"])


def test_port_clash_on_the_same_address(tmp_path):
    path = write(tmp_path, GOOD.replace("10.40.0.12", "10.40.0.11"))
    problems = check(path).json()["problems"]
    assert any("nodes[1].ports.postgresql: port clash: 10.40.0.11:5432 is also nodes[0].ports.postgresql" in p for p in problems)


def test_port_clash_within_one_node(tmp_path):
    path = write(tmp_path, GOOD.replace("      sentinel: 26379", "      sentinel: 6379", 1))
    problems = check(path).json()["problems"]
    assert any("nodes[0].ports.sentinel: port clash: 10.40.0.11:6379 is also nodes[0].ports.redis" in p for p in problems)


def test_invalid_role_lists_the_choices(tmp_path):
    path = write(tmp_path, GOOD.replace("role: witness", "role: arbiter"))
    problems = check(path).json()["problems"]
    assert any("nodes[2].role: 'arbiter' is not one of: primary, secondary, witness" in p for p in problems)


def test_missing_required_key(tmp_path):
    path = write(tmp_path, GOOD.replace("    address: 10.40.0.20\n", ""))
    problems = check(path).json()["problems"]
    assert any("nodes[2].address: required key is missing" in p for p in problems)


def test_all_problems_are_listed_at_once(tmp_path):
    text = GOOD.replace("  fall: 3", "  fal: 3").replace("role: secondary", "role: primary").replace("  timeout_s: 2", "  timeout_s: 9")
    path = write(tmp_path, text)
    result = run("-i", path, "inventory", "check")
    assert result.code == ExitCode.CONFIG
    assert "health_checks.fal: unknown key" in result.out
    assert "two primaries" in result.out
    # Structure problems and cross-key problems both appear, in file order.
    problems = check(path).json()["problems"]
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines) and len(problems) >= 2


def test_secret_value_in_inventory_is_refused(tmp_path):
    path = write(tmp_path, GOOD.replace("postgres_password: {env: PRONTUARIO_PG_PASSWORD}", "postgres_password: hunter2"))
    problems = check(path).json()["problems"]
    assert any("secrets.postgres_password: secrets are never written in cluster.yaml" in p for p in problems)


def test_no_witness_is_a_warning_not_an_error(tmp_path):
    text = GOOD.split("  - name: witness")[0] + "health_checks:" + GOOD.split("health_checks:")[1]
    path = write(tmp_path, text)
    result = check(path)
    assert result.code == ExitCode.WARNING
    data = result.json()
    assert data["valid"] is True
    assert "no witness node" in data["warnings"][0]
    nagios = run("-i", path, "inventory", "check", "--format", "nagios")
    assert nagios.out.startswith("PRONTUARIO WARNING - ")


def test_drill_target_must_not_be_the_live_replica(tmp_path):
    path = write(tmp_path, GOOD.replace("drill_instance: prontuario-pg-drill", "drill_instance: prontuario-pg-replica"))
    problems = check(path).json()["problems"]
    assert any("cloud.drill_instance: the drill target must not be the live replica" in p for p in problems)


def test_missing_inventory_is_one_line(tmp_path):
    result = run("-i", str(tmp_path / "nope.yaml"), "inventory", "show")
    assert result.code == ExitCode.CONFIG
    assert result.err.count("\n") == 1 and "inventory not found" in result.err


def test_inventory_from_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("PRONTUARIO_INVENTORY", str(EXAMPLE))
    result = run("inventory", "show", "--json")
    assert result.code == 0
    assert [n["name"] for n in result.json()["nodes"]] == ["mac-studio-1", "mac-studio-2", "witness"]


def test_inventory_is_frozen():
    from prontuario_cli.inventory import load_inventory

    inventory = load_inventory(EXAMPLE)
    with pytest.raises(Exception):
        inventory.nodes[0].name = "x"  # type: ignore[misc]


def test_show_unknown_node_names_the_known_ones():
    result = run("-i", str(EXAMPLE), "inventory", "show", "mac-studio-9")
    assert result.code == ExitCode.CONFIG
    assert "no node named 'mac-studio-9'" in result.err and "mac-studio-1, mac-studio-2, witness" in result.err


def test_empty_file(tmp_path):
    result = check(write(tmp_path, ""))
    assert result.code == ExitCode.CONFIG
    assert "the inventory is empty" in result.out  # check lists its problems as data
