"""Hostile inventories: whatever the file holds, `inventory check` ends in 0, 1 or 78 with
``file:line``, never in 70 (a bug), and nothing it accepts breaks a command later."""

from __future__ import annotations

import re

import pytest

from prontuario_cli.errors import ExitCode
from tests.helpers import EXAMPLE, run, run_process

GOOD = EXAMPLE.read_text()


def write(tmp_path, text: str | bytes, name: str = "cluster.yaml") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def problems_of(tmp_path, text: str | bytes) -> list[str]:
    path = write(tmp_path, text)
    result = run("-i", path, "inventory", "check", "--json")
    assert result.code == ExitCode.CONFIG, (result.code, result.out, result.err)
    problems = result.json()["problems"]
    assert problems and all(p.startswith(f"{path}:") for p in problems), problems
    return problems


def one_problem(tmp_path, text: str | bytes, *expected: str) -> str:
    problems = problems_of(tmp_path, text)
    found = [p for p in problems if all(e in p for e in expected)]
    assert found, problems
    assert re.match(r"^.+:\d+: ", found[0]), found[0]
    return found[0]


def replace(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


# --------------------------------------------------------------------------- 1. no more exit 70


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (replace("version: 1", 'version: !!int "abc"'), ["version: 'abc' is not an integer (it is tagged !!int)"]),
        (replace("  interval_s: 5\n", '  interval_s: !!float "fast"\n'), ["health_checks.interval_s: 'fast' is not a number"]),
        (GOOD + "? [a]\n: 1\n", ["(top level): a key must be a name, not a list"]),
        ("x: " + "[" * 1000 + "]" * 1000 + "\n", ["malformed YAML"]),
        ("x: " + "[" * 100 + "]" * 100 + "\n", [":1: nested deeper than 64 levels"]),
    ],
    ids=["tagged-int", "tagged-float", "complex-key", "nesting-1000", "nesting-100"],
)
def test_what_ended_in_exit_70_is_a_located_config_error(tmp_path, text, expected):
    one_problem(tmp_path, text, *expected)


def test_an_alias_nested_in_itself_is_refused(tmp_path):
    text = "a: &a [1]\n" + "".join(f"b{i}: &a [*a]\n" for i in range(70))
    one_problem(tmp_path, text, "nested deeper than 64 levels (counting what aliases repeat)")


def test_billion_laughs_is_refused_before_it_expands(tmp_path):
    """10^10 values if expanded: refused by counting what the aliases repeat, not by building it."""
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10))
    one_problem(tmp_path, text, "aliases expand the document past 2,000,000 values")


def test_an_alias_into_its_own_list_is_malformed(tmp_path):
    one_problem(tmp_path, GOOD + "loop: &l [*l]\n", "alias *l names no anchor defined before it")


def test_a_second_document_is_refused(tmp_path):
    one_problem(tmp_path, GOOD + "---\nversion: 1\n", "a second document")


# --------------------------------------------------------------------------- 2. values that broke later


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  interval_s: 5\n", "  interval_s: .inf\n", "health_checks.interval_s: .inf is not a finite number: write a number of seconds"),
        ("  timeout_s: 2\n", "  timeout_s: .nan\n", "health_checks.timeout_s: .nan is not a finite number"),
        ("  timeout_s: 2\n", "  timeout_s: 100000000000\n", "health_checks.timeout_s: 1e+11 s is more than a day (at most 86400 s)"),
        ("  timeout_s: 2\n", "  timeout_s: 1.0e+11\n", "health_checks.timeout_s: 1e+11 s is more than a day"),
        ("sync_target_ms: 100", "sync_target_ms: .nan", "targets.replication_lag.sync_target_ms: .nan is not a finite number: write a number of milliseconds"),
        ("sync_target_ms: 100", "sync_target_ms: -.inf", "sync_target_ms: -.inf is not a finite number"),
        ("alert_s: 10", "alert_s: 0", "targets.replication_lag.alert_s: must be greater than 0"),
    ],
)
def test_numbers_are_finite_and_in_range(tmp_path, old, new, expected):
    one_problem(tmp_path, replace(old, new), expected)


def test_a_lone_surrogate_in_a_name_is_refused(tmp_path):
    # libyaml refuses the escape itself; either way it is a config error with a line.
    text = replace("name: witness", 'name: "wit\\udc80ness"')
    path = write(tmp_path, text)
    show = run_process("-i", path, "inventory", "show")
    assert show.code == ExitCode.CONFIG and "Traceback" not in show.err
    assert re.search(rf"{re.escape(path)}:\d+: ", show.err)


def test_a_lone_surrogate_handed_in_as_text_is_named():
    from prontuario_cli.errors import ConfigError
    from prontuario_cli.inventory import parse_inventory

    with pytest.raises(ConfigError) as caught:
        parse_inventory(GOOD.replace("name: witness", "name: wit\udc80ness"), "c.yaml")
    assert re.match(r"c\.yaml:\d+: ", caught.value.one_line())


# --------------------------------------------------------------------------- 3. bounded messages


def test_an_aliased_huge_string_makes_a_short_report(tmp_path):
    text = "a: &a " + "x" * 100_000 + "\nnodes: [" + ", ".join(["*a"] * 2000) + "]\n"
    path = write(tmp_path, text)
    result = run("-i", path, "inventory", "check", "--json")
    assert result.code == ExitCode.CONFIG
    assert len(result.out) < 100_000
    problems = result.json()["problems"]
    assert len(problems) == 51 and problems[-1] == "… and 1951 more"  # 2000 nodes, and the key a
    assert "… (100,000 characters)" in problems[0]
    nagios = run("-i", path, "inventory", "check", "--format", "nagios")
    assert "2001 problem(s)" in nagios.out


def test_a_huge_unknown_key_is_cut(tmp_path):
    problem = one_problem(tmp_path, GOOD + "? " + "k" * 50_000 + "\n: 1\n", "unknown key")
    assert len(problem) < 400 and "…" in problem


# --------------------------------------------------------------------------- 4. accepted without a word


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wit\\x1b[31mness", "character 4 is U+001B, a control character"),
        ("wit\\u202eness", "character 4 is U+202E (RIGHT-TO-LEFT OVERRIDE), an invisible formatting character"),
        ("wit\\u200bness", "character 4 is U+200B (ZERO WIDTH SPACE)"),
        ("wit\\u2066ness", "U+2066 (LEFT-TO-RIGHT ISOLATE)"),
        ("wit\\ue000ness", "character 4 of the node name is U+E000, not a printable character: names must be printable"),
    ],
)
def test_node_names_must_be_printable(tmp_path, name, expected):
    one_problem(tmp_path, replace("name: witness", f'name: "{name}"'), "nodes[2].name", expected)


def test_escape_sequences_never_reach_the_terminal(tmp_path):
    text = replace("name: witness", 'name: "\\x1b]0;owned\\x07"') + '"\\x1b[2J": 1\n'
    result = run("-i", write(tmp_path, text), "inventory", "check")
    assert result.code == ExitCode.CONFIG
    assert "\x1b" not in result.out + result.err and "\\x1b" in result.out


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ('"not an address; rm -rf /"', "is not an IPv4 or IPv6 address or a host name (RFC 1123"),
        ("https://10.40.0.20/", "it is a URL; give only the host"),
        ("10.40.0.20:22", "give the host only ('10.40.0.20'); the ports go under ports:"),
        ('"[::1]"', "write an IPv6 address without brackets"),
        ("999.40.0.20", "'999.40.0.20' is not a valid IPv4 address"),
        ("-witness", "is not an IPv4 or IPv6 address or a host name"),
        ('"wit ness"', "is not an IPv4 or IPv6 address or a host name"),
    ],
)
def test_an_address_must_be_an_address(tmp_path, address, expected):
    one_problem(tmp_path, replace("address: 10.40.0.20", f"address: {address}"), "nodes[2].address", expected)


@pytest.mark.parametrize("address", ["fd00::20", "witness.hospital.lan", "witness", "witness.lan.", "127.0.0.1"])
def test_good_addresses_pass(tmp_path, address):
    result = run("-i", write(tmp_path, replace("address: 10.40.0.20", f"address: {address}")), "inventory", "check")
    assert result.code == ExitCode.OK, result.out


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("postgresql: 5432", "postgresql: 05432", "nodes[0].ports.postgresql: YAML 1.1 reads 05432 as 2842 (an octal number): write 5432, or quote it"),
        ("  interval_s: 5\n", "  interval_s: 11:30\n", "health_checks.interval_s: YAML 1.1 reads 11:30 as 690 (base 60, like a clock)"),
        ("redis: 6379", "redis: 0x18EB", "YAML 1.1 reads 0x18EB as 6379 (a hexadecimal number): write 6379"),
        ("max_delete: 1000", "max_delete: 1_000", "docs.max_delete: YAML 1.1 reads 1_000 as 1000"),
        ("name: witness", "name: no", "nodes[2].name: expected a string, got bool 'no': YAML reads no as true or false; write it in quotes"),
        ("name: witness", "name: 11:30", "YAML reads 11:30 as an integer; write it in quotes"),
    ],
)
def test_yaml_1_1_surprises_are_refused_with_what_to_write(tmp_path, old, new, expected):
    one_problem(tmp_path, replace(old, new), expected)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("port: 22,", "port: 22, connect_timeout_s: -1,", "nodes[0].ssh.connect_timeout_s: must be greater than 0"),
        ("port: 22,", "port: 22, connect_timeout_s: .nan,", "nodes[0].ssh.connect_timeout_s: .nan is not a finite number"),
        ("alert_bytes: 16777216", "alert_bytes: -1", "targets.replication_lag.alert_bytes: must not be negative"),
        ("alert_bytes: 16777216", "alert_bytes: 99999999999999999999", "alert_bytes: 99999999999999999999 is more than the most allowed"),
        ("  rise: 2\n", "  rise: 2\n  fastinter_s: -1\n", "health_checks.fastinter_s: must be greater than 0"),
        ("  rise: 2\n", "  rise: 2\n  downinter_s: .nan\n", "health_checks.downinter_s: .nan is not a finite number"),
        ("  rise: 2\n", "  rise: 0\n", "health_checks.rise: must be at least 1"),
        ("port: 22,", "port: 0,", "nodes[0].ssh.port: port 0 is out of range 1-65535"),
        ("{rto_s: 30, rpo_s: 0}", "{rto_s: 30, rpo_s: -1}", "targets.primary_lost.rpo_s: must not be negative"),
        ("max_delete: 1000", "max_delete: -1", "docs.max_delete: must not be negative"),
        ("credentials_file:", "data: {host: 10.0.0.5, port: -5432}\n  credentials_file:", "cloud.data.port: port -5432 is out of range 1-65535"),
        ("credentials_file:", "data: {host: 10.0.0.5, port: .nan}\n  credentials_file:", "cloud.data.port: expected an integer, got float '.nan'"),
        ("credentials_file:", "data: {host: 'db; drop', port: 5432}\n  credentials_file:", "cloud.data.host: 'db; drop' is not an IPv4"),
        ("credentials_file:", "api_timeout_s: 0\n  credentials_file:", "cloud.api_timeout_s: must be greater than 0"),
    ],
)
def test_negative_and_nan_numbers_are_refused(tmp_path, old, new, expected):
    one_problem(tmp_path, replace(old, new), expected)


def test_every_number_in_the_schema_has_a_range():
    """A new numeric field must say its sane range in inventory.number_range."""
    import dataclasses
    import typing

    from prontuario_cli.inventory import Inventory, number_range

    def walk(tp, keypath):
        for f in dataclasses.fields(tp):
            if not f.metadata.get("schema", True):
                continue
            hint = typing.get_type_hints(tp)[f.name]
            for arg in typing.get_args(hint) or (hint,):
                arg = typing.get_args(arg)[0] if typing.get_origin(arg) is tuple else arg
                sub = f"{keypath}.{f.name}" if keypath else f.name
                if dataclasses.is_dataclass(arg):
                    yield from walk(arg, sub)
                elif arg in (int, float):
                    yield sub

    missing = [k for k in walk(Inventory, "") if k != "version" and number_range(k) is None]
    assert not missing


def test_the_bad_character_table_follows_unicodedata():
    import sys
    import unicodedata

    from prontuario_cli.schema import _BAD_CHARACTERS

    wrong = []
    for cp in range(sys.maxunicode + 1):
        c = chr(cp)
        bad = unicodedata.category(c) in ("Cc", "Cf", "Cs") and c not in "\t\n\r"
        if bad != bool(_BAD_CHARACTERS.match(c)) and unicodedata.category(c) != "Cn":
            wrong.append(f"U+{cp:04X}")
    assert not wrong


# --------------------------------------------------------------------------- 5. messages


def test_non_utf8_names_line_and_column(tmp_path):
    text = replace("  fall: 3", "  fall: 3 # caf\xe9").encode("latin-1")
    path = write(tmp_path, text)
    line = GOOD.splitlines().index("  fall: 3") + 1
    result = run("-i", path, "inventory", "check", "--json")
    assert result.code == ExitCode.CONFIG
    assert result.json()["problems"] == [f"{path}:{line}: the inventory is not UTF-8: byte 0xE9 at column 16 (invalid continuation byte)"]


def test_a_nul_byte_names_line_and_column(tmp_path):
    one_problem(tmp_path, b"version: 1\nnodes: [\x00]\n", ":2: malformed YAML: character U+0000 at column 9")


def test_a_directory_is_said_to_be_one(tmp_path):
    result = run("-i", str(tmp_path), "inventory", "check")
    assert result.code == ExitCode.CONFIG
    assert f"the inventory {tmp_path} is a directory, not a file" in result.err


def test_init_into_a_directory_is_a_usage_error(tmp_path):
    result = run("inventory", "init", str(tmp_path), "--force", "--yes")
    assert result.code == ExitCode.USAGE
    assert f"{tmp_path} is a directory" in result.err and str(tmp_path / "cluster.yaml") in result.err


def test_read_document_refuses_a_directory_and_a_huge_file(tmp_path, monkeypatch):
    from prontuario_cli import schema
    from prontuario_cli.errors import ConfigError

    with pytest.raises(ConfigError, match="is a directory"):
        schema.read_document(tmp_path, "manifest")
    monkeypatch.setattr(schema, "MAX_BYTES", 10)
    with pytest.raises(ConfigError, match="is larger than"):
        schema.read_document(write(tmp_path, GOOD), "inventory")


# --------------------------------------------------------------------------- 6. many nodes


def _many_nodes(count: int) -> str:
    head, rest = GOOD.split("nodes:\n", 1)
    nodes, tail = rest.split("haproxy:", 1)
    lines = [head, "nodes:\n", nodes]
    for i in range(count):
        lines.append(f"  - {{name: n{i}, role: witness, address: 10.50.{i // 256}.{i % 256}, ports: {{etcd_client: 2379, sentinel: 26379}}}}\n")
    return "".join(lines) + "haproxy:" + tail


def test_thousands_of_nodes_are_checked(tmp_path):
    """Correctness at size (the time it takes is benchmarks/inventory's business)."""
    path = write(tmp_path, _many_nodes(2_000))
    result = run("-i", path, "inventory", "check", "--json")
    assert result.code == ExitCode.OK, result.out[:2000]
    assert result.json()["nodes"] == 2_003


# --------------------------------------------------------------------------- 7. the other readers


def test_the_node_actions_playbook_is_read_the_hardened_way(tmp_path):
    from prontuario_cli.cluster.nodes import load_playbook
    from prontuario_cli.errors import ConfigError

    for text, expected in [
        ("- a\n- b\n", "the playbook is incomplete"),
        ("macos: [1, 2]\n", "the playbook is incomplete"),
        ("macos: !!int abc\n", "playbook holds a value that cannot be read"),
        ("? [a]\n: 1\n", "playbook holds a value that cannot be read"),
        ("x: " + "[" * 100 + "]" * 100, "nested deeper than 64 levels"),
    ]:
        path = tmp_path / "actions.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as caught:
            load_playbook(path)
        assert expected in caught.value.one_line() and str(path) in caught.value.one_line()


def test_a_manifest_gets_the_same_hardening(tmp_path):
    from prontuario_cli.errors import ConfigError
    from prontuario_cli.models.manifest import parse_manifest

    text = (
        "format: 1\nname: m\nrole: llm\nruntime: mlx-lm\nsource: {origin: here}\n"
        "files:\n  - {path: a.bin, size: 05, sha256: " + "0" * 64 + "}\n"
        "  - {path: \"b\\u202e.bin\", size: 1, sha256: " + "1" * 64 + "}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_manifest(text, "m.yaml")
    text = caught.value.one_line()
    assert "m.yaml:7: files[0].size: YAML 1.1 reads 05 as 5 (an octal number)" in text
    assert "m.yaml:8: files[1].path: character 2 is U+202E" in text
