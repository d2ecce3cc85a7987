"""Documents through a failover, against the real lab: the direction follows Patroni's leader.

A document written on the leader reaches the other Mac; a sync run on (or aimed from) the
replica moves nothing; after a Patroni switchover the new leader's documents reach the old
leader and the direction has reversed. Each Mac's document directory is the lab's
(``LAB/docs/NODE``, from the lab's inventory); it is removed at the end, so the lab is left
as found (a leader without a document directory and no record: documents not set up).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from prontuario_cli.errors import ExitCode
from tests.helpers import poll, run

pytestmark = pytest.mark.lab

SETTLE_S = 120  # a leader with a streaming sync standby (after another test's drill, or the switchover)


@pytest.fixture
def docs_lab(lab):
    from prontuario_cli.docs.plan import docs_dir_of
    from prontuario_cli.inventory import load_inventory

    inventory = load_inventory(lab.inventory_path)
    dirs = {node.name: Path(docs_dir_of(inventory, node)) for node in inventory.macs}
    assert all(str(d).startswith(str(Path(lab.dir))) for d in dirs.values())
    try:
        yield inventory, dirs
    finally:
        shutil.rmtree(Path(lab.dir) / "docs", ignore_errors=True)


def settled(inventory) -> tuple[str, str]:
    """Poll until Patroni has a leader and a streaming sync standby; (leader, standby)."""
    from prontuario_cli.cluster import patroni

    def roles():
        try:
            view = patroni.cluster_view(inventory)
        except Exception:  # noqa: BLE001 - not up yet: keep polling
            return None
        standby = patroni.sync_standby(view)
        return (view.leader, standby) if view.leader and standby and not view.paused else None

    return poll(roles, SETTLE_S, "a Patroni leader with a streaming sync standby", every=0.5)


def docs(lab, *args: str):
    return run("-i", str(lab.inventory_path), "docs", *args)


def _switched_over(inventory, leader: str, candidate: str) -> bool:
    from prontuario_cli.cluster import patroni
    from prontuario_cli.errors import OperationFailed

    try:
        patroni.switchover(inventory, leader, candidate)
    except OperationFailed as exc:
        if "no good candidates" in exc.message:
            return False
        raise
    return True


def test_documents_follow_the_leader_through_a_switchover(lab, docs_lab):
    inventory, dirs = docs_lab
    leader, standby = settled(inventory)
    dirs[leader].mkdir(parents=True, exist_ok=True)
    (dirs[leader] / "before.pdf").write_bytes(b"%PDF written on the leader " + str(time.time()).encode())

    pushed = docs(lab, "sync", "--once", "--yes", "--json")  # from anywhere: runs on the leader
    assert pushed.code == ExitCode.OK, pushed.err
    result = pushed.json()
    assert (result["outcome"], result["source"], result["target"]) == ("synced", leader, standby)
    assert result["files_sent"] == 1 and result["bytes_sent"] > 0
    assert (dirs[standby] / "before.pdf").read_bytes() == (dirs[leader] / "before.pdf").read_bytes()

    # On (or aimed from) the replica: nothing moves, and it says why.
    (dirs[standby] / "replica-only.pdf").write_text("written on the replica")
    on_replica = docs(lab, "sync", "--once", "--node", standby, "--yes", "--json")
    assert on_replica.code == ExitCode.OK and on_replica.json()["outcome"] == "skipped"
    assert f"{standby} is not the leader ({leader} is)" in on_replica.err
    aimed = docs(lab, "sync", "--once", "--from", standby, "--yes", "--json")
    assert aimed.code == ExitCode.REFUSED and "not the leader" in aimed.err and not aimed.out.strip()
    assert not (dirs[leader] / "replica-only.pdf").exists()

    status = docs(lab, "status", "--json")
    assert status.code == ExitCode.OK, status.out
    seen = status.json()
    assert (seen["source"], seen["target"], seen["status"]) == (leader, standby, "ok")
    assert seen["pending"]["to_delete"] == 1  # the replica's own file: the next push removes it (the primary wins)

    # A document the leader takes in its last moments, never pushed before the switchover.
    (dirs[leader] / "last-moments.pdf").write_text("written on the old leader just before the switchover")

    # Switch over: the standby leads now. Patroni takes a standby as a candidate only once it
    # holds a copy of every permanent logical slot (the cloud subscription's): right after
    # another test's failover it may answer 412 "no good candidates" for a few seconds.
    poll(lambda: _switched_over(inventory, leader, standby), SETTLE_S, f"Patroni to accept {standby} as the switchover candidate", every=1.0)
    poll(lambda: settled(inventory) == (standby, leader), SETTLE_S, f"{standby} leading with {leader} as sync standby", every=0.5)
    (dirs[standby] / "after.pdf").write_text("written on the new leader")

    back = docs(lab, "sync", "--once", "--yes", "--json")
    assert back.code == ExitCode.OK, back.err
    result = back.json()
    assert (result["source"], result["target"]) == (standby, leader)  # the direction reversed
    assert (dirs[leader] / "after.pdf").read_text() == "written on the new leader"
    assert (dirs[leader] / "replica-only.pdf").exists()  # what the new leader holds, the old one gets
    assert not (dirs[leader] / "last-moments.pdf").exists()  # the primary wins...
    kept = list((dirs[leader] / ".prontuario-replaced").glob("*/last-moments.pdf"))
    assert len(kept) == 1 and result["deleted"] == 1  # ...but the old leader's copy is kept aside

    # The old leader is the replica now: a run there moves nothing.
    (dirs[leader] / "stale-writer.pdf").write_text("written on the old leader after the switchover")
    old = docs(lab, "sync", "--once", "--node", leader, "--yes", "--json")
    assert old.code == ExitCode.OK and old.json()["outcome"] == "skipped"
    assert not (dirs[standby] / "stale-writer.pdf").exists()

    seen = docs(lab, "status", "--json").json()
    assert (seen["source"], seen["target"]) == (standby, leader) and seen["last_sync_age_s"] < 30
    everything = run("-i", str(lab.inventory_path), "status", "--json", "--timeout", "10").json()
    (row,) = [r for r in everything["rows"] if r["component"] == "docs"]
    assert row["status"] == "ok" and row["details"]["source"] == standby, row
