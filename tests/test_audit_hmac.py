"""The keyed audit chain against someone who can write the log but not read the key,
write-ahead (no change without its intent on record) and real outcomes."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import stat
from types import SimpleNamespace

import pytest

from prontuario_cli.audit import GENESIS, AuditLog, AuditUnwritable, action, entry_hash, entry_mac, head_mac
from prontuario_cli.errors import ExitCode, IntegrityError, PermissionProblem
from tests.helpers import EXAMPLE, run


@pytest.fixture
def log(isolated_state):
    """The log every CLI command of the test writes to ($PRONTUARIO_AUDIT_LOG)."""
    return AuditLog(isolated_state / "audit.jsonl")


def fill(log: AuditLog, count: int) -> None:
    for i in range(count):
        log.append({"time": "2026-11-01T03:00:00.000Z", "command": "step", "args": {"i": i}, "outcome": "ok"})


def lines(log: AuditLog) -> list[str]:
    return log.path.read_text().splitlines()


def rewrite(log: AuditLog, new: list[str]) -> None:
    log.path.write_text("".join(line + "\n" for line in new))


def verify_cli() -> tuple[int, dict, str]:
    result = run("audit", "verify", "--json")
    assert "Traceback" not in result.err and result.code != ExitCode.BUG, result.err
    return result.code, result.json() if result.out else {}, result.err


def broken(expected_kind: str | None = None, *, mentions: str = "") -> dict:
    """Verify through the CLI: exit 65, a problem naming a line or a seq."""
    code, report, err = verify_cli()
    assert code == ExitCode.INTEGRITY, (code, err, report)
    first = report["problems"][0]
    assert "line" in first["message"] or "seq" in first["message"], first
    if expected_kind:
        assert expected_kind in [p["kind"] for p in report["problems"]], report["problems"]
    if mentions:
        assert any(mentions in p["message"] for p in report["problems"]), report["problems"]
    return report


# --------------------------------------------------------------------------- forgery without the key


def test_an_appended_entry_with_a_recomputed_sha256_is_caught(log):
    fill(log, 3)
    last = json.loads(lines(log)[-1])
    forged = {k: v for k, v in last.items() if k not in ("mac", "key_id")}
    forged.update(seq=4, prev=last["mac"], command="gcp promote", operator="mallory")
    forged["hash"] = entry_hash(forged)  # what the old unkeyed chain accepted
    rewrite(log, [*lines(log), json.dumps(forged)])
    broken("inserted", mentions="line 4")


def test_an_appended_entry_with_a_mac_under_another_key_is_caught(log):
    fill(log, 3)
    last = json.loads(lines(log)[-1])
    forged = dict(last, seq=4, prev=last["mac"], command="gcp promote")
    forged["mac"] = entry_mac(forged, os.urandom(32))
    rewrite(log, [*lines(log), json.dumps(forged)])
    report = broken("edited", mentions="entry 4 (line 4) was edited or forged")
    assert report["problems"][0]["seq"] == 4


def test_a_chain_rewritten_under_another_key_with_its_head_is_caught(log):
    fill(log, 4)
    mine = os.urandom(32)
    prev, out = GENESIS, []
    for raw in lines(log):
        entry = dict(json.loads(raw), operator="mallory", prev=prev)
        entry["mac"] = entry_mac(entry, mine)
        prev = entry["mac"]
        out.append(json.dumps(entry))
    rewrite(log, out)
    head = {"seq": 4, "mac": prev, "key_id": json.loads(out[-1])["key_id"]}
    head["head_mac"] = head_mac(head, mine)
    log.head_path.write_text(json.dumps(head))
    broken("forged", mentions="rewritten without the key")


def test_a_chain_rewritten_as_legacy_entries_is_caught_while_the_key_exists(log):
    fill(log, 3)
    prev, out = GENESIS, []
    for raw in lines(log):
        entry = {k: v for k, v in json.loads(raw).items() if k not in ("mac", "key_id")}
        entry["prev"] = prev
        entry["hash"] = prev = entry_hash(entry)
        out.append(json.dumps(entry))
    rewrite(log, out)
    log.head_path.write_text(json.dumps({"seq": 3, "hash": prev}))
    broken("key", mentions="no entry is keyed")


# --------------------------------------------------------------------------- the tail and the head


def test_a_cut_tail_with_the_head_deleted_is_caught(log):
    fill(log, 5)
    rewrite(log, lines(log)[:3])
    log.head_path.unlink()
    broken("head", mentions="entry 3 (line 3)")


def test_a_cut_tail_with_a_rewritten_head_is_caught(log):
    fill(log, 5)
    rewrite(log, lines(log)[:3])
    third = json.loads(lines(log)[-1])
    head = {"seq": 3, "mac": third["mac"], "key_id": third["key_id"]}
    head["head_mac"] = "0" * 64  # without the key, no valid MAC
    log.head_path.write_text(json.dumps(head))
    broken("head", mentions="was edited or forged")


def test_a_head_ahead_of_the_log_names_the_deleted_tail(log):
    fill(log, 5)
    rewrite(log, lines(log)[:3])
    broken("deleted", mentions="ends at seq 3 (line 3) but the head records seq 5")


def test_an_older_head_put_back_is_a_stale_head(log):
    fill(log, 2)
    older = log.head_path.read_text()
    fill(log, 2)
    log.head_path.write_text(older)
    broken("stale-head", mentions="lines 3–4")


def test_a_crash_between_entry_and_head_is_tolerated_and_said(log):
    fill(log, 2)
    before = log.head_path.read_text()
    fill(log, 1)
    log.head_path.write_text(before)  # as if the writer died right after the line
    code, report, err = verify_cli()
    assert code == ExitCode.OK and report["intact"]
    assert [w["kind"] for w in report["warnings"]] == ["crash"] and "warning: the head is one entry behind entry 3 (line 3)" in err
    fill(log, 1)  # the next entry brings the head up to date
    assert log.verify().intact and not log.verify().warnings


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[1, 2]", '{"seq": "3", "mac": "x"}', '{"seq": 3}', '{"seq": true, "hash": "' + "a" * 64 + '"}', "[" * 100000],
    ids=["empty", "text", "list", "string-seq", "no-mac", "bool-seq", "deep"],
)
def test_a_malformed_head_is_65_not_70(log, text):
    fill(log, 2)
    log.head_path.write_text(text)
    broken("head", mentions="malformed")


def test_a_head_that_is_a_directory_is_malformed(log):
    fill(log, 1)
    log.head_path.unlink()
    log.head_path.mkdir()
    broken("head", mentions="malformed")


@pytest.mark.parametrize("tamper", ["cut tail", "head deleted", "log deleted", "head forged"])
def test_a_log_that_no_longer_matches_its_head_is_never_extended(log, tamper):
    """The next entry and head would otherwise hide the evidence (a clean chain again)."""
    fill(log, 4)
    if tamper == "cut tail":
        rewrite(log, lines(log)[:2])
    elif tamper == "head deleted":
        log.head_path.unlink()
    elif tamper == "log deleted":
        log.path.unlink()
    else:
        log.head_path.write_text(log.head_path.read_text().replace('"head_mac": "', '"head_mac": "é'))
    before = log.path.read_bytes() if log.path.exists() else b""
    with pytest.raises(IntegrityError, match="does not match its head"):
        fill(log, 1)
    assert (log.path.read_bytes() if log.path.exists() else b"") == before
    result = run("inventory", "init", str(log.path.with_name("c.yaml")), "--yes")
    assert result.code == ExitCode.INTEGRITY and "nothing was done" in result.err and not log.path.with_name("c.yaml").exists()
    assert verify_cli()[0] == ExitCode.INTEGRITY


# --------------------------------------------------------------------------- malformed entries


@pytest.mark.parametrize(
    "change",
    [
        lambda e: dict(e, seq="3"),
        lambda e: dict(e, prev=[e["prev"]]),
        lambda e: dict(e, mac=None),
        lambda e: dict(e, key_id=7),
        lambda e: dict(e, phase="later"),
        lambda e: [e],
        lambda e: "just a string",
    ],
    ids=["string-seq", "list-prev", "null-mac", "int-key-id", "bad-phase", "list", "string"],
)
def test_a_malformed_entry_is_65_and_located(log, change):
    fill(log, 4)
    new = lines(log)
    new[2] = json.dumps(change(json.loads(new[2])))
    rewrite(log, new)
    report = broken()
    assert report["problems"][0]["line"] == 3


def test_deep_json_and_duplicate_keys_are_malformed_entries(log):
    fill(log, 3)
    new = lines(log)
    new[1] = "[" * 100000 + "]" * 100000
    new[2] = new[2][:-1] + ', "outcome": "failed"}'  # a key given twice: readers would disagree
    rewrite(log, new)
    report = broken("malformed")
    assert [p["line"] for p in report["problems"] if p["kind"] == "malformed"] == [2, 3]
    show = run("audit", "show", "--json")
    assert show.code == ExitCode.INTEGRITY and "line 2" in show.err


# --------------------------------------------------------------------------- the key


def test_a_missing_key_is_caught_and_never_replaced_by_a_new_one(log):
    fill(log, 3)
    log.key_path.unlink()
    broken("key", mentions="is missing")
    with pytest.raises(IntegrityError, match="missing but the log already has keyed entries"):
        fill(log, 1)
    assert not log.key_path.exists()


def test_a_wrong_key_is_named_as_such(log):
    fill(log, 3)
    log.key_path.write_bytes(os.urandom(32))
    broken("key", mentions="wrong key")


def test_a_damaged_key_is_65(log):
    fill(log, 2)
    log.key_path.write_bytes(b"short")
    broken("key", mentions="not a 32-byte key")


def test_an_unsafe_key_is_refused_for_reading_and_writing(log):
    fill(log, 1)
    os.chmod(log.key_path, 0o640)
    result = run("audit", "verify")
    assert result.code == ExitCode.PERMISSION and "open to group or others (mode 0640)" in result.err and f"chmod 600 {log.key_path}" in result.err
    with pytest.raises(AuditUnwritable, match="nothing was done"), action(log, "gcp promote", {}):
        pytest.fail("the block ran without its intent on record")


def test_a_key_that_is_not_a_regular_file_is_refused(log, tmp_path):
    fill(log, 1)
    real = tmp_path / "real.key"
    real.write_bytes(log.key_path.read_bytes())
    os.chmod(real, 0o600)
    log.key_path.unlink()
    log.key_path.symlink_to(real)
    with pytest.raises(PermissionProblem, match="symbolic link"):
        log.verify()
    log.key_path.unlink()
    log.key_path.mkdir()
    result = run("audit", "verify")
    assert result.code == ExitCode.PERMISSION and "not a regular file" in result.err


def test_the_key_path_comes_from_the_environment_then_the_inventory_then_beside_the_log(tmp_path, monkeypatch):
    from prontuario_cli.paths import audit_key_path

    log = tmp_path / "audit.jsonl"
    inventory = SimpleNamespace(paths=SimpleNamespace(audit_key=str(tmp_path / "inv.key"), audit_log=None, state_dir=None))
    assert audit_key_path(None, log) == tmp_path / "audit.jsonl.key"
    assert audit_key_path(inventory, log) == tmp_path / "inv.key"
    monkeypatch.setenv("PRONTUARIO_AUDIT_KEY", str(tmp_path / "env.key"))
    assert audit_key_path(inventory, log) == tmp_path / "env.key"
    run("inventory", "init", str(tmp_path / "c.yaml"), "--yes")
    assert (tmp_path / "env.key").stat().st_size == 32 and run("audit", "verify").code == 0


# --------------------------------------------------------------------------- legacy logs


def legacy_log(log: AuditLog, count: int) -> None:
    """A log as the unkeyed version wrote it: sha256 ``hash`` chain, head {seq, hash}."""
    prev, out = GENESIS, []
    for i in range(count):
        entry = {"time": "2026-01-01T00:00:00.000Z", "command": "old", "args": {"i": i}, "outcome": "ok", "seq": i + 1, "prev": prev}
        entry["hash"] = prev = entry_hash(entry)
        out.append(json.dumps(entry))
    log.path.parent.mkdir(parents=True, exist_ok=True)
    rewrite(log, out)
    log.head_path.write_text(json.dumps({"seq": count, "hash": prev}))


def test_a_legacy_log_verifies_with_a_warning_and_goes_on_keyed(log):
    legacy_log(log, 3)
    code, report, err = verify_cli()
    assert code == ExitCode.OK and report["legacy_until"] == 3
    assert "warning: legacy, unkeyed up to seq 3 (lines 1–3)" in err
    fill(log, 2)
    entries = log.entries()
    assert entries[3]["prev"] == entries[2]["hash"] and "mac" in entries[3]
    code, report, err = verify_cli()
    assert code == ExitCode.OK and report["legacy_until"] == 3 and "legacy, unkeyed up to seq 3" in err
    new = lines(log)
    new[1] = new[1].replace('"old"', '"forged"')
    rewrite(log, new)
    broken("edited", mentions="entry 2 (line 2) was edited")


# --------------------------------------------------------------------------- write-ahead


def test_an_intent_that_cannot_be_written_stops_the_command_before_it_acts(tmp_path, monkeypatch):
    target = tmp_path / "c.yaml"
    monkeypatch.setenv("PRONTUARIO_AUDIT_LOG", str(tmp_path / "a-directory"))
    (tmp_path / "a-directory").mkdir()
    result = run("inventory", "init", str(target), "--yes")
    assert result.code == ExitCode.IO_ERROR and not target.exists()
    assert "inventory init: nothing was done, because its audit entry could not be written first" in result.err


def test_a_corrupt_last_line_stops_the_command_before_it_acts(log, tmp_path):
    fill(log, 2)
    log.path.write_text(log.path.read_text() + '{"seq": 3, "half a line')
    target = tmp_path / "c.yaml"
    result = run("inventory", "init", str(target), "--yes")
    assert result.code == ExitCode.INTEGRITY and not target.exists()
    assert "last line is not a valid entry" in result.err and "nothing was done" in result.err


def test_an_unreadable_key_stops_the_command_before_it_acts(log, tmp_path):
    fill(log, 1)
    os.chmod(log.key_path, 0o644)
    target = tmp_path / "c.yaml"
    result = run("inventory", "init", str(target), "--yes")
    assert result.code == ExitCode.PERMISSION and not target.exists() and "chmod 600" in result.err


def test_a_runbook_step_does_not_run_without_its_intent(log):
    from prontuario_cli.runbook.state import RunState
    from tests.test_runbook import Toy

    with pytest.raises(KeyboardInterrupt):
        Toy(stop_after="check").run()
    log.path.write_text(log.path.read_text() + "garbage\n")
    toy = Toy()
    with pytest.raises(AuditUnwritable):
        toy.run(resume=True)
    assert toy.calls == []
    assert "change" not in RunState.load(toy.state_path).steps


def test_an_outcome_that_cannot_be_written_is_said(log):
    with pytest.raises(AuditUnwritable, match=r"ran \(ok\) but its outcome could not be recorded") as info, action(log, "models pull", {}):
        log.path.rename(log.path.with_name("moved.jsonl"))
        log.path.mkdir()
    assert "started with no outcome" in info.value.hint


def _killed_mid_action(path: str) -> None:
    with action(AuditLog(path), "gcp promote", {"instance": "db-replica"}):
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_killed_command_shows_no_outcome_recorded(log):
    fill(log, 1)
    child = multiprocessing.get_context("fork").Process(target=_killed_mid_action, args=(str(log.path),))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    code, report, err = verify_cli()
    assert code == ExitCode.OK and report["intact"]
    assert [w["kind"] for w in report["warnings"]] == ["no-outcome"]
    assert "entry 2 (line 2): 'gcp promote' started" in err and "no outcome recorded" in err
    show = run("audit", "show", "--json")
    assert show.json()["entries"][-1]["outcome"] == "no outcome recorded" and "no outcome recorded" in show.err


# --------------------------------------------------------------------------- real outcomes


def outcome(command: str) -> dict:
    rows = [e for e in run("audit", "show", "--json").json()["entries"] if e["command"] == command]
    return rows[-1]


def test_a_drill_outcome_is_its_verdict_and_exit_code(monkeypatch):
    from prontuario_cli import drill
    from prontuario_cli.clock import utc_now
    from prontuario_cli.drill.journal import Journal

    def runner(verdict):
        def run_drill(inventory, experiment, say, profile=None, progress=None):
            journal = Journal("failover", "kill", "run-1", "cluster.yaml", None, utc_now(), verdict=verdict)
            journal.rollback = "complete"
            return journal

        return run_drill

    monkeypatch.setattr(drill, "lab_profile", lambda inventory: None)
    for verdict, code in (("target-missed", 10), ("rollback-failed", 13), ("passed", 0)):
        monkeypatch.setattr(drill, "run", runner(verdict))
        result = run("-i", str(EXAMPLE), "drill", "failover", "--mode", "kill", "--yes", "--json")
        assert result.code == code, result.err
        entry = outcome("drill failover")
        assert (entry["outcome"], entry["exit_code"], entry["details"]["verdict"]) == (verdict, code, verdict)


def test_gcp_promote_and_failback_record_their_real_result(monkeypatch):
    from prontuario_cli.gcp.failback import Failback, FailbackReport
    from prontuario_cli.gcp.promote import PromotePlan, PromoteReport, Promotion

    def report(completed: bool) -> PromoteReport:
        return PromoteReport(
            instance="prontuario-pg-replica", drill=False, run_id="r1", reason="test", resumed=False, completed=completed,
            steps=(), macs=(), operation="op-1", rto_s=95.0, rto_from="now", rpo_s=1.0, rto_target_s=60, rpo_target_s=5,
            lag=None, state_file="s.json",
        )

    plan = PromotePlan(instance="prontuario-pg-replica", drill=False, resume=False, macs=(), instance_state="replica", steps=("promote",))
    monkeypatch.setattr(Promotion, "preview", lambda self, resume=False: plan)
    for completed, verdict, code in ((True, "completed", 0), (False, "incomplete", 20)):
        monkeypatch.setattr(Promotion, "run", lambda self, resume=False, completed=completed: report(completed))
        result = run("-i", str(EXAMPLE), "gcp", "promote", "--reason", "both Macs lost", "--yes", "--json")
        assert result.code == code, result.err
        entry = outcome("gcp promote")
        assert (entry["outcome"], entry["exit_code"]) == (verdict, code) and entry["details"]["rto_met"] is False

    monkeypatch.setattr(Failback, "plan", lambda self: ["freeze"])
    monkeypatch.setattr(Failback, "run", lambda self, resume=False: FailbackReport("prontuario-pg-replica", "r2", False, False, (), None, None, None, "f.json"))
    result = run("-i", str(EXAMPLE), "gcp", "failback", "--yes", "--json")
    assert result.code == ExitCode.FAILED
    assert (outcome("gcp failback")["outcome"], outcome("gcp failback")["exit_code"]) == ("incomplete", 20)


@pytest.mark.parametrize("argv", [("lab", "down"), ("lab", "install")], ids=["down", "install"])
def test_a_declined_lab_command_is_audited(tmp_path, argv):
    extra = ("--dir", str(tmp_path / "lab")) if argv[1] == "down" else ()
    result = run(*argv, *extra, tty=True, stdin="no\n")
    assert result.code == ExitCode.ABORTED, result.err
    entry = outcome(" ".join(argv))
    assert entry["outcome"] == "declined" and entry["exit_code"] == ExitCode.ABORTED


def test_a_declined_prompt_outside_any_audited_block_is_audited_too(log):
    import typer

    from prontuario_cli.cli.common import Declined, Env, confirm
    from tests.helpers import _Stream

    app = typer.Typer()

    @app.command()
    def pull(name: str = "llm") -> None:
        confirm(f"install {name}?", yes=False)

    env = Env(stdout=_Stream(True), stderr=_Stream(True), stdin=_Stream(True, "n\n"))
    with pytest.raises(Declined):
        app(args=["--name", "whisper"], standalone_mode=False, obj=env)
    intent, declined = log.entries()
    assert intent["phase"] == "intent" and intent["args"] == {"name": "whisper"}
    assert declined["outcome"] == "declined" and declined["id"] == intent["id"]
    assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600
