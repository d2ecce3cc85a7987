"""The 3 a.m. contract: help with examples, exit codes, one-line errors, bugs to a debug log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prontuario_cli.errors import ExitCode
from tests.helpers import EXAMPLE, run, run_process


def walk_commands():
    """(path, click command) for every leaf command and every group."""
    import typer

    from prontuario_cli.cli.main import app

    root = typer.main.get_command(app)

    def visit(command, path):
        yield path, command
        for name in getattr(command, "list_commands", lambda ctx: [])(None):
            sub = command.get_command(None, name)
            yield from visit(sub, (*path, name))

    yield from visit(root, ())


def test_every_command_has_help_with_an_example():
    missing = []
    for path, command in walk_commands():
        result = run(*path, "--help")
        assert result.code == 0, (path, result.err)
        if "Example:" not in result.out:
            missing.append(" ".join(path) or "prontuario")
    assert not missing, f"commands whose --help has no 'Example:': {missing}"


def test_root_help_summaries_match_each_capability():
    from prontuario_cli.cli.main import CAPABILITIES, load_capability, summary

    for name in CAPABILITIES:
        own = load_capability(name).info.help.split("\n")[0]
        assert summary(name) == own, name


def test_using_one_capability_imports_only_that_one():
    import subprocess
    import sys

    code = (
        "import sys; from prontuario_cli.cli.main import main; "
        "main(['-i', sys.argv[1], 'inventory', 'check']); "
        "print(sorted(m for m in sys.modules if m.startswith('prontuario_cli.cli.')))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], capture_output=True, text=True, timeout=60).stdout
    loaded = eval(out.strip().splitlines()[-1])
    assert "prontuario_cli.cli.inventory" in loaded
    assert "prontuario_cli.cli.audit" not in loaded and "prontuario_cli.cli.monitor" not in loaded


def test_state_changing_commands_take_dry_run_and_yes():
    for path, command in walk_commands():
        names = {opt for p in getattr(command, "params", []) for opt in getattr(p, "opts", [])}
        if "--yes" in names:
            assert "--dry-run" in names, f"{' '.join(path)} has --yes but no --dry-run"


def test_usage_error_is_one_line_and_exit_64():
    result = run("inventory", "check", "--no-such-option")
    assert result.code == ExitCode.USAGE
    assert result.err.count("\n") == 1 and "No such option: --no-such-option" in result.err


def test_version():
    from prontuario_cli import __version__

    result = run("--version")
    assert result.code == 0 and result.out.strip() == f"prontuario {__version__}"


def test_json_when_piped_table_on_a_terminal():
    piped = run("-i", str(EXAMPLE), "inventory", "check")
    assert json.loads(piped.out)["valid"] is True
    tty = run("-i", str(EXAMPLE), "inventory", "check", tty=True)
    assert "verdict" in tty.out and not tty.out.lstrip().startswith("{")


def test_global_and_command_format_options_agree():
    assert json.loads(run("-i", str(EXAMPLE), "--json", "inventory", "show", tty=True).out)["cluster"] == "prontuario"
    assert run("-i", str(EXAMPLE), "inventory", "show", "--format", "table").out.startswith("cluster prontuario")
    clash = run("-i", str(EXAMPLE), "inventory", "show", "--json", "--format", "table")
    assert clash.code == ExitCode.USAGE
    nagios = run("-i", str(EXAMPLE), "inventory", "show", "--format", "nagios")
    assert nagios.code == ExitCode.USAGE and "only for check commands" in nagios.err


@pytest.mark.parametrize(
    "argv",
    [
        ("drill", "failover", "--mode", "kill", "--yes", "--format", "nagios"),
        ("--format", "nagios", "gcp", "promote", "--reason", "both Macs lost", "--yes"),
        ("lab", "up", "--yes", "--format", "nagios"),
        ("gcp", "failback", "--yes", "-f", "nagios"),
    ],
)
def test_a_wrong_format_is_refused_before_anything_runs(argv, isolated_state, tmp_path):
    """--format nagios on a command that changes state: exit 64 at once, no audit entry, nothing run.

    The nodes are on loopback addresses where nothing listens: were the command to run,
    it would only meet refused connections.
    """
    loopback = tmp_path / "cluster.yaml"
    text = EXAMPLE.read_text()
    for i, address in enumerate(("10.40.0.11", "10.40.0.12", "10.40.0.20"), 1):
        text = text.replace(address, f"127.0.0.{i + 100}")
    loopback.write_text(text)
    result = run("-i", str(loopback), *argv)
    assert result.code == ExitCode.USAGE, result.err
    assert "--format nagios is only for check commands" in result.err
    assert not (isolated_state / "audit.jsonl").exists()


def test_check_commands_still_speak_nagios():
    result = run("-i", str(EXAMPLE), "inventory", "check", "--format", "nagios")
    assert result.out.startswith("PRONTUARIO ") and result.code in (ExitCode.OK, ExitCode.WARNING)


def test_no_color_is_honoured(monkeypatch):
    colored = run("-i", str(EXAMPLE), "inventory", "check", tty=True)
    assert "\x1b[32m" in colored.out  # green verdict on a terminal
    monkeypatch.setenv("NO_COLOR", "1")
    plain = run("-i", str(EXAMPLE), "inventory", "check", tty=True)
    assert "\x1b[32m" not in plain.out and "valid" in plain.out


def test_unexpected_exception_is_a_bug_with_a_debug_log(monkeypatch, isolated_state):
    import prontuario_cli.inventory_report as inventory_report

    def explode(inventory, node=None):
        database_password = "local-value-never-logged"  # noqa: F841 - locals must not be logged
        raise RuntimeError("boom")

    monkeypatch.setattr(inventory_report, "show_report", explode)
    result = run("-i", str(EXAMPLE), "inventory", "show")
    assert result.code == ExitCode.BUG
    assert "Traceback" not in result.err and result.err.count("\n") == 1
    assert "this is a bug in prontuario" in result.err
    log = Path(result.err.rsplit("the traceback is in ", 1)[1].strip())
    assert log.is_relative_to(isolated_state)
    text = log.read_text()
    assert "Traceback" in text and "RuntimeError: boom" in text
    assert "local-value-never-logged" not in text


def test_ctrl_c_exits_130(monkeypatch):
    import prontuario_cli.inventory_report as inventory_report

    def interrupted(inventory, node=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(inventory_report, "show_report", interrupted)
    result = run("-i", str(EXAMPLE), "inventory", "show")
    assert result.code == ExitCode.INTERRUPTED and result.err.strip() == "interrupted"


def test_python_dash_m_and_console_script_agree():
    result = run_process("-i", str(EXAMPLE), "inventory", "check", "--json")
    assert result.code == 0 and json.loads(result.out)["valid"] is True
    bad = run_process("-i", "/nonexistent.yaml", "inventory", "check")
    assert bad.code == ExitCode.CONFIG and bad.out == "" and "Traceback" not in bad.err


# Every read command, with arguments that need no running cluster; commands that do
# need one are exercised with --json in their own integration tests (tests/lab, tests/replication).
READ_COMMANDS = {
    ("inventory", "check"): [],
    ("inventory", "show"): [],
    ("audit", "show"): [],
    ("audit", "verify"): [],
}
NEEDS_A_CLUSTER_OR_FILES = {
    ("inventory", "init"),  # writes a file: tested in test_audit
}


@pytest.mark.parametrize("path", sorted(READ_COMMANDS))
def test_read_commands_give_parseable_json(path):
    result = run("-i", str(EXAMPLE), *path, *READ_COMMANDS[path], "--format", "json")
    assert result.code in (0, 1), result.err
    assert isinstance(json.loads(result.out), dict)


def test_verbose_says_more_on_stderr_only():
    quiet = run("-i", str(EXAMPLE), "inventory", "show", "--json")
    loud = run("-v", "-i", str(EXAMPLE), "inventory", "show", "--json")
    assert quiet.err == "" and "debug: inventory" in loud.err and "3 nodes (production)" in loud.err
    assert json.loads(loud.out) == json.loads(quiet.out)


def test_typed_confirmation_needs_the_exact_name():
    """What cannot be undone (a promotion) asks for the instance name, not a 'y'."""
    import typer

    from prontuario_cli.cli.common import Env, confirm
    from prontuario_cli.errors import AbortedError
    from tests.helpers import _Stream

    app = typer.Typer()

    @app.command()
    def promote() -> None:
        confirm("PROMOTE db-replica", yes=False, typed="db-replica")
        print("promoted")

    def attempt(answer: str):
        err = _Stream(True)
        env = Env(stdout=_Stream(True), stderr=err, stdin=_Stream(True, answer))
        try:
            app(args=[], standalone_mode=False, obj=env)
            return "promoted", err.getvalue()
        except AbortedError as exc:
            return exc.message, err.getvalue()

    assert attempt("y\n")[0] == "the name typed does not match; nothing was changed"
    outcome, asked = attempt("db-replica\n")
    assert outcome == "promoted" and "Type the instance name (db-replica)" in asked
