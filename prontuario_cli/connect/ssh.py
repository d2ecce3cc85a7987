"""SSH through paramiko: host keys always verified, every step bounded.

The node's ``ssh.known_hosts`` must already hold its key: an unknown host is refused
and a changed key is refused loudly (never auto-added), as ``StrictHostKeyChecking
yes`` does. Errors are converted here into ProntuarioError subclasses.

A process keeps one authenticated connection per node (address, port, user, key and
known_hosts) and runs each command on a channel of its own, so a command that talks to
a node several times (``models sync``: rsync's version, a verify, the receive) pays the
key exchange once. A connection that died is opened again, host key checked again,
before any command runs on it; a command is never sent twice.
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
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


_pool: dict[tuple, object] = {}  # connection key -> an authenticated paramiko SSHClient
_pool_locks: dict[tuple, threading.Lock] = {}
_pool_guard = threading.Lock()


def _pool_key(node) -> tuple:
    ssh = node.ssh
    return (node.address, ssh.port, ssh.user, ssh.key, os.path.expanduser(ssh.known_hosts))


def pooled(node, *, timeout_s: float | None = None, fresh: bool = False):
    """This process's connection to ``node``, opened (host key verified) when there is none alive."""
    key = _pool_key(node)
    with _pool_guard:
        lock = _pool_locks.setdefault(key, threading.Lock())
    with lock:  # one connect per node even when several threads ask at once
        client = _pool.get(key)
        transport = client.get_transport() if client is not None else None
        if fresh or transport is None or not transport.is_active():
            if client is not None:
                client.close()
            client = _pool[key] = connect(node, timeout_s=timeout_s)
        return client


def close_pool() -> None:
    """Close every pooled connection (at exit; tests that restart an sshd)."""
    with _pool_guard:
        clients = list(_pool.values())
        _pool.clear()
    for client in clients:
        client.close()


atexit.register(close_pool)


def _open_channel(node, deadline: float):
    """A session channel on the pooled connection; a dead one is replaced once (nothing has run yet)."""
    import paramiko

    connect_s = node.ssh.connect_timeout_s
    for attempt in (1, 2):
        client = pooled(node, timeout_s=max(0.1, min(connect_s, deadline - time.monotonic())), fresh=attempt == 2)
        try:
            return client.get_transport().open_session(timeout=max(0.1, min(connect_s, deadline - time.monotonic())))
        except (paramiko.SSHException, OSError, EOFError, AttributeError):
            if attempt == 2 or time.monotonic() >= deadline:
                raise
    raise AssertionError("unreachable")


def run_command(node, command: str, *, timeout_s: float = 60.0, on_output=None, feed=None) -> CommandResult:
    """Run ``command`` on ``node``; bounded by ``timeout_s`` end to end.

    ``on_output(stream, line)`` (stream ``"stdout"`` or ``"stderr"``) is called for each
    complete line as it arrives, so a long command (rsync) shows progress. ``feed(send,
    close)``, when given, runs in its own thread to write the command's stdin (``send``
    bytes, then ``close`` it); without it stdin is closed at once.
    """
    import paramiko

    started = time.monotonic()
    deadline = started + timeout_s
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
        channel = _open_channel(node, deadline)
    except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
        raise OperationFailed(f"{where}: cannot open a session: {exc or type(exc).__name__}") from None
    try:
        channel.settimeout(max(0.1, deadline - time.monotonic()))
        channel.exec_command(command)
        if feed is None:
            channel.shutdown_write()
        else:
            threading.Thread(target=feed, args=(channel.sendall, channel.shutdown_write), daemon=True, name="ssh-stdin").start()
        while True:
            if time.monotonic() > deadline:
                raise TimedOut(f"{where}: command did not finish within {timeout_s:g} s")
            while channel.recv_ready():
                take("stdout", channel.recv(65536))
            while channel.recv_stderr_ready():
                take("stderr", channel.recv_stderr(65536))
            if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                break
            time.sleep(0.005)
        status = channel.recv_exit_status()
        if on_output is not None:
            for name, rest in pending.items():
                if rest:
                    on_output(name, rest.decode(errors="replace"))
        return CommandResult(status, buffers["stdout"].decode(errors="replace"), buffers["stderr"].decode(errors="replace"), round(time.monotonic() - started, 3))
    except (paramiko.SSHException, OSError) as exc:
        raise OperationFailed(f"{where}: {exc}") from None
    finally:
        channel.close()
