"""Bootstrap as an unprivileged SSH user, as on the Macs: root's work through sudo -n, the key as the user.

A throwaway account is made for this module (locked password, a key the test sshd
accepts, passwordless sudo through a drop-in) and removed at the end; a second account
has no sudo rights, to prove a password prompt fails the step instead of hanging it.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from prontuario_cli.errors import ExitCode
from tests.helpers import run
from tests.sshd import SshdFailed, start_sshd, stop_sshd

SUDOER = f"prontuario-bt{os.getpid() % 100000}"
NO_SUDO = f"prontuario-bn{os.getpid() % 100000}"

PLAYBOOK = """format: 1
name: as-a-user
os: debian
steps:
  - name: a root-owned directory
    op: directory
    args: {path: "${prefix}/etc/prontuario", mode: "755"}
  - name: a root-owned file
    op: file
    args: {path: "${prefix}/etc/prontuario/motd", content: "hello\\n"}
  - name: the user's own key
    op: ssh.key
    args: {path: "${prefix}/keys/id_ed25519"}
"""


def _account(name: str, sudo: bool) -> None:
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True, capture_output=True)
    subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)  # locked, but key logins work
    if sudo:
        drop_in = Path(f"/etc/sudoers.d/{name}")
        drop_in.write_text(f"{name} ALL=(ALL) NOPASSWD: ALL\n")
        drop_in.chmod(0o440)


def _remove(name: str) -> None:
    Path(f"/etc/sudoers.d/{name}").unlink(missing_ok=True)
    subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def accounts():
    import tempfile

    if not shutil.which("sudo") or not shutil.which("useradd"):
        pytest.fail("sudo and useradd are needed: run ./install.sh")
    # sshd reads authorized_keys as the user logging in: not under pytest's root-only tmp.
    base = Path(tempfile.mkdtemp(prefix="prontuario-bootstrap-users-", dir="/tmp"))
    base.chmod(0o755)
    handle = None
    try:
        _account(SUDOER, sudo=True)
        _account(NO_SUDO, sudo=False)
        try:
            handle = start_sshd(base / "sshd", users=(SUDOER, NO_SUDO))
        except SshdFailed as exc:
            pytest.fail(str(exc))
        (base / "sshd").chmod(0o755)
        (base / "sshd" / "user_ed25519").chmod(0o644)  # read by this process only; the account is throwaway
        yield {"base": base, "sshd": handle}
    finally:
        if handle is not None:
            stop_sshd(handle)
        _remove(SUDOER)
        _remove(NO_SUDO)
        shutil.rmtree(base, ignore_errors=True)


def write_site(accounts, tmp_path: Path, user: str) -> tuple[Path, Path, Path]:
    sshd = accounts["sshd"]
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "debian-node.yaml").write_text(PLAYBOOK)
    ssh = f"{{port: {sshd['port']}, user: {user}, key: {sshd['key']}, known_hosts: {sshd['known_hosts']}, connect_timeout_s: 5}}"
    inventory = tmp_path / "cluster.yaml"
    inventory.write_text(f"""version: 1
nodes:
  - {{name: mac-studio-1, role: primary, address: 127.0.0.1, os: debian, ssh: {ssh}}}
""")
    account = pwd.getpwnam(user)
    tree = Path(account.pw_dir) / "tree"  # the user's own, as its home is on a Mac: its key goes there
    tree.mkdir(exist_ok=True)
    os.chown(tree, account.pw_uid, account.pw_gid)
    return inventory, books, tree


def test_root_work_goes_through_sudo_and_the_key_belongs_to_the_user(accounts, tmp_path, monkeypatch):
    monkeypatch.setenv("PRONTUARIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PRONTUARIO_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    inventory, books, tree = write_site(accounts, tmp_path, SUDOER)
    done = run("-i", str(inventory), "bootstrap", "run", "--playbooks", str(books), "--prefix", str(tree), "--yes", "--json")
    assert done.code == 0, done.err
    user = pwd.getpwnam(SUDOER)
    assert (tree / "etc/prontuario").stat().st_uid == 0 and (tree / "etc/prontuario/motd").stat().st_uid == 0, "made through sudo"
    key = tree / "keys/id_ed25519"
    assert key.stat().st_uid == user.pw_uid and oct(key.stat().st_mode & 0o777) == "0o600", "the key is the user's own, never root's"
    again = run("-i", str(inventory), "bootstrap", "run", "--playbooks", str(books), "--prefix", str(tree), "--yes", "--json")
    assert again.code == 0 and all(h["changed"] == 0 for h in json.loads(again.out)["hosts"]), again.err


def test_sudo_asking_for_a_password_fails_the_step_at_once_instead_of_waiting(accounts, tmp_path, monkeypatch):
    monkeypatch.setenv("PRONTUARIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PRONTUARIO_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    inventory, books, tree = write_site(accounts, tmp_path, NO_SUDO)
    started = time.monotonic()
    failed = run("-i", str(inventory), "bootstrap", "run", "--playbooks", str(books), "--prefix", str(tree), "--yes", "--json")
    assert failed.code == ExitCode.FAILED, failed.err
    host = json.loads(failed.out)["hosts"][0]
    assert host["failure"]["step"] == "a root-owned directory" and "password" in host["failure"]["output"], host
    assert time.monotonic() - started < 60 and not (tree / "etc").exists()
