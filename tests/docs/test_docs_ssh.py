"""Two "Macs" behind a real sshd on loopback: the push goes Mac to Mac with rsync over SSH, host key
checked; ``docs status`` reads each Mac's record and compares the Macs over SSH.

Each Mac's document directory is a directory on this machine reached through the test sshd
(throwaway keys), exactly as a real Mac is reached; Patroni's answer (who leads) is given.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from prontuario_cli.errors import IntegrityError
from tests.sshd import keygen

MAC1, MAC2 = "mac-studio-1", "mac-studio-2"


@pytest.fixture
def macs(sshd, tmp_path, isolated_state):
    if not shutil.which("rsync"):
        pytest.fail("rsync is not installed: run ./install.sh")
    ssh = f"{{port: {sshd['port']}, user: root, key: {sshd['key']}, known_hosts: {sshd['known_hosts']}, connect_timeout_s: 5}}"
    path = tmp_path / "cluster.yaml"
    path.write_text(f"""version: 1
nodes:
  - {{name: {MAC1}, role: primary, address: 127.0.0.1, os: debian, ssh: {ssh}, docs_dir: {tmp_path / 'mac1'}, ports: {{patroni: 1}}}}
  - {{name: {MAC2}, role: secondary, address: 127.0.0.1, os: debian, ssh: {ssh}, docs_dir: {tmp_path / 'mac2'}, ports: {{patroni: 2}}}}
  - {{name: witness, role: witness, address: 127.0.0.1, os: debian, ssh: {ssh}}}
paths: {{state_dir: {isolated_state}}}
docs:
  peer_ssh: {{key: {sshd['key']}, known_hosts: {sshd['known_hosts']}, user: root}}
  timeout_s: 60
""")
    (tmp_path / "mac1").mkdir()
    return {"path": path, "tmp": tmp_path, "mac1": tmp_path / "mac1", "mac2": tmp_path / "mac2", "sshd": sshd}


def inventory(macs):
    from prontuario_cli.inventory import load_inventory

    return load_inventory(macs["path"])


def test_the_leader_pushes_over_ssh_and_status_compares_the_macs_over_ssh(macs, monkeypatch):
    from prontuario_cli.docs import sync as syncing
    from prontuario_cli.docs.status import gather

    inv = inventory(macs)
    (macs["mac1"] / "scan.pdf").write_bytes(b"%PDF-1.7 " * 1000)
    done = syncing.sync_here(inv, MAC1, leader=MAC1)
    assert done.outcome == "synced" and done.files_sent == 1 and done.bytes_sent > 0
    assert (macs["mac2"] / "scan.pdf").read_bytes() == (macs["mac1"] / "scan.pdf").read_bytes()
    monkeypatch.setattr(syncing, "find_leader", lambda inventory: MAC1)
    (macs["mac1"] / "new.pdf").write_text("not yet pushed")
    report = gather(inv, timeout_s=20)
    assert report.status.name == "OK", report.summary
    assert report.pending["files_to_send"] == 1 and report.last_sync_age_s < 30
    assert [m["dir_exists"] for m in report.macs] == [True, True]


def test_a_changed_host_key_is_refused_and_nothing_moves(macs):
    from prontuario_cli.docs.state import load_local
    from prontuario_cli.docs.sync import sync_here

    impostor = keygen(macs["tmp"] / "impostor")
    wrong = macs["tmp"] / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{macs['sshd']['port']} {impostor}\n")
    text = macs["path"].read_text().replace(f"known_hosts: {macs['sshd']['known_hosts']}, user: root}}", f"known_hosts: {wrong}, user: root}}")
    macs["path"].write_text(text)
    (macs["mac1"] / "scan.pdf").write_text("x")
    with pytest.raises(IntegrityError, match="host key does not match"):
        sync_here(inventory(macs), MAC1, leader=MAC1)
    assert not Path(macs["mac2"]).exists()
    assert "host key" in load_local(Path(inventory(macs).paths.state_dir), MAC1).last_error["message"]
