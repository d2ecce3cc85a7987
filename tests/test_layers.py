"""The layers hold: import-linter checks the contracts in pyproject.toml, and they have teeth.

`test_contracts_hold` runs the real check on the real tree. The other tests make sure that
check cannot pass by accident: every package is visible to the linter, the contract lists
name every module they should, and a copy of the tree with one forbidden import added is
caught, contract by contract.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGE = REPO / "prontuario_cli"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
SHELL = {"cli", "__main__"}  # the CLI shell; everything else is the core


def lint_imports(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``lint-imports`` on the pyproject.toml in CWD (no cache file left behind)."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=str(cwd), env=env, capture_output=True, text=True, timeout=120
    )


def contracts() -> dict[str, dict]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def layer_members(layer: str) -> set[str]:
    """``"a : (b) : c"`` or ``"a | b"`` -> {"a", "b", "c"}."""
    return {name.strip().strip("()") for name in re.split(r"[|:]", layer)}


def top_level_modules(package: Path = PACKAGE) -> set[str]:
    """Every module and package directly under PACKAGE, read from the file system."""
    names = set()
    for path in package.iterdir():
        if path.suffix == ".py" and path.name != "__init__.py":
            names.add(path.stem)
        elif path.is_dir() and any(path.rglob("*.py")):
            names.add(path.name)
    return names


def test_lint_imports_is_installed():
    assert LINT_IMPORTS.exists(), f"{LINT_IMPORTS} is missing: pip install -e '.[test]'"


def test_contracts_hold():
    proc = lint_imports(REPO)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert re.search(r"Contracts: [1-9]\d* kept, 0 broken\.", output), output


def test_every_package_has_an_init():
    """A directory without __init__.py is a namespace package: import-linter does not see it,
    so none of its imports would be checked."""
    missing = sorted(
        str(directory.relative_to(REPO))
        for directory in [PACKAGE, *PACKAGE.rglob("*")]
        if directory.is_dir()
        and directory.name != "__pycache__"
        and any(directory.glob("*.py"))
        and not (directory / "__init__.py").exists()
    )
    assert not missing, f"add an __init__.py to: {', '.join(missing)}"


def test_every_module_has_a_layer():
    declared = set().union(*(layer_members(layer) for layer in contracts()["layers"]["layers"]))
    assert top_level_modules() <= declared, f"not in any layer: {sorted(top_level_modules() - declared)}"


def test_core_contract_names_every_core_module():
    sources = {name.removeprefix("prontuario_cli.") for name in contracts()["core-without-typer-rich"]["source_modules"]}
    assert sources == top_level_modules() - SHELL


def test_capability_contracts_name_every_capability():
    by_id = contracts()
    capability_layer = next(layer for layer in by_id["layers"]["layers"] if "drill" in layer_members(layer))
    capabilities = layer_members(capability_layer) & top_level_modules()
    assert {"drill", "gcp", "replication", "monitor"} <= capabilities

    def names(key: str, contract_id: str) -> set[str]:
        return {name.removeprefix("prontuario_cli.") for name in by_id[contract_id][key]}

    # Two capabilities build on others, each by its own contract: drill (on replication and
    # gcp) and serve (on models: it loads only what models verified).
    assert names("modules", "capabilities-independent") == capabilities - {"drill", "serve"}
    assert names("source_modules", "nothing-imports-drill") == capabilities - {"drill"}
    assert names("forbidden_modules", "drill-imports-named-capabilities-only") == capabilities - {"drill", "replication", "gcp"}
    assert names("forbidden_modules", "serve-builds-on-models-only") == capabilities - {"serve", "models"}


def test_status_sits_between_the_cli_and_the_capabilities():
    """status reads every capability, so it is a layer of its own above them and under cli."""
    layers = [layer_members(layer) for layer in contracts()["layers"]["layers"]]
    status = layers.index({"status"})
    assert "cli" in layers[status - 1] and "drill" in layers[status + 1]


# --------------------------------------------------------------------------- teeth
# (file to append to, import added, line the linter must print)
VIOLATIONS = {
    "gcp imports drill": ("gcp/__init__.py", "import prontuario_cli.drill", "prontuario_cli.gcp is not allowed to import prontuario_cli.drill"),
    "replication imports gcp": (
        "replication/__init__.py",
        "import prontuario_cli.gcp",
        "prontuario_cli.replication is not allowed to import prontuario_cli.gcp",
    ),
    "drill imports monitor": ("drill/__init__.py", "import prontuario_cli.monitor", "prontuario_cli.drill is not allowed to import prontuario_cli.monitor"),
    "cluster reaches up to replication": (
        "cluster/haproxy.py",
        "import prontuario_cli.replication",
        "prontuario_cli.cluster is not allowed to import prontuario_cli.replication",
    ),
    "connect reaches up to lab": ("connect/__init__.py", "import prontuario_cli.lab", "prontuario_cli.connect is not allowed to import prontuario_cli.lab"),
    "foundation imports rich": ("errors.py", "import rich", "prontuario_cli.errors is not allowed to import rich"),
    "cli talks to PostgreSQL": ("cli/main.py", "import psycopg", "prontuario_cli.cli is not allowed to import psycopg"),
    "a module with no layer": ("unplaced.py", "", "- prontuario_cli.unplaced"),
    "replication reaches up to status": (
        "replication/__init__.py",
        "import prontuario_cli.status",
        "prontuario_cli.replication is not allowed to import prontuario_cli.status",
    ),
    "status imports rich": ("status/__init__.py", "import rich", "prontuario_cli.status is not allowed to import rich"),
    "status starts a drill": (
        "status/drills.py",
        "import prontuario_cli.drill.failover",
        "prontuario_cli.status is not allowed to import prontuario_cli.drill.failover",
    ),
}


@pytest.fixture
def tree_copy(tmp_path) -> Path:
    """The package and pyproject.toml copied into TMP_PATH, every package given an __init__.py
    (test_every_package_has_an_init guards the real tree) so the copy is fully visible."""
    shutil.copytree(PACKAGE, tmp_path / "prontuario_cli", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    for directory in (tmp_path / "prontuario_cli").rglob("*"):
        if directory.is_dir() and any(directory.glob("*.py")):
            (directory / "__init__.py").touch()
    return tmp_path


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_contracts_catch(tree_copy, case):
    relative, line, expected = VIOLATIONS[case]
    target = tree_copy / "prontuario_cli" / relative
    with target.open("a") as handle:
        handle.write(f"\n{line}\n")
    proc = lint_imports(tree_copy, pythonpath=tree_copy)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert expected in output, output
    assert re.search(r"Contracts: \d+ kept, [1-9]\d* broken\.", output), output
