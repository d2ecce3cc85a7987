"""Fast start: --help and TAB completion import none of the heavy client libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import EXAMPLE, REPO

HEAVY = ("paramiko", "psycopg", "redis", "httpx", "mlx", "mlx_lm", "onnxruntime", "rich", "yaml")

PROBE = """
import json, os, sys
from prontuario_cli.cli.main import main
code = main(sys.argv[1:])
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(%r))
loader = "prontuario_cli.inventory" in sys.modules
print(json.dumps({"code": code, "heavy": heavy, "loader": loader}), file=sys.__stderr__)
"""


def probe(args: list[str], extra_env: dict[str, str] | None = None) -> tuple[dict, str]:
    env = dict(os.environ, **(extra_env or {}))
    proc = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,), *args], check=False, capture_output=True, text=True, env=env, cwd=str(REPO), timeout=60
    )
    return json.loads(proc.stderr.strip().splitlines()[-1]), proc.stdout


def test_help_imports_nothing_heavy():
    result, out = probe(["--help"])
    assert "Usage: prontuario" in out
    assert result == {"code": 0, "heavy": [], "loader": False}


def test_subcommand_help_imports_nothing_heavy():
    result, out = probe(["inventory", "show", "--help"])
    assert result["heavy"] == [] and "Example:" in out


def test_completion_request_imports_nothing_heavy_and_completes_commands():
    result, out = probe([], {"_PRONTUARIO_COMPLETE": "complete_bash", "COMP_WORDS": "prontuario inv", "COMP_CWORD": "1"})
    assert out.split() == ["inventory"]
    assert result["heavy"] == []


def test_node_names_complete_from_the_inventory():
    words = f"prontuario -i {EXAMPLE} inventory show mac"
    result, out = probe([], {"_PRONTUARIO_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "5"})
    assert out.split() == ["mac-studio-1", "mac-studio-2"]
    # A TAB press reads the node names without PyYAML or the inventory's validation.
    assert result["heavy"] == [] and result["loader"] is False


def test_node_names_from_environment_inventory_and_silence_on_a_broken_one(tmp_path):
    env = {"_PRONTUARIO_COMPLETE": "complete_bash", "COMP_WORDS": "prontuario inventory show w", "COMP_CWORD": "3"}
    _, out = probe([], dict(env, PRONTUARIO_INVENTORY=str(EXAMPLE)))
    assert out.split() == ["witness"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("nodes: [")
    proc_env = dict(env, PRONTUARIO_INVENTORY=str(broken))
    _, out = probe([], proc_env)
    assert out.strip() == ""


def test_node_name_scan_agrees_with_the_loader(tmp_path):
    """The quick scan reads block-style inventories as the loader does, and hands anything else to it."""
    from prontuario_cli.cli.complete import _scan_node_names
    from prontuario_cli.inventory import load_inventory

    for path in (EXAMPLE, REPO / "cluster.example.yaml", REPO / "tests" / "replication" / "fixture_cluster.yaml"):
        assert _scan_node_names(str(path)) == [n.name for n in load_inventory(path).nodes], path
    dumped = tmp_path / "dumped.yaml"  # as yaml.safe_dump writes it: items at the key's indent, keys sorted
    dumped.write_text(
        "nodes:\n- address: 127.0.0.1\n  name: a\n  role: primary\n  tags:\n  - name: not-a-node\n"
        "- name: b  # the standby\n  role: secondary\nversion: 1\n"
    )
    assert _scan_node_names(str(dumped)) == ["a", "b"]
    for odd in ("nodes: [{name: a, role: primary}]\n", "nodes:\n  - name: 'a'\n    role: primary\n", "nodes:\n  - <<: *base\n"):
        unusual = tmp_path / "unusual.yaml"
        unusual.write_text("version: 1\n" + odd)
        assert _scan_node_names(str(unusual)) is None, odd  # the loader decides


def test_flow_style_inventories_still_complete(tmp_path):
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "version: 1\n"
        "nodes:\n"
        "  - {name: mac-studio-1, role: primary, address: 127.0.0.1, ports: {postgresql: 15432}}\n"
        "  - {name: mac-studio-2, role: secondary, address: 127.0.0.1, ports: {postgresql: 15433}}\n"
        "  - {name: witness, role: witness, address: 127.0.0.1, ports: {sentinel: 15434}}\n"
    )
    words = f"prontuario -i {flow} inventory show "
    _, out = probe([], {"_PRONTUARIO_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "5"})
    assert out.split() == ["mac-studio-1", "mac-studio-2", "witness"]


def test_completion_looks_for_the_inventory_where_the_loader_does(tmp_path, monkeypatch):
    from prontuario_cli.cli.complete import _inventory_file
    from prontuario_cli.inventory import find_inventory

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home = tmp_path / "home" / ".config" / "prontuario" / "cluster.yaml"
    home.parent.mkdir(parents=True)
    home.write_text("version: 1\n")
    assert Path(_inventory_file(None)) == find_inventory(None) == home
    (tmp_path / "cluster.yaml").write_text("version: 1\n")
    assert Path(_inventory_file(None)) == find_inventory(None) == Path("cluster.yaml")
    monkeypatch.setenv("PRONTUARIO_INVENTORY", str(EXAMPLE))
    assert Path(_inventory_file(None)) == find_inventory(None) == EXAMPLE
    assert Path(_inventory_file("~/.config/prontuario/cluster.yaml")) == find_inventory("~/.config/prontuario/cluster.yaml")
