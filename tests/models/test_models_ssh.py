"""Two "Macs" behind a real sshd on loopback: pull, verify, sync with rsync, repair, resume, host keys.

Each Mac is a store directory on this machine reached through the test sshd (throwaway
keys); the operator's commands go over SSH exactly as they would to a Mac, and the
model's bytes go "Mac to Mac" with rsync over SSH.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import poll, run
from tests.models.test_models_store import make_model
from tests.sshd import keygen

PRONTUARIO = str(Path(sys.executable).parent / "prontuario")
MiB = 1 << 20


@pytest.fixture
def macs(sshd, tmp_path):
    """An inventory of two Macs (stores mac1/ and mac2/) reached through the test sshd."""
    if not shutil.which("rsync"):
        pytest.fail("rsync is not installed: run ./install.sh")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    inventory = tmp_path / "cluster.yaml"
    ssh = f"{{port: {sshd['port']}, user: root, key: {sshd['key']}, known_hosts: {sshd['known_hosts']}, connect_timeout_s: 5}}"
    inventory.write_text(f"""version: 1
nodes:
  - {{name: mac-studio-1, role: primary, address: 127.0.0.1, os: debian, ssh: {ssh}, models_dir: {tmp_path / 'mac1'}}}
  - {{name: mac-studio-2, role: secondary, address: 127.0.0.1, os: debian, ssh: {ssh}, models_dir: {tmp_path / 'mac2'}}}
  - {{name: witness, role: witness, address: 127.0.0.1, os: debian, ssh: {ssh}}}
models:
  manifests: {manifests}
  prontuario: {PRONTUARIO}
  rsync: rsync
  peer_ssh: {{key: {sshd['key']}, known_hosts: {sshd['known_hosts']}, user: root}}
  timeout_s: 120
""")
    return {"inventory": inventory, "tmp": tmp_path, "mac1": tmp_path / "mac1", "mac2": tmp_path / "mac2", "sshd": sshd}


def cli(macs, *args: str):
    result = run("-i", str(macs["inventory"]), *args)
    return result


def installed(macs, sizes: dict[str, int]) -> str:
    """Lock a model made here and pull it into mac-studio-1 over SSH; its version."""
    source = make_model(macs["tmp"] / "src", sizes)
    locked = cli(macs, "models", "lock", "tiny", "--from-dir", str(source), "--role", "llm", "--origin", "tests", "--json")
    assert locked.code == 0, locked.err
    pulled = cli(macs, "models", "pull", "tiny", "--from-dir", str(source), "--node", "mac-studio-1", "--yes", "--json")
    assert pulled.code == 0, pulled.err
    return locked.json()["version"]


def test_pull_then_sync_makes_both_macs_agree_and_a_resync_moves_nothing(macs):
    version = installed(macs, {"config.json": 500, "weights/a.bin": 6 * MiB, "weights/b.bin": 2 * MiB})
    synced = cli(macs, "models", "sync", "tiny", "--from", "mac-studio-1", "--to", "mac-studio-2", "--yes", "--json")
    assert synced.code == 0, synced.err
    first = synced.json()
    assert first["version"] == version and first["received_bytes"] >= 8 * MiB
    assert os.readlink(macs["mac2"] / "tiny" / "current") == version
    status = cli(macs, "models", "status", "--json").json()
    assert status["agree"] == {"tiny": True}
    assert {m["node"] for m in status["models"] if m["current"] == version} == {"mac-studio-1", "mac-studio-2"}
    again = cli(macs, "models", "sync", "tiny", "--from", "mac-studio-1", "--to", "mac-studio-2", "--yes", "--json")
    assert again.code == 0, again.err
    assert again.json()["received_bytes"] == 0  # already there and verified: nothing moves
    verified = cli(macs, "models", "verify", "--json")
    assert verified.code == 0 and {c["node"] for c in verified.json()["checks"]} == {"mac-studio-1", "mac-studio-2"}


def test_a_corrupted_file_is_quarantined_then_repaired_by_sync_with_a_fraction_of_its_bytes(macs):
    version = installed(macs, {"config.json": 500, "weights/big.bin": 32 * MiB})
    assert cli(macs, "models", "sync", "tiny", "--from", "mac-studio-1", "--to", "mac-studio-2", "--yes", "--json").code == 0
    big = macs["mac2"] / "tiny" / version / "weights/big.bin"
    st = big.stat()
    with open(big, "r+b") as f:  # 1 MiB of garbage in the middle, the old mtime put back
        f.seek(10 * MiB)
        f.write(os.urandom(MiB))
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns))

    found = cli(macs, "models", "verify", "tiny", "--node", "mac-studio-2", "--json")
    assert found.code == 65, found.err
    (check,) = found.json()["checks"]
    assert [(p["path"], p["kind"]) for p in check["problems"]] == [("weights/big.bin", "corrupted")]
    status = cli(macs, "models", "status", "--node", "mac-studio-2", "--json").json()
    assert status["models"][0]["quarantined"] == [version] and status["models"][0]["status"] == "critical"
    refused = cli(macs, "models", "activate", "tiny", version, "--node", "mac-studio-2", "--yes", "--json")
    assert refused.code != 0 and "quarantined" in refused.err

    repaired = cli(macs, "models", "sync", "tiny", "--from", "mac-studio-1", "--to", "mac-studio-2", "--yes", "--json")
    assert repaired.code == 0, repaired.err
    data = repaired.json()
    assert data["repaired_files"] == 1 and data["received_bytes"] < 4 * MiB, data  # far less than the 32 MiB file
    assert cli(macs, "models", "verify", "tiny", "--node", "mac-studio-2", "--deep", "--json").code == 0
    assert cli(macs, "models", "status", "--node", "mac-studio-2", "--json").json()["models"][0]["quarantined"] == []


def test_an_interrupted_sync_resumes_without_starting_from_zero(macs):
    version = installed(macs, {f"weights/part-{i}.bin": 48 * MiB for i in range(4)})
    staging = macs["mac2"] / "tiny" / ".staging" / version
    argv = [PRONTUARIO, "-i", str(macs["inventory"]), "models", "sync", "tiny", "--from", "mac-studio-1", "--to", "mac-studio-2", "--yes", "--json"]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    source = macs["mac1"] / "tiny" / version

    def part_way() -> bool:
        """True once the first sync ended, or once it is part of the way and the link dropped."""
        if first.poll() is not None:
            return True
        done = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file()) if staging.exists() else 0
        if done < 60 * MiB:
            return False
        # the link drops: the sending end dies mid-file
        out = subprocess.run(["pgrep", "-f", f"rsync --server --sender .*{source}"], capture_output=True, text=True).stdout.split()
        for pid in out:
            os.kill(int(pid), signal.SIGKILL)
        seen["killed"] = bool(out)
        return True

    seen = {"killed": False}
    poll(part_way, 60, "the first sync part of the way", every=0.02)
    killed = seen["killed"]
    first.communicate(timeout=60)
    assert killed, "the first sync ended before it could be interrupted"
    assert first.returncode != 0 and staging.exists()
    kept = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
    assert kept >= 48 * MiB
    second = cli(macs, "models", "sync", "tiny", "--from", "mac-studio-1", "--to", "mac-studio-2", "--yes", "--json")
    assert second.code == 0, second.err
    assert second.json()["received_bytes"] <= 4 * 48 * MiB - kept + 4 * MiB  # what was kept did not travel again
    assert os.readlink(macs["mac2"] / "tiny" / "current") == version
    assert not staging.exists()


def test_a_changed_host_key_is_refused_and_the_target_is_untouched(macs, tmp_path):
    version = installed(macs, {"weights/a.bin": 2 * MiB})
    impostor = keygen(tmp_path / "impostor")
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{macs['sshd']['port']} {impostor}\n")
    text = macs["inventory"].read_text().replace(f"known_hosts: {macs['sshd']['known_hosts']}, user: root}}", f"known_hosts: {wrong}, user: root}}")
    macs["inventory"].write_text(text)
    refused = cli(macs, "models", "sync", "tiny", "--from", "mac-studio-1", "--to", "mac-studio-2", "--yes", "--json")
    assert refused.code != 0
    assert "host key" in refused.err and "Traceback" not in refused.err
    assert not (macs["mac2"] / "tiny" / "current").exists() and not (macs["mac2"] / "tiny" / version).exists()


def test_a_source_that_does_not_verify_is_refused_and_the_receive_started_meanwhile_changes_nothing(macs):
    """The target's receive starts while the source verifies; it stops at its gate when the source fails."""
    version = installed(macs, {"config.json": 500, "weights/a.bin": 2 * MiB})
    damaged = macs["mac1"] / "tiny" / version / "weights/a.bin"
    data = bytearray(damaged.read_bytes())
    data[MiB] ^= 0x40
    damaged.write_bytes(bytes(data))
    refused = cli(macs, "models", "sync", "tiny", "--from", "mac-studio-1", "--to", "mac-studio-2", "--yes", "--json")
    assert refused.code == 65, refused.err
    assert "mac-studio-1: tiny does not verify there" in refused.err and "it cannot be the source" in refused.err
    target = macs["mac2"] / "tiny"
    assert not (target / "current").exists() and not (target / version).exists() and not (target / ".staging").exists()


def test_bad_input_is_one_clear_line(macs, tmp_path):
    (tmp_path / "manifests" / "evil.yaml").write_text(
        f"format: 1\nname: evil\nrole: llm\nruntime: mlx-lm\nsource: {{origin: x}}\nfiles:\n  - {{path: ../../etc/passwd, size: 1, sha256: {'a' * 64}}}\n"
    )
    evil = cli(macs, "models", "pull", "evil", "--from-dir", str(tmp_path), "--node", "mac-studio-1", "--yes")
    assert evil.code != 0 and "leaves the model directory" in evil.err and "Traceback" not in evil.err
    missing = cli(macs, "models", "sync", "nosuch", "--from", "mac-studio-1", "--to", "mac-studio-2", "--yes")
    assert missing.code == 78 and "no manifest" in missing.err
    (tmp_path / "manifests" / "broken.yaml").write_text("name: [unclosed\n")
    broken = cli(macs, "models", "sync", "broken", "--from", "mac-studio-1", "--to", "mac-studio-2", "--yes")
    assert broken.code == 78 and "malformed YAML" in broken.err
    same = cli(macs, "models", "sync", "tiny", "--from", "mac-studio-1", "--to", "mac-studio-1", "--yes")
    assert same.code == 64


def test_json_of_a_remote_verify_is_the_local_one(macs):
    installed(macs, {"weights/a.bin": MiB})
    local = run("models", "verify", "--store", str(macs["mac1"]), "--json").json()
    remote = cli(macs, "models", "verify", "--node", "mac-studio-1", "--json").json()
    assert [c["version"] for c in local["checks"]] == [c["version"] for c in remote["checks"]]
    assert json.dumps(remote)  # plain JSON for scripts


def test_prontuario_status_has_a_row_per_model(macs):
    version = installed(macs, {"weights/a.bin": MiB})
    result = cli(macs, "status", "--json")
    row = next(r for r in result.json()["rows"] if r["name"] == "model tiny")
    assert row["status"] == "critical" and "mac-studio-2: not installed" in row["problem"]  # a failover would lose it
    assert cli(macs, "models", "sync", "tiny", "--from", "mac-studio-1", "--to", "mac-studio-2", "--yes").code == 0
    row = next(r for r in cli(macs, "status", "--json").json()["rows"] if r["name"] == "model tiny")
    assert row["status"] == "ok" and row["state"] == f"{version} on 2 nodes"
