"""Exit codes at the edges: a reader that goes away, and the Nagios plugin contract on every error path.

A monitoring system reads stdout and the exit code of a ``--format nagios`` command
and nothing else: whatever goes wrong, it must get one ``UNKNOWN`` line and exit 3.
A pipe closed by ``head`` is no failure at all.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from prontuario_cli.errors import ExitCode, UnavailableError
from tests.helpers import EXAMPLE, REPO, run

REPLICATION_INVENTORY = REPO / "tests" / "replication" / "fixture_cluster.yaml"


def one_unknown_line(result) -> str:
    assert result.code == ExitCode.UNKNOWN, (result.code, result.out, result.err)
    assert result.out.startswith("PRONTUARIO UNKNOWN - ") and result.out.count("\n") == 1, result.out
    return result.out


# --------------------------------------------------------------------------- a closed stdout


def test_a_reader_that_goes_away_is_exit_0_and_silence():
    """``prontuario … inventory show -f json | head -1``, with head already gone when the JSON comes."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "prontuario_cli", "-i", str(EXAMPLE), "inventory", "show", "-f", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(REPO),
    )  # fmt: skip
    proc.stdout.close()  # before the process has written anything: its write meets EPIPE
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert err.decode() == ""


class _ClosedPipe:
    """A stdout whose reader has gone."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")

    def isatty(self):
        return False


def test_a_closed_stdout_in_process_is_exit_0():
    from prontuario_cli.cli.common import Env
    from prontuario_cli.cli.main import main
    from tests.helpers import _Stream

    err = _Stream()
    code = main(["-i", str(EXAMPLE), "inventory", "show", "-f", "json"], Env(stdout=_ClosedPipe(), stderr=err))
    assert code == ExitCode.OK and err.getvalue() == ""


def test_a_broken_pipe_elsewhere_is_still_a_bug(monkeypatch, tmp_path):
    """Only stdout's own reader going away is quiet; a broken pipe to anything else is reported."""
    from prontuario_cli import inventory_report
    from prontuario_cli.cli.common import Env
    from prontuario_cli.cli.main import main
    from tests.helpers import _Stream

    def broken(inventory, node=None):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(inventory_report, "show_report", broken)
    err = _Stream()
    with open(tmp_path / "stdout", "w") as stdout:  # a real, healthy descriptor
        code = main(["-i", str(EXAMPLE), "inventory", "show", "-f", "json"], Env(stdout=stdout, stderr=err))
    assert code == ExitCode.BUG and "BrokenPipeError — this is a bug" in err.getvalue()


# --------------------------------------------------------------------------- the Nagios contract


@pytest.mark.parametrize("where", ["global", "command"])
def test_a_missing_inventory_is_unknown(where):
    fmt = ("--format", "nagios")
    argv = (*fmt, "-i", "/nonexistent/cluster.yaml", "replication", "check") if where == "global" else (
        "-i", "/nonexistent/cluster.yaml", "replication", "check", *fmt)  # fmt: skip
    result = run(*argv)
    assert "inventory not found: /nonexistent/cluster.yaml" in one_unknown_line(result)
    assert result.err == ""


def test_an_invalid_inventory_is_one_unknown_line(tmp_path):
    bad = tmp_path / "cluster.yaml"
    bad.write_text(EXAMPLE.read_text().replace("timeout_s: 2", "timeout_s: -1").replace("fall: 3", "fall: 0"))
    line = one_unknown_line(run("-i", str(bad), "replication", "check", "-f", "nagios"))
    assert "health_checks.timeout_s" in line and "health_checks.fall" in line


def test_a_missing_secret_is_unknown(tmp_path, monkeypatch):
    monkeypatch.delenv("PRONTUARIO_PG_PASSWORD", raising=False)
    line = one_unknown_line(run("-i", str(EXAMPLE), "replication", "check", "-f", "nagios"))
    assert "PRONTUARIO_PG_PASSWORD is not set" in line


def test_an_unreachable_cluster_is_unknown(monkeypatch):
    from prontuario_cli import replication

    def unreachable(inventory, record=False):
        raise UnavailableError("etcd did not answer within 2 s")

    monkeypatch.setattr(replication, "check", unreachable)
    line = one_unknown_line(run("-i", str(EXAMPLE), "replication", "check", "--format=nagios"))
    assert "etcd did not answer within 2 s" in line


def test_a_bug_is_unknown_and_still_leaves_its_debug_log(monkeypatch, isolated_state):
    from prontuario_cli import replication

    def explode(inventory, record=False):
        raise RuntimeError("boom")

    monkeypatch.setattr(replication, "check", explode)
    line = one_unknown_line(run("-i", str(EXAMPLE), "replication", "check", "-fnagios"))
    assert "this is a bug in prontuario" in line
    log = Path(line.rsplit("the traceback is in ", 1)[1].strip())
    assert log.is_relative_to(isolated_state) and "RuntimeError: boom" in log.read_text()


def test_a_bad_command_line_of_a_check_is_unknown():
    assert "No such option: --no-such-option" in one_unknown_line(run("replication", "check", "-f", "nagios", "--no-such-option"))


def test_ctrl_c_during_a_check_is_unknown(monkeypatch):
    from prontuario_cli import replication

    def interrupted(inventory, record=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(replication, "check", interrupted)
    assert "interrupted" in one_unknown_line(run("-i", str(EXAMPLE), "replication", "check", "-f", "nagios"))


def test_without_nagios_errors_keep_their_own_codes():
    result = run("-i", "/nonexistent/cluster.yaml", "replication", "check", "-f", "json")
    assert result.code == ExitCode.CONFIG and result.out == "" and result.err.startswith("error: inventory not found")


# --------------------------------------------------------------------------- a state dir that cannot be written


@pytest.fixture
def unwritable_state(tmp_path, monkeypatch):
    """A state dir that cannot be created (its parent is a file: even root cannot)."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    state = blocker / "state"
    monkeypatch.setenv("PRONTUARIO_STATE_DIR", str(state))
    monkeypatch.setenv("PRONTUARIO_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    return state


@pytest.fixture
def healthy_cluster(monkeypatch):
    """Every probe answers as the healthy lab did (the captured fixtures): no network."""
    from prontuario_cli.connect import fanout
    from tests.replication import replication_fixtures

    monkeypatch.setattr(fanout, "run_all", lambda probes, deadline: replication_fixtures.healthy())


def test_a_check_with_an_unwritable_state_dir_still_reports(unwritable_state, healthy_cluster):
    result = run("-i", str(REPLICATION_INVENTORY), "replication", "check", "-f", "nagios")
    assert result.code in (ExitCode.WARNING, ExitCode.CRITICAL), (result.code, result.err)  # before: 20 and no line
    assert result.out.startswith("PRONTUARIO ") and result.out.count("\n") == 1
    data = run("-i", str(REPLICATION_INVENTORY), "replication", "check", "--json").json()
    notes = [p["message"] for p in data["problems"] if p["component"] == "check"]
    assert any(f"cannot record the primary's WAL position in {unwritable_state}" in n for n in notes), notes


def test_acknowledging_with_an_unwritable_state_dir_is_one_clear_line(unwritable_state, healthy_cluster):
    result = run("-i", str(REPLICATION_INVENTORY), "replication", "check", "--ack-timeline", "-f", "json")
    assert result.code == ExitCode.FAILED, result.err  # before: 70, "this is a bug"
    assert result.err.count("\n") == 1 and f"cannot record the acknowledgement in {unwritable_state}" in result.err
    nagios = run("-i", str(REPLICATION_INVENTORY), "replication", "check", "--ack-timeline", "-f", "nagios")
    assert "cannot record the acknowledgement" in one_unknown_line(nagios)


def test_the_state_files_raise_oserror_naming_the_file(tmp_path):
    from prontuario_cli.replication import state

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError) as caught:
        state.record_wal_samples(blocker / "state", [(1.0, 1)])
    assert caught.value.strerror  # what the check's warning says
