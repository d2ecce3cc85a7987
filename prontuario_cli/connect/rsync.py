"""rsync as prontuario runs it between the Macs: the version it accepts, the SSH transport it
gives rsync, and the numbers read back from its output.

Shared by every capability that moves bytes Mac to Mac (model versions, documents). Pure:
nothing here runs rsync; callers run it through the node-access seam or on the node itself.
"""

from __future__ import annotations

import re
import shlex

from prontuario_cli.errors import ConfigError

MIN_RSYNC = (3, 1)

# rsync's own exit codes that callers tell apart (rsync(1), EXIT VALUES).
RSYNC_EXIT = {
    1: "syntax or usage error",
    2: "protocol incompatibility",
    3: "errors selecting input/output files or directories",
    5: "error starting the client-server protocol",
    10: "error in socket I/O",
    11: "error in file I/O",
    12: "error in the rsync protocol data stream",
    20: "received SIGUSR1 or SIGINT",
    23: "partial transfer due to error",
    24: "partial transfer: some source files vanished",
    25: "the --max-delete limit stopped deletions",
    30: "timeout in data send/receive",
    35: "timeout waiting for a daemon connection",
    255: "the ssh connection failed",
}


def rsync_version(text: str) -> tuple[int, int, int] | None:
    """``rsync  version 3.2.7  protocol version 31`` -> (3, 2, 7); None for openrsync or garbage."""
    if "openrsync" in text:
        return None
    found = re.search(r"rsync\s+version\s+v?(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(x) for x in found.groups()) if found else None  # type: ignore[return-value]


def check_rsync(text: str, where: str, setting: str = "models.rsync") -> str:
    """Refuse an rsync prontuario does not support (``rsync --version`` output); its version otherwise."""
    version = rsync_version(text)
    if version is None:
        first = (text.strip().splitlines() or ["nothing"])[0][:120]
        raise ConfigError(
            f"{where}: unsupported rsync ({first}): macOS's /usr/bin/rsync is openrsync, which lacks --partial-dir",
            hint=f"install rsync 3.x (brew install rsync) and set {setting} to it",
        )
    if version[:2] < MIN_RSYNC:
        raise ConfigError(f"{where}: rsync {'.'.join(map(str, version))} is older than {'.'.join(map(str, MIN_RSYNC))}", hint="install rsync 3.x")
    return ".".join(map(str, version))


def ssh_transport(key: str, port: int, known_hosts: str, *, accept_new: bool = False, connect_timeout_s: float = 10) -> str:
    """The ``-e`` command rsync uses to reach the other Mac: its key, its known_hosts, no prompts.

    ``StrictHostKeyChecking=yes``: an unknown or changed host key is refused (``accept-new``
    only when asked: it trusts a first key, never a changed one).
    """
    policy = "accept-new" if accept_new else "yes"
    # AES-GCM first: the ssh client's CPU halves (hardware AES on x86 and Apple Silicon).
    return shlex.join([
        "ssh", "-i", key, "-p", str(port), "-c", "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com",
        "-o", f"UserKnownHostsFile={known_hosts}",
        "-o", f"StrictHostKeyChecking={policy}", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, round(connect_timeout_s))}",
    ])  # fmt: skip


def host_key_refused(stderr: str) -> bool:
    """True when ssh refused the other Mac's host key (unknown or changed)."""
    return "Host key verification failed" in stderr or "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr


def stat_number(text: str, label: str) -> int:
    """A number from ``rsync --stats --no-human-readable`` output (0 when absent)."""
    found = re.search(rf"^{re.escape(label)}:\s*([\d,.]+)", text, re.MULTILINE)
    return int(re.sub(r"[,.]", "", found.group(1))) if found else 0
