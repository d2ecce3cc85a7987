"""Document sync without a cluster: the inventory section, the rsync planned, rsync's answer parsed,
the state record, the status verdict, and real pushes between two local directories (a lab-shaped
inventory: both Macs are this machine) with the leader given."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from prontuario_cli.errors import ConfigError, ExitCode, LockedError, OperationFailed, RefusedError, UsageError
from prontuario_cli.inventory import parse_inventory
from prontuario_cli.report import Status
from tests.helpers import EXAMPLE, run

MAC1, MAC2 = "mac-studio-1", "mac-studio-2"


def lab_like(tmp_path: Path, extra: str = "") -> Path:
    """An inventory whose two Macs are directories here (``lab.dir`` set: no SSH between them)."""
    path = tmp_path / "cluster.yaml"
    path.write_text(f"""version: 1
nodes:
  - {{name: {MAC1}, role: primary, address: 127.0.0.1, os: debian, docs_dir: {tmp_path / 'docs' / MAC1}, ports: {{patroni: 1}}}}
  - {{name: {MAC2}, role: secondary, address: 127.0.0.1, os: debian, docs_dir: {tmp_path / 'docs' / MAC2}, ports: {{patroni: 2}}}}
  - {{name: witness, role: witness, address: 127.0.0.1, os: debian}}
lab: {{dir: {tmp_path}}}
{extra}""")
    return path


def load(path: Path):
    from prontuario_cli.inventory import load_inventory

    return load_inventory(path)


# --------------------------------------------------------------------------- inventory


def test_the_docs_section_has_the_brief_defaults_and_the_example_documents_it():
    inv = parse_inventory(EXAMPLE.read_text(), str(EXAMPLE))
    assert inv.docs.interval_s == 5 and inv.docs.dir == "/var/lib/prontuario/documents"
    assert inv.docs.peer_ssh is None and inv.docs.rsync is None  # models.peer_ssh / models.rsync
    assert "docs:" in EXAMPLE.read_text() and Path("cluster.example.yaml").resolve() == EXAMPLE.resolve()


def test_docs_mistakes_name_file_line_and_key_all_at_once():
    text = EXAMPLE.read_text().replace("  interval_s: 5                        # each Mac", "  intervall_s: 5  # each Mac")
    text = text.replace("stale_critical_s: 300", "stale_critical_s: 10")
    text = text.replace("    role: secondary\n", "    role: secondary\n    docs_dir: relative/docs\n")
    with pytest.raises(ConfigError) as caught:
        parse_inventory(text, "cluster.yaml")
    problems = "\n".join(caught.value.problems)
    assert "docs.intervall_s: unknown key (did you mean 'interval_s'?)" in problems
    assert "docs.stale_critical_s: 10 s is shorter than stale_warning_s 30 s" in problems
    assert "nodes[1].docs_dir: 'relative/docs' must be an absolute path" in problems
    assert all(p.startswith("cluster.yaml:") for p in caught.value.problems)


def test_a_root_document_directory_is_refused():
    with pytest.raises(ConfigError) as caught:
        parse_inventory(EXAMPLE.read_text().replace("dir: /var/lib/prontuario/documents", "dir: /"), "c.yaml")
    assert "docs.dir: must not be /" in caught.value.one_line()


def test_the_lab_inventory_gives_each_mac_a_document_directory_inside_the_lab():
    from prontuario_cli.docs.plan import docs_dir_of
    from prontuario_cli.lab import config
    from prontuario_cli.lab.spec import LabSpec

    inv = parse_inventory(config.cluster_yaml(LabSpec(dir="/srv/lab", base_port=15500)), "lab/cluster.yaml")
    assert {n.name: docs_dir_of(inv, n) for n in inv.macs} == {MAC1: f"/srv/lab/docs/{MAC1}", MAC2: f"/srv/lab/docs/{MAC2}"}
    assert inv.node("witness").docs_dir is None


# --------------------------------------------------------------------------- plan


def test_between_real_macs_rsync_goes_over_ssh_with_the_host_key_checked():
    from prontuario_cli.docs.plan import route, rsync_argv

    inv = parse_inventory(EXAMPLE.read_text(), "c.yaml")
    r = route(inv, MAC2)  # after a failover: mac-studio-2 pushes to mac-studio-1
    assert (r.source, r.target, r.over_ssh) == (MAC2, MAC1, True)
    argv = rsync_argv(inv, r)
    assert argv[:3] == ["rsync", "-a", "--delete"] and "--partial-dir=.rsync-partial" in argv
    assert "--timeout=30" in argv and "--max-delete=1000" in argv and "--itemize-changes" in argv
    assert "--exclude=/.prontuario-replaced/" in argv and "--backup" in argv
    assert "--backup-dir=.prontuario-replaced/20261129T031245Z" in rsync_argv(inv, r, stamp="20261129T031245Z")
    transport = argv[argv.index("-e") + 1]
    assert "StrictHostKeyChecking=yes" in transport and "UserKnownHostsFile=/var/lib/prontuario/.ssh/known_hosts" in transport
    assert "BatchMode=yes" in transport and "-i /var/lib/prontuario/.ssh/id_ed25519" in transport
    assert argv[-2:] == ["/var/lib/prontuario/documents/", "prontuario@10.40.0.11:/var/lib/prontuario/documents/"]
    assert "--dry-run" in rsync_argv(inv, r, dry_run=True) and "--max-delete=0" in rsync_argv(inv, r, max_delete=0)
    assert "StrictHostKeyChecking=accept-new" in rsync_argv(inv, r, accept_new=True)[argv.index("-e") + 1]


def test_a_lab_pushes_between_local_directories_and_the_witness_is_never_a_side(tmp_path):
    from prontuario_cli.docs.plan import other_mac, route, rsync_argv

    inv = load(lab_like(tmp_path))
    r = route(inv, MAC1)
    assert not r.over_ssh and "-e" not in rsync_argv(inv, r)
    assert r.destination == f"{tmp_path / 'docs' / MAC2}/"
    with pytest.raises(UsageError):
        other_mac(inv, "witness")


ITEMIZED = """\
<f+++++++++ 2026/11/scan-001.pdf
<f.st...... consent.pdf
cd+++++++++ 2026/11/
*deleting   old/draft.pdf
.d..t...... ./

Number of files: 6 (reg: 3, dir: 3)
Total bytes sent: 12,345
Literal data: 10000 bytes
"""


def test_itemized_changes_are_counted_and_stats_read():
    from prontuario_cli.connect.rsync import stat_number
    from prontuario_cli.docs.plan import parse_itemized

    changes = parse_itemized(ITEMIZED)
    assert (changes.files_sent, changes.deleted, changes.other, changes.total) == (2, 1, 2, 5)
    assert "deleting old/draft.pdf" in changes.paths
    assert stat_number(ITEMIZED, "Total bytes sent") == 12345 and stat_number(ITEMIZED, "Literal data") == 10000
    assert parse_itemized("").total == 0


def test_models_still_refuse_openrsync_through_the_shared_check():
    from prontuario_cli.connect.rsync import check_rsync as shared
    from prontuario_cli.models.receive import check_rsync

    assert check_rsync is shared
    with pytest.raises(ConfigError, match="openrsync"):
        shared("openrsync: protocol version 29", "mac-studio-1")


# --------------------------------------------------------------------------- state and verdict


def test_the_record_keeps_the_last_success_across_a_failure(tmp_path):
    from prontuario_cli.docs.state import load_local, record

    record(tmp_path, MAC1, {"outcome": "synced", "to": MAC2}, ok={"to": MAC2, "bytes_sent": 10})
    after = record(tmp_path, MAC1, {"outcome": "failed", "to": MAC2}, error="rsync exited 30")
    assert after.last_ok["bytes_sent"] == 10 and after.last_error["message"] == "rsync exited 30"
    assert load_local(tmp_path, MAC1) == after and after.last_run["outcome"] == "failed"


def test_a_look_on_a_mac_reads_its_directory_and_record_in_one_command(tmp_path):
    from prontuario_cli.cluster.nodes import run_local
    from prontuario_cli.docs.state import look_command, parse_look, record, state_file

    record(tmp_path, MAC1, {"outcome": "unchanged", "to": MAC2}, ok={"to": MAC2})
    out = run_local(["/bin/sh", "-c", look_command(str(tmp_path), state_file(tmp_path, MAC1))], timeout_s=5).stdout
    exists, state = parse_look(out, MAC1)
    assert exists is True and state.last_ok["to"] == MAC2
    out = run_local(["/bin/sh", "-c", look_command(str(tmp_path / "no such"), state_file(tmp_path, MAC2))], timeout_s=5).stdout
    assert parse_look(out, MAC2) == (False, parse_look("", MAC2)[1]) and parse_look(out, MAC2)[1].last_ok is None


def verdict(*, leader=MAC1, ok_age=2.0, exists=True, error_after=None, diff=None, other_ok=None, compare_error=""):
    from prontuario_cli.docs.state import PushState
    from prontuario_cli.docs.status import MacLook, evaluate
    from prontuario_cli.inventory import Docs

    now = 1_000_000.0
    ok = {"at": "t", "epoch": now - ok_age, "to": MAC2, "bytes_sent": 42} if ok_age is not None else None
    error = {"at": "t", "epoch": now - error_after, "message": "rsync exited 30"} if error_after is not None else None
    looks = {
        MAC1: MacLook(MAC1, "/d1", exists, PushState(MAC1, {"outcome": "synced", "at": "t", "to": MAC2}, ok, error)),
        MAC2: MacLook(MAC2, "/d2", True, PushState(MAC2, None, other_ok, None)),
    }
    return evaluate(Docs(), leader, "no Patroni answered", looks, diff, compare_error, now)


def test_the_verdict_follows_the_age_of_the_leaders_last_success():
    from prontuario_cli.docs.plan import Changes

    fresh = verdict(diff=Changes(1, 0, 0))
    assert fresh.status == Status.OK and (fresh.source, fresh.target) == (MAC1, MAC2)
    assert "1 differences pending" in fresh.summary and fresh.exit_code() == ExitCode.OK
    assert verdict(ok_age=45).status == Status.WARNING
    stale = verdict(ok_age=400)
    assert stale.status == Status.CRITICAL and "critical at 300 s" in stale.summary and int(stale.exit_code()) == 2
    assert verdict(ok_age=None).status == Status.CRITICAL  # the leader never pushed
    failed = verdict(ok_age=10, error_after=3)
    assert failed.status == Status.WARNING and failed.last_error == "rsync exited 30"
    assert verdict(ok_age=10, error_after=20).last_error is None  # an older failure, since healed
    assert verdict(compare_error="exit 12").status == Status.WARNING
    line = fresh.nagios().line("DOCS")
    assert line.startswith("DOCS OK - documents mac-studio-1 → mac-studio-2") and "last_sync_age=2s;30;300;0" in line


def test_no_leader_is_unknown_and_a_leader_without_its_directory_is_named():
    unknown = verdict(leader=None)
    assert unknown.status == Status.UNKNOWN and "no Patroni leader" in unknown.summary
    missing = verdict(exists=False)
    assert missing.status == Status.CRITICAL and "/d1 is missing" in missing.summary and missing.set_up
    not_set_up = verdict(exists=False, ok_age=None)
    assert not not_set_up.set_up and not_set_up.status == Status.WARNING


def test_the_status_row_says_direction_and_age_and_is_absent_when_documents_are_not_set_up():
    from prontuario_cli.status.docs import row_from_docs

    (row,) = row_from_docs(verdict(ok_age=3))
    assert (row.component, row.name, row.status, row.action) == ("docs", "documents", Status.OK, "")
    assert row.state == "mac-studio-1 → mac-studio-2, last sync 3 s ago" and row.details["target"] == MAC2
    (stale,) = row_from_docs(verdict(ok_age=500))
    assert stale.status == Status.CRITICAL and stale.action == "prontuario docs status"
    assert row_from_docs(verdict(exists=False, ok_age=None)) == []


# --------------------------------------------------------------------------- real pushes, here


def test_the_leader_pushes_only_what_changed_and_deletes_what_it_no_longer_has(tmp_path, isolated_state):
    from prontuario_cli.docs.state import load_local
    from prontuario_cli.docs.sync import sync_here

    inv = load(lab_like(tmp_path))
    src, dst = tmp_path / "docs" / MAC1, tmp_path / "docs" / MAC2
    (src / "2026").mkdir(parents=True)
    (src / "2026" / "scan.pdf").write_bytes(b"%PDF" + os.urandom(5000))
    (src / "consent.pdf").write_bytes(b"%PDF consent")
    first = sync_here(inv, MAC1, leader=MAC1)
    assert first.outcome == "synced" and first.files_sent == 2 and first.bytes_sent > 5000
    assert (dst / "2026" / "scan.pdf").read_bytes() == (src / "2026" / "scan.pdf").read_bytes()
    again = sync_here(inv, MAC1, leader=MAC1)
    assert again.outcome == "unchanged" and again.files_sent == 0
    (src / "consent.pdf").unlink()
    (dst / "stray.txt").write_text("written on the replica: the primary wins")
    third = sync_here(inv, MAC1, leader=MAC1)
    assert third.deleted == 2 and sorted(p.name for p in dst.iterdir()) == [".prontuario-replaced", "2026"]
    (kept,) = (dst / ".prontuario-replaced").iterdir()  # deleted there, but kept aside, per run
    assert sorted(p.name for p in kept.iterdir()) == ["consent.pdf", "stray.txt"]
    assert sync_here(inv, MAC1, leader=MAC1).outcome == "unchanged"  # the kept files are never a difference
    state = load_local(isolated_state, MAC1)
    assert state.last_run["outcome"] == "unchanged" and state.last_ok["to"] == MAC2


def test_a_replica_pushes_nothing_and_says_why(tmp_path, isolated_state):
    from prontuario_cli.docs.sync import sync_here

    inv = load(lab_like(tmp_path))
    (tmp_path / "docs" / MAC2).mkdir(parents=True)
    (tmp_path / "docs" / MAC2 / "only-here.pdf").write_text("x")
    done = sync_here(inv, MAC2, leader=MAC1)
    assert done.outcome == "skipped" and "mac-studio-1 is" in done.message and "nothing pushed" in done.message
    assert not (tmp_path / "docs" / MAC1).exists() and not list(isolated_state.glob("docs-sync-*.json"))


def test_an_empty_leader_directory_never_empties_the_other_mac(tmp_path, isolated_state):
    from prontuario_cli.docs.state import load_local
    from prontuario_cli.docs.sync import sync_here

    inv = load(lab_like(tmp_path))
    (tmp_path / "docs" / MAC1).mkdir(parents=True)
    (tmp_path / "docs" / MAC2).mkdir(parents=True)
    (tmp_path / "docs" / MAC2 / "keep.pdf").write_text("x")
    with pytest.raises(RefusedError, match="is empty") as caught:
        sync_here(inv, MAC1, leader=MAC1)
    assert caught.value.exit_code == ExitCode.REFUSED and "--allow-deletes" in caught.value.hint
    assert (tmp_path / "docs" / MAC2 / "keep.pdf").exists()
    state = load_local(isolated_state, MAC1)
    assert state.last_run["outcome"] == "refused" and "is empty" in state.hold["message"]


def test_a_missing_leader_directory_fails_and_is_recorded(tmp_path, isolated_state):
    from prontuario_cli.docs.state import load_local
    from prontuario_cli.docs.sync import sync_here

    inv = load(lab_like(tmp_path))
    with pytest.raises(OperationFailed, match="does not exist"):
        sync_here(inv, MAC1, leader=MAC1)
    assert "does not exist" in load_local(isolated_state, MAC1).last_error["message"]


def test_two_runs_never_overlap(tmp_path, isolated_state):
    from prontuario_cli.docs.state import LOCK_NAME
    from prontuario_cli.docs.sync import sync_here
    from prontuario_cli.files import exclusive_lock

    inv = load(lab_like(tmp_path))
    (tmp_path / "docs" / MAC1).mkdir(parents=True)
    (tmp_path / "docs" / MAC1 / "a.pdf").write_text("a")
    holding = exclusive_lock(isolated_state / LOCK_NAME, "a running sync", lambda held: LockedError(held))
    with holding, pytest.raises(LockedError) as caught:
        sync_here(inv, MAC1, leader=MAC1)
    assert caught.value.exit_code == ExitCode.LOCKED and "a running sync" in caught.value.message
    assert not (tmp_path / "docs" / MAC2).exists()


def test_a_dry_run_lists_what_would_move_and_changes_nothing(tmp_path, isolated_state):
    from prontuario_cli.docs.sync import sync_here

    inv = load(lab_like(tmp_path))
    (tmp_path / "docs" / MAC1).mkdir(parents=True)
    (tmp_path / "docs" / MAC1 / "a.pdf").write_text("a")
    done = sync_here(inv, MAC1, leader=MAC1, dry_run=True)
    assert done.outcome == "dry-run" and done.files_sent == 1 and "would send 1" in done.message
    assert not (tmp_path / "docs" / MAC2).exists() and not list(isolated_state.glob("docs-sync-*.json"))


# --------------------------------------------------------------------------- the CLI


def test_sync_needs_once_and_not_both_node_and_from(tmp_path):
    path = lab_like(tmp_path)
    missing = run("-i", str(path), "docs", "sync", "--json")
    assert missing.code == ExitCode.USAGE and "--once" in missing.err and "Traceback" not in missing.err
    both = run("-i", str(path), "docs", "sync", "--once", "--node", MAC1, "--from", MAC1, "--yes")
    assert both.code == ExitCode.USAGE and len(both.err.strip().splitlines()) == 1


def test_the_cli_push_is_json_and_audited_only_when_something_moved(tmp_path, isolated_state, monkeypatch):
    from prontuario_cli.docs import sync as syncing

    path = lab_like(tmp_path)
    monkeypatch.setattr(syncing, "find_leader", lambda inventory: MAC1)
    (tmp_path / "docs" / MAC1).mkdir(parents=True)
    (tmp_path / "docs" / MAC1 / "a.pdf").write_text("a")
    audit = isolated_state / "audit.jsonl"
    first = run("-i", str(path), "docs", "sync", "--once", "--node", MAC1, "--yes", "--json")
    assert first.code == 0 and first.json()["outcome"] == "synced" and first.json()["target"] == MAC2
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert entries[-1]["command"] == "docs sync" and entries[-1]["outcome"] == "ok"
    second = run("-i", str(path), "docs", "sync", "--once", "--node", MAC1, "--yes", "--json")
    assert second.json()["outcome"] == "unchanged" and len(audit.read_text().splitlines()) == len(entries)
    replica = run("-i", str(path), "docs", "sync", "--once", "--node", MAC2, "--yes", "--json")
    assert replica.code == 0 and replica.json()["outcome"] == "skipped" and "not the leader" in replica.err
    refused = run("-i", str(path), "docs", "sync", "--once", "--from", MAC2, "--yes", "--json")
    assert refused.code == ExitCode.REFUSED and "not the leader" in refused.err
    assert json.loads(audit.read_text().splitlines()[-1])["outcome"] == "refused"
    no_yes = run("-i", str(path), "docs", "sync", "--once", "--node", MAC1)
    assert no_yes.code == ExitCode.USAGE and "--yes" in no_yes.err


def test_docs_status_exits_with_the_nagios_verdict(tmp_path, isolated_state, monkeypatch):
    from prontuario_cli.docs import sync as syncing

    path = lab_like(tmp_path)
    monkeypatch.setattr(syncing, "find_leader", lambda inventory: MAC1)
    (tmp_path / "docs" / MAC1).mkdir(parents=True)
    (tmp_path / "docs" / MAC1 / "a.pdf").write_text("a")
    never = run("-i", str(path), "docs", "status", "--json")
    assert never.code == 2 and never.json()["status"] == "critical" and never.json()["pending"]["files_to_send"] == 1
    assert run("-i", str(path), "docs", "sync", "--once", "--node", MAC1, "--yes", "--json").code == 0
    started = time.monotonic()
    ok = run("-i", str(path), "docs", "status", "--json")
    data = ok.json()
    assert ok.code == 0 and data["status"] == "ok" and data["differences"] == 0, data
    assert (data["source"], data["target"]) == (MAC1, MAC2) and data["last_sync_age_s"] < 30
    nagios = run("-i", str(path), "docs", "status", "--format", "nagios")
    assert nagios.code == 0 and nagios.out.startswith("PRONTUARIO OK - documents mac-studio-1 → mac-studio-2")
    assert time.monotonic() - started < 10


def test_a_failure_is_audited_when_it_starts_not_on_every_run_while_it_lasts(tmp_path, isolated_state, monkeypatch):
    from prontuario_cli.docs import sync as syncing

    path = lab_like(tmp_path)
    monkeypatch.setattr(syncing, "find_leader", lambda inventory: MAC1)
    audit = isolated_state / "audit.jsonl"

    def outcomes() -> list[str]:
        return [e["outcome"] for e in map(json.loads, audit.read_text().splitlines()) if "outcome" in e] if audit.exists() else []

    for _ in range(3):
        failed = run("-i", str(path), "docs", "sync", "--once", "--node", MAC1, "--yes", "--json")
        assert failed.code == ExitCode.FAILED and "does not exist" in failed.err and len(failed.err.strip().splitlines()) == 1
    assert outcomes() == ["failed"]
    (tmp_path / "docs" / MAC1).mkdir(parents=True)
    (tmp_path / "docs" / MAC1 / "a.pdf").write_text("a")
    assert run("-i", str(path), "docs", "sync", "--once", "--node", MAC1, "--yes", "--json").code == 0
    (tmp_path / "docs" / MAC1 / "a.pdf").unlink()
    (tmp_path / "docs" / MAC1).rmdir()
    assert run("-i", str(path), "docs", "sync", "--once", "--node", MAC1, "--yes", "--json").code == ExitCode.FAILED
    assert outcomes() == ["failed", "ok", "failed"]


def test_too_many_deletions_put_deletions_on_hold_until_an_operator_allows_them(tmp_path, isolated_state):
    from prontuario_cli.docs.state import load_local
    from prontuario_cli.docs.status import MacLook, evaluate
    from prontuario_cli.docs.sync import DeletionsHeld, sync_here

    inv = load(lab_like(tmp_path, "docs: {max_delete: 2}\n"))
    src, dst = tmp_path / "docs" / MAC1, tmp_path / "docs" / MAC2
    src.mkdir(parents=True)
    for i in range(6):
        (src / f"d{i}.pdf").write_text(str(i))
    assert sync_here(inv, MAC1, leader=MAC1).files_sent == 6
    for i in range(5):
        (src / f"d{i}.pdf").unlink()  # five gone at once: more than max_delete
    with pytest.raises(DeletionsHeld, match="more than docs.max_delete"):
        sync_here(inv, MAC1, leader=MAC1)
    hold = load_local(isolated_state, MAC1).hold
    assert hold and len(list(dst.glob("d*.pdf"))) == 4  # rsync stopped after two
    (src / "new.pdf").write_text("new")
    with pytest.raises(DeletionsHeld, match="on hold since"):
        sync_here(inv, MAC1, leader=MAC1)
    assert (dst / "new.pdf").exists() and len(list(dst.glob("d*.pdf"))) == 4  # new files go, nothing more is deleted
    state = load_local(isolated_state, MAC1)
    assert state.hold == hold
    seen = evaluate(inv.docs, MAC1, "", {MAC1: MacLook(MAC1, str(src), True, state), MAC2: MacLook(MAC2, str(dst), True, load_local(isolated_state, MAC2))},
                    None, "", time.time())
    assert seen.status != Status.OK and any("on hold" in p for p in seen.problems)
    released = sync_here(inv, MAC1, leader=MAC1, allow_deletes=True)
    assert released.deleted == 3 and sorted(p.name for p in dst.glob("*.pdf")) == ["d5.pdf", "new.pdf"]
    assert load_local(isolated_state, MAC1).hold is None
