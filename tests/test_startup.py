"""Fast start: --help and TAB completion import none of the heavy client libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers import EXAMPLE, REPO

HEAVY = ("paramiko", "psycopg", "redis", "httpx", "mlx", "mlx_lm", "onnxruntime", "rich", "yaml")

PROBE = """
import json, os, sys
from prontuario_cli.cli.main import main
code = main(sys.argv[1:])
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(%r))
print(json.dumps({"code": code, "heavy": heavy}), file=sys.__stderr__)
"""


def probe(args: list[str], extra_env: dict[str, str] | None = None) -> tuple[dict, str]:
    env = dict(os.environ, **(extra_env or {}))
    proc = subprocess.run(
        [sys.executable, "-c", PROBE % (HEAVY,), *args], capture_output=True, text=True, env=env, cwd=str(REPO), timeout=60
    )
    return json.loads(proc.stderr.strip().splitlines()[-1]), proc.stdout


def test_help_imports_nothing_heavy():
    result, out = probe(["--help"])
    assert "Usage: prontuario" in out
    assert result == {"code": 0, "heavy": []}


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
    # Reading the inventory needs yaml, and nothing heavier.
    assert set(result["heavy"]) <= {"yaml"}


def test_node_names_from_environment_inventory_and_silence_on_a_broken_one(tmp_path):
    env = {"_PRONTUARIO_COMPLETE": "complete_bash", "COMP_WORDS": "prontuario inventory show w", "COMP_CWORD": "3"}
    _, out = probe([], dict(env, PRONTUARIO_INVENTORY=str(EXAMPLE)))
    assert out.split() == ["witness"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("nodes: [")
    proc_env = dict(env, PRONTUARIO_INVENTORY=str(broken))
    _, out = probe([], proc_env)
    assert out.strip() == ""
