"""Docs are tested: completions and the README's command reference and exit codes match the CLI."""

from __future__ import annotations

import importlib.util
import re

from prontuario_cli.errors import ExitCode
from tests.helpers import REPO


def regenerate_module():
    """scripts/regenerate, loaded as a module (it has no .py suffix)."""
    from importlib.machinery import SourceFileLoader

    loader = SourceFileLoader("regenerate", str(REPO / "scripts" / "regenerate"))
    spec = importlib.util.spec_from_loader("regenerate", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


STALE = "stale: run /opt/prontuario/venv/bin/python scripts/regenerate"


def test_completion_scripts_are_current():
    regen = regenerate_module()
    for shell, name in regen.SHELLS.items():
        assert (REPO / "completions" / name).read_text() == regen.completion_script(shell), f"completions/{name} is {STALE}"


def test_readme_command_reference_is_current(monkeypatch):
    regen = regenerate_module()
    readme = (REPO / "README.md").read_text()
    assert regen.readme_with_reference(readme) == readme, f"README command reference is {STALE}"
    for path in regen.command_paths():
        assert f"### `{' '.join(('prontuario', *path))}`" in readme


def test_readme_exit_code_table_matches_the_enum():
    readme = (REPO / "README.md").read_text()
    table = readme.split("<!-- exit-codes:start -->")[1].split("<!-- exit-codes:end -->")[0]
    rows = re.findall(r"^\| (\d+) \| (\w+) \| (.+?) \|$", table, flags=re.M)
    assert [(int(c), n, m) for c, n, m in rows] == [(int(e), e.name, e.meaning) for e in ExitCode]


def test_quick_start_has_exactly_two_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text()
    block = readme.split("## Quick start")[1].split("```sh\n")[1].split("```")[0]
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    ci = (REPO / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()
    assert commands[0].startswith("./install.sh")
