"""The audit log: MAC chain, tamper detection, permissions, concurrent writers, outcomes."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat

import pytest

from prontuario_cli.audit import AuditLog, action
from prontuario_cli.errors import ExitCode
from tests.helpers import EXAMPLE, run


def fill(log: AuditLog, count: int) -> None:
    """``count`` operations: an intent and an outcome entry each."""
    for i in range(count):
        with action(log, "test step", {"i": i}):
            pass


def append(log: AuditLog, count: int) -> None:
    """``count`` plain entries, one line each (simpler to cut and reorder)."""
    for i in range(count):
        log.append({"time": "2026-11-01T03:00:00.000Z", "command": "test step", "args": {"i": i}, "outcome": "ok"})


def kinds(log: AuditLog) -> list[str]:
    return [p.kind for p in log.verify().problems]


@pytest.fixture
def log(tmp_path):
    return AuditLog(tmp_path / "audit.jsonl")


def test_entry_fields_and_file_modes(log):
    fill(log, 2)
    for path in (log.path, log.head_path, log.key_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert len(log.key_path.read_bytes()) == 32
    intent, outcome, second_intent, _ = log.entries()
    assert {"time", "operator", "host", "command", "args", "id", "phase", "seq", "prev", "key_id", "mac"} <= intent.keys()
    assert intent["phase"] == "intent" and "outcome" not in intent and "hash" not in intent
    assert outcome["phase"] == "outcome" and outcome["id"] == intent["id"] and outcome["outcome"] == "ok" and outcome["exit_code"] == 0
    assert outcome["time"].endswith("Z") and outcome["duration_s"] >= 0
    assert outcome["prev"] == intent["mac"] and outcome["seq"] == 2 and second_intent["id"] != intent["id"]
    head = json.loads(log.head_path.read_text())
    assert set(head) == {"seq", "mac", "key_id", "head_mac"} and head["seq"] == 4
    report = log.verify()
    assert report.intact and not report.warnings


def test_failed_and_interrupted_outcomes_are_recorded(log):
    from prontuario_cli.errors import OperationFailed

    with pytest.raises(OperationFailed), action(log, "promote", {}):
        raise OperationFailed("replica unreachable")
    with pytest.raises(KeyboardInterrupt), action(log, "drill", {}):
        raise KeyboardInterrupt
    failed, interrupted = (e for e in log.entries() if e["phase"] == "outcome")
    assert failed["outcome"] == "failed" and failed["error"] == "replica unreachable" and failed["exit_code"] == ExitCode.FAILED
    assert interrupted["outcome"] == "interrupted" and interrupted["exit_code"] == ExitCode.INTERRUPTED


def test_a_concluded_verdict_is_the_outcome(log):
    with action(log, "drill failover", {}) as details:
        details.conclude("target-missed", ExitCode.TARGET_MISSED)
    outcome = log.entries()[-1]
    assert outcome["outcome"] == "target-missed" and outcome["exit_code"] == 10


def rewrite(log: AuditLog, lines: list[str]) -> None:
    log.path.write_text("".join(line + "\n" for line in lines))


def test_edited_entry_is_named(log):
    append(log, 5)
    lines = log.path.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["operator"] = "mallory"
    lines[2] = json.dumps(entry)
    rewrite(log, lines)
    report = log.verify()
    assert not report.intact and report.exit_code() == ExitCode.INTEGRITY
    first = report.problems[0]
    assert first.kind == "edited" and first.line == 3 and first.seq == 3 and "entry 3 (line 3) was edited" in first.message


def test_deleted_entry_is_named(log):
    append(log, 5)
    lines = log.path.read_text().splitlines()
    del lines[2]
    rewrite(log, lines)
    problem = log.verify().problems[0]
    assert problem.kind == "deleted" and "entries 3–3 are missing" in problem.message


def test_deleted_tail_is_caught_by_the_head_file(log):
    append(log, 5)
    rewrite(log, log.path.read_text().splitlines()[:-2])
    assert kinds(log) == ["deleted"]
    assert "tail was deleted" in log.verify().problems[0].message


def test_reordered_entries_are_named(log):
    append(log, 5)
    lines = log.path.read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    rewrite(log, lines)
    assert set(kinds(log)) == {"reordered"}


def test_inserted_forged_entry_is_named(log):
    from prontuario_cli.audit import entry_mac

    append(log, 4)
    lines = log.path.read_text().splitlines()
    before = json.loads(lines[1])
    forged = dict(json.loads(lines[2]), command="gcp promote", prev=before["mac"])
    forged["mac"] = entry_mac(forged, os.urandom(32))  # a careful forger, without the key
    lines.insert(2, json.dumps(forged))
    rewrite(log, lines)
    assert "edited" in kinds(log) and "inserted" in kinds(log)


def test_cli_verify_exit_codes(tmp_path, monkeypatch):
    path = tmp_path / "cli-audit.jsonl"
    monkeypatch.setenv("PRONTUARIO_AUDIT_LOG", str(path))
    append(AuditLog(path), 3)
    ok = run("audit", "verify", "--json")
    assert ok.code == ExitCode.OK and ok.json()["intact"] is True and ok.json()["entries"] == 3
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    broken = run("audit", "verify", "--json")
    assert broken.code == ExitCode.INTEGRITY
    assert broken.json()["problems"][0]["kind"] == "deleted"
    nagios = run("audit", "verify", "--format", "nagios")
    assert nagios.code == ExitCode.INTEGRITY
    assert nagios.out.startswith("PRONTUARIO CRITICAL - ") and "| entries=2;;;0 problems=1;;0;0" in nagios.out


def test_audit_show_since(tmp_path, monkeypatch):
    path = tmp_path / "cli-audit.jsonl"
    monkeypatch.setenv("PRONTUARIO_AUDIT_LOG", str(path))
    log = AuditLog(path)
    log.append({"time": "2026-01-01T00:00:00.000Z", "command": "old", "args": {}, "outcome": "ok"})
    fill(log, 2)
    everything = run("audit", "show", "--json").json()
    assert [e["command"] for e in everything["entries"]] == ["old", "test step", "test step"]  # one row per operation
    assert everything["entries"][1]["outcome"] == "ok" and everything["entries"][1]["seq"] == 2
    recent = run("audit", "show", "--since", "1d", "--json").json()
    assert [e["command"] for e in recent["entries"]] == ["test step", "test step"]
    dated = run("audit", "show", "--since", "2025-12-31", "--json").json()
    assert len(dated["entries"]) == 3
    bad = run("audit", "show", "--since", "yesterday-ish")
    assert bad.code == ExitCode.USAGE and "--since 'yesterday-ish'" in bad.err


@pytest.mark.parametrize("since", ["99999999d", "999999999999999999999w", "0009999999999999999999s"])
def test_audit_show_since_too_far_back_is_a_usage_error(since):
    result = run("audit", "show", "--since", since)
    assert result.code == ExitCode.USAGE and f"--since '{since}'" in result.err and "Traceback" not in result.err


def _writer(path: str, worker: int, count: int) -> None:
    log = AuditLog(path)
    for i in range(count):
        with action(log, "parallel", {"worker": worker, "i": i}):
            pass


def test_parallel_writers_never_break_the_chain(tmp_path):
    """8 writers at once, on a log with no key yet: one key, one unbroken chain."""
    path = str(tmp_path / "audit.jsonl")
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_writer, args=(path, w, 30)) for w in range(8)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=60)
        assert p.exitcode == 0
    log = AuditLog(path)
    report = log.verify()
    assert report.intact and not report.warnings, (report.problems[:3], report.warnings[:3])
    entries = log.entries()
    assert len(entries) == 480
    assert [e["seq"] for e in entries] == list(range(1, 481))
    outcomes = [e for e in entries if e["phase"] == "outcome"]
    assert {(e["args"]["worker"], e["args"]["i"]) for e in outcomes} == {(w, i) for w in range(8) for i in range(30)}
    assert len({e["key_id"] for e in entries}) == 1


def test_state_changing_command_writes_an_entry(tmp_path):
    target = tmp_path / "new-cluster.yaml"
    result = run("inventory", "init", str(target), "--yes", "--json")
    assert result.code == 0, result.err
    assert target.read_text() == EXAMPLE.read_text()
    entries = run("audit", "show", "--json").json()["entries"]
    assert entries[-1]["command"] == "inventory init" and entries[-1]["outcome"] == "ok"
    again = run("inventory", "init", str(target), "--yes")
    assert again.code == ExitCode.REFUSED and "already exists" in again.err
    entries = run("audit", "show", "--json").json()["entries"]
    assert entries[-1]["outcome"] == "refused"  # a safety rule said no: not a failure
    dry = run("inventory", "init", str(tmp_path / "other.yaml"), "--dry-run", "--json")
    assert dry.code == 0 and dry.json()["action"] == "would write" and not (tmp_path / "other.yaml").exists()
    assert run("audit", "show", "--json").json()["entries"][-1]["outcome"] == "dry-run"
    assert run("audit", "verify").code == 0


def test_change_without_terminal_needs_yes(tmp_path):
    result = run("inventory", "init", str(tmp_path / "c.yaml"))
    assert result.code == ExitCode.USAGE and "--yes" in result.err
    assert not (tmp_path / "c.yaml").exists()


def test_interactive_confirmation_no_changes_nothing_and_is_audited_as_declined(tmp_path):
    result = run("inventory", "init", str(tmp_path / "c.yaml"), tty=True, stdin="n\n")
    assert result.code == ExitCode.ABORTED and not (tmp_path / "c.yaml").exists()
    last = run("audit", "show", "--json").json()["entries"][-1]
    assert last["command"] == "inventory init" and last["outcome"] == "declined" and last["exit_code"] == ExitCode.ABORTED
    result = run("inventory", "init", str(tmp_path / "c.yaml"), tty=True, stdin="y\n")
    assert result.code == 0 and (tmp_path / "c.yaml").exists()
