"""A real OpenSSH server on 127.0.0.1 for the tests that go over SSH (throwaway keys)."""

from __future__ import annotations

import os
import socket
import subprocess
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


class SshdFailed(RuntimeError):
    """sshd did not start (its log's tail says why)."""


def start_sshd(base: Path, session_env: dict[str, str] | None = None, users: tuple[str, ...] = ("root",)) -> dict:
    """sshd -D on a free 127.0.0.1 port in ``base`` (created), one throwaway key for ``users`` (root).

    ``session_env`` is set in its sessions (sshd's SetEnv). Returns the port, the user
    key, a known_hosts holding the host key, the base directory and the process (stop
    it with :func:`stop_sshd`). Used by the tests' fixture and the benchmarks.
    """
    base.mkdir(parents=True, exist_ok=True)
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
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nMaxStartups 50\n"
        f"AllowUsers {' '.join(users)}\n"
        "Subsystem sftp internal-sftp\n"
        + (f"SetEnv {' '.join(f'{k}={v}' for k, v in session_env.items())}\n" if session_env else "")
    )
    os.makedirs("/run/sshd", exist_ok=True)
    with open(base / "sshd.log", "w") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    from prontuario_cli.errors import ProntuarioError
    from prontuario_cli.poll import wait_for

    def listening() -> bool:
        if proc.poll() is not None:
            raise SshdFailed(f"sshd exited {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    try:
        wait_for("sshd listening", listening, 10, interval_s=0.05)
    except (SshdFailed, ProntuarioError):
        stop_sshd({"proc": proc})
        raise SshdFailed(f"sshd did not start: {(base / 'sshd.log').read_text()[-500:]}") from None
    known_hosts = base / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    return {"port": port, "key": user_key, "known_hosts": known_hosts, "base": base, "proc": proc}


def stop_sshd(handle: dict) -> None:
    """Stop an sshd from :func:`start_sshd` by its PID (SIGTERM, then SIGKILL after 10 s)."""
    proc = handle["proc"]
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1 accepting one key for root; stopped by PID at the end."""
    if not os.path.exists(SSHD) or os.geteuid() != 0:
        pytest.fail("sshd (openssh-server) and root are needed: run ./install.sh")
    try:
        handle = start_sshd(tmp_path_factory.mktemp("sshd"))
    except SshdFailed as exc:
        pytest.fail(str(exc))
    try:
        yield handle
    finally:
        stop_sshd(handle)
