"""A real OpenSSH server on 127.0.0.1 for the tests that go over SSH (throwaway keys)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path, kind: str = "ed25519") -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True)
    return Path(f"{path}.pub").read_text().strip()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1 accepting one key for root; stopped by PID at the end."""
    if not os.path.exists(SSHD) or os.geteuid() != 0:
        pytest.fail("sshd (openssh-server) and root are needed: run ./install.sh")
    base = tmp_path_factory.mktemp("sshd")
    host_key = base / "host_ed25519"
    user_key = base / "user_ed25519"
    host_pub = keygen(host_key)
    user_pub = keygen(user_key)
    (base / "authorized_keys").write_text(user_pub + "\n")
    port = free_port()
    config = base / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {base}/sshd.pid\n"
        f"AuthorizedKeysFile {base}/authorized_keys\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowUsers root\n"
        "Subsystem sftp internal-sftp\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    log = open(base / "sshd.log", "w")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"sshd did not start: {(base / 'sshd.log').read_text()[-500:]}")
            time.sleep(0.05)
    known_hosts = base / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    try:
        yield {"port": port, "key": user_key, "known_hosts": known_hosts, "base": base}
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
