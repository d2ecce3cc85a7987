"""SSH through paramiko: host keys always verified, every step bounded.

The node's ``ssh.known_hosts`` must already hold its key: an unknown host is refused
and a changed key is refused loudly (never auto-added), as ``StrictHostKeyChecking
yes`` does. Errors are converted here into ProntuarioError subclasses.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from prontuario_cli.connect import Refused, TimedOut
from prontuario_cli.errors import OperationFailed, PermissionProblem, UnavailableError


class HostKeyMismatch(PermissionProblem):
    """The node presented a key different from the one in known_hosts."""


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str
    seconds: float


def connect(node, *, timeout_s: float | None = None):
    """An authenticated paramiko SSHClient to ``node`` (an inventory Node)."""
    import paramiko

    ssh = node.ssh
    timeout = timeout_s or ssh.connect_timeout_s
    where = f"ssh {ssh.user}@{node.address}:{ssh.port} ({node.name})"
    known_hosts = os.path.expanduser(ssh.known_hosts)
    client = paramiko.SSHClient()
    try:
        client.load_host_keys(known_hosts)
    except FileNotFoundError:
        raise PermissionProblem(f"{where}: known_hosts file {known_hosts} does not exist", hint="add the node's host key to it first (ssh-keyscan, checked out of band)") from None
    except (OSError, paramiko.SSHException) as exc:
        raise PermissionProblem(f"{where}: cannot read known_hosts {known_hosts}: {exc}") from None
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    key_filename = os.path.expanduser(ssh.key) if ssh.key else None
    try:
        client.connect(
            node.address,
            port=ssh.port,
            username=ssh.user,
            key_filename=key_filename,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            allow_agent=key_filename is None,
            look_for_keys=key_filename is None,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyMismatch(
            f"{where}: HOST KEY MISMATCH — the node presented a {exc.key.get_name()} key that is not the one in {known_hosts}; refusing to connect",
            hint="someone may be intercepting the connection, or the node was reinstalled: verify out of band before updating known_hosts",
        ) from None
    except paramiko.SSHException as exc:
        client.close()
        text = str(exc)
        if "not found in known_hosts" in text:
            raise PermissionProblem(f"{where}: host key unknown ({known_hosts} has no entry); refusing to connect", hint="add the node's verified host key to known_hosts") from None
        if isinstance(exc, paramiko.AuthenticationException):
            raise PermissionProblem(f"{where}: authentication failed for {ssh.user}", hint=f"check ssh.key ({ssh.key or 'agent/default keys'})") from None
        raise UnavailableError(f"{where}: {text}") from None
    except socket.timeout:
        client.close()
        raise TimedOut(f"{where}: no answer within {timeout:g} s") from None
    except ConnectionRefusedError:
        client.close()
        raise Refused(f"{where}: connection refused", hint="is sshd running on that port?") from None
    except OSError as exc:
        client.close()
        raise UnavailableError(f"{where}: {exc.strerror or exc}") from None
    return client


def run_command(node, command: str, *, timeout_s: float = 60.0, on_output=None) -> CommandResult:
    """Run ``command`` on ``node``; bounded by ``timeout_s`` end to end.

    ``on_output(stream, line)`` (stream ``"stdout"`` or ``"stderr"``) is called for each
    complete line as it arrives, so a long command (rsync) shows progress.
    """
    import paramiko

    started = time.monotonic()
    deadline = started + timeout_s
    client = connect(node, timeout_s=min(node.ssh.connect_timeout_s, timeout_s))
    where = f"ssh {node.ssh.user}@{node.address}:{node.ssh.port} ({node.name})"
    buffers = {"stdout": bytearray(), "stderr": bytearray()}
    pending = {"stdout": bytearray(), "stderr": bytearray()}

    def take(name: str, data: bytes) -> None:
        buffers[name] += data
        if on_output is None:
            return
        pending[name] += data
        *lines, rest = pending[name].split(b"\n")
        pending[name] = bytearray(rest)
        for line in lines:
            on_output(name, line.decode(errors="replace"))

    try:
        _, stdout, stderr = client.exec_command(command, timeout=max(0.1, deadline - time.monotonic()))
        channel = stdout.channel
        while True:
            if time.monotonic() > deadline:
                channel.close()
                raise TimedOut(f"{where}: command did not finish within {timeout_s:g} s")
            while channel.recv_ready():
                take("stdout", channel.recv(65536))
            while channel.recv_stderr_ready():
                take("stderr", channel.recv_stderr(65536))
            if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                break
            time.sleep(0.01)
        status = channel.recv_exit_status()
        if on_output is not None:
            for name, rest in pending.items():
                if rest:
                    on_output(name, rest.decode(errors="replace"))
        return CommandResult(status, buffers["stdout"].decode(errors="replace"), buffers["stderr"].decode(errors="replace"), round(time.monotonic() - started, 3))
    except (paramiko.SSHException, OSError) as exc:
        raise OperationFailed(f"{where}: {exc}") from None
    finally:
        client.close()
