"""The one node-access seam: what prontuario does *to* a node, lab or real Mac alike.

Drills, the cloud fallback, model sync and bootstrap only see :class:`NodeAccess`:

- ``act(node, service, action)`` — start / stop / kill / hang / resume a node's
  database (Patroni + PostgreSQL), Redis or etcd member;
- ``run(node, command, timeout_s=..., on_output=...)`` — run a command, bounded,
  its output streamed line by line as it comes (rsync, ``prontuario … --json``).

:func:`node_access` is the only place that decides whether the inventory is a lab:
a lab (``lab.dir``) acts on the lab's processes by PID and runs commands here; real
nodes run the commands of ``playbooks/node-actions.yaml`` and the given command over
SSH (paramiko, host keys verified with RejectPolicy).

A node's loss or freeze signals **every** PostgreSQL process of the node at once —
Patroni, the postmaster and each backend — as a lost or frozen machine would: signalling
only the parents leaves the backends serving writes for seconds (a false RTO).
"""

from __future__ import annotations

import shlex
import signal
import time
from pathlib import Path
from typing import Callable, Protocol, Sequence

from prontuario_cli.connect.ssh import CommandResult
from prontuario_cli.errors import ConfigError, OperationFailed
from prontuario_cli.inventory import Inventory

ACTIONS = ("kill", "stop", "hang", "resume", "start")
SERVICES = ("postgres", "redis", "etcd")
SIGNALS = {"kill": signal.SIGKILL, "hang": signal.SIGSTOP, "resume": signal.SIGCONT}

Output = Callable[[str, str], None]  # (stream "stdout" | "stderr", one line without its newline)
Command = str | Sequence[str]


class Gate:
    """Lets a command started early go on (``go``) or stop (``stop``), through its stdin.

    The command reads one line: ``go`` when :meth:`go` is called, end of file when
    :meth:`stop` is (or the caller dies). ``models sync`` starts the receive on the target
    while the source still verifies, and opens the gate only once it did.
    """

    def __init__(self) -> None:
        import threading

        self._decided = threading.Event()
        self._go = False

    def go(self) -> None:
        self._go = True
        self._decided.set()

    def stop(self) -> None:
        self._decided.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """True to go on; False to stop (also when nothing was decided within ``timeout_s``)."""
        return self._decided.wait(timeout_s) and self._go


class NodeAccess(Protocol):
    where: str  # "lab /path" or "ssh"
    is_lab: bool

    def act(self, node: str, service: str, action: str) -> str: ...

    def run(self, node: str, command: Command, *, timeout_s: float, on_output: Output | None = None, gate: Gate | None = None) -> CommandResult: ...

    def pg_tool(self, name: str) -> str: ...

    def rebuild_cloud_replica(self) -> str | None: ...

    @property
    def profile(self) -> str | None: ...


def is_lab(inventory: Inventory) -> bool:
    """True when the inventory describes a loopback lab (``lab.dir``)."""
    return inventory.lab is not None


def lab_dir(inventory: Inventory) -> Path | None:
    return Path(inventory.lab.dir) if is_lab(inventory) else None


def node_access(inventory: Inventory) -> NodeAccess:
    """How to reach this inventory's nodes: the lab's processes, or SSH."""
    return LabNodes(inventory) if is_lab(inventory) else SSHNodes(inventory)


def _check(service: str, action: str) -> None:
    if service not in SERVICES or action not in ACTIONS:
        raise OperationFailed(f"no node action {action!r} for {service!r}", hint=f"actions: {', '.join(ACTIONS)}; services: {', '.join(SERVICES)}")


def _postgres_pg_tool(name: str, extra: Sequence[Path] = ()) -> str:
    """Where a PostgreSQL 15 client tool is: ``extra`` first, then version 15's bin, then PATH."""
    import shutil

    for path in (*extra, Path("/usr/lib/postgresql/15/bin") / name):
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if not found:
        raise ConfigError(f"{name} is not installed here", hint="install the PostgreSQL 15 client (apt-get install postgresql-client-15)")
    return found


# --------------------------------------------------------------------------- the lab


class LabNodes:
    """The nodes of a loopback lab: its processes, by PID, on this machine."""

    is_lab = True

    def __init__(self, inventory: Inventory):
        from prontuario_cli.lab import Lab

        self.lab = Lab(inventory.lab.dir, say=lambda text: None)
        self.where = f"lab {inventory.lab.dir}"

    @property
    def profile(self) -> str | None:
        """The lab's profile (seed or fast), as saved when it was made."""
        from prontuario_cli.lab.spec import load_spec

        saved = load_spec(self.lab.dir)
        return saved.profile if saved else None

    def act(self, node: str, service: str, action: str) -> str:
        _check(service, action)
        lab = self.lab
        if service == "postgres":
            if action in SIGNALS:
                sig = SIGNALS[action]
                return f"{sig.name} pids {lab.kill_node(node, sig)}"
            if action == "stop":
                lab.stop(f"patroni-{node}", timeout_s=30)
                return f"stopped patroni-{node} (SIGTERM, PostgreSQL shut down by Patroni)"
            return f"started patroni-{node} (pid {lab.start(f'patroni-{node}')})"
        name = f"{service}-{node}"
        if action in SIGNALS:
            return f"{SIGNALS[action].name} pid {lab.kill(name, SIGNALS[action])}"
        if action == "stop":
            lab.stop(name)
            return f"stopped {name}"
        return f"started {name} (pid {lab.start(name)})"

    def run(self, node: str, command: Command, *, timeout_s: float, on_output: Output | None = None, gate: Gate | None = None) -> CommandResult:
        """Run ``command`` here (every lab node is this machine): a string through ``sh -c``."""
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        return run_local(argv, timeout_s=timeout_s, on_output=on_output, where=f"{node} (lab)", gate=gate)

    def pg_tool(self, name: str) -> str:
        return _postgres_pg_tool(name, [Path(self.lab.spec.binaries.pg_bin) / name])

    def rebuild_cloud_replica(self) -> str | None:
        self.lab.rebuild_standin()
        return "stand-in made again and subscribed to the Macs (pglogical)"


def run_local(argv: Sequence[str], *, timeout_s: float, on_output: Output | None = None, where: str = "here", gate: Gate | None = None) -> CommandResult:
    """Run ``argv`` on this machine, bounded by ``timeout_s`` (then killed), output streamed.

    With a ``gate`` the command's stdin gets ``go`` once the gate opens, end of file if it
    is stopped; without one, stdin is empty.
    """
    import subprocess
    import threading

    started = time.monotonic()
    try:
        child = subprocess.Popen(list(argv), stdin=subprocess.PIPE if gate else subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        raise OperationFailed(f"{where}: cannot run {argv[0]}: {exc.strerror or exc}") from None
    captured: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def pump(stream, name: str) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            captured[name].append(line)
            if on_output is not None:
                on_output(name, line)
        stream.close()

    pumps = [threading.Thread(target=pump, args=(child.stdout, "stdout"), daemon=True),
             threading.Thread(target=pump, args=(child.stderr, "stderr"), daemon=True)]
    if gate is not None:
        pumps.append(threading.Thread(target=_feed_gate, args=(gate, child.stdin.write, child.stdin.close, timeout_s), daemon=True))
    for thread in pumps:
        thread.start()
    try:
        status = child.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        import os

        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()
        raise OperationFailed(f"{where}: {shlex.join(argv)[:200]} did not finish within {timeout_s:g} s (killed)") from None
    except BaseException:
        child.kill()
        child.wait()
        raise
    for thread in pumps:
        thread.join(timeout=5)
    return CommandResult(status, "\n".join(captured["stdout"]), "\n".join(captured["stderr"]), round(time.monotonic() - started, 3))


def _feed_gate(gate: Gate, write: Callable[[bytes], object], close: Callable[[], object], timeout_s: float) -> None:
    """Write ``go`` to a gated command's stdin when the gate opens; close it either way."""
    try:
        if gate.wait(timeout_s):
            write(b"go\n")
    except (OSError, ValueError):
        pass  # the command already ended
    finally:
        try:
            close()
        except (OSError, ValueError):
            pass


# --------------------------------------------------------------------------- real nodes over SSH


class SSHNodes:
    """Real nodes: the playbook's command for (os, service, action), or any command, over SSH."""

    is_lab = False
    profile = None

    def __init__(self, inventory: Inventory, playbook: Path | None = None):
        self.inventory = inventory
        self._playbook_path = playbook
        self._playbook: dict | None = None
        self.where = "ssh"

    @property
    def playbook(self) -> dict:
        if self._playbook is None:
            self._playbook = load_playbook(self._playbook_path or default_playbook())
        return self._playbook

    def command(self, node: str, service: str, action: str) -> str:
        os_name = self.inventory.node(node).os
        try:
            return self.playbook[os_name][service][action]
        except KeyError:
            raise ConfigError(f"playbook has no command for {os_name}/{service}/{action}") from None

    def act(self, node: str, service: str, action: str) -> str:
        _check(service, action)
        result = self.run(node, self.command(node, service, action), timeout_s=60)
        if result.exit_status != 0:
            raise OperationFailed(f"{node}: {service} {action} exited {result.exit_status}: {result.stderr.strip()[:200]}")
        return result.stdout.strip()[:200] or f"{service} {action} done"

    def run(self, node: str, command: Command, *, timeout_s: float, on_output: Output | None = None, gate: Gate | None = None) -> CommandResult:
        from prontuario_cli.connect.ssh import run_command

        text = command if isinstance(command, str) else shlex.join(command)
        feed = None
        if gate is not None:
            feed = lambda send, close: _feed_gate(gate, send, close, timeout_s)  # noqa: E731 -- the channel is the connector's
        return run_command(self.inventory.node(node), text, timeout_s=timeout_s, on_output=on_output, feed=feed)

    def pg_tool(self, name: str) -> str:
        return _postgres_pg_tool(name)

    def rebuild_cloud_replica(self) -> str | None:
        return None  # re-created on Google's side by a person (Cloud SQL console or gcloud)


def default_playbook() -> Path:
    return Path(__file__).resolve().parent.parent / "playbooks" / "node-actions.yaml"


def load_playbook(path: Path) -> dict:
    """``{os: {service: {action: command}}}``, validated; a missing command named by file and line."""
    import yaml

    from prontuario_cli.schema import compose, plain, read_document

    root = compose(read_document(path, "playbook"), str(path), "playbook")
    data = plain(root, str(path), "playbook")

    def get(mapping, key):
        return mapping.get(key) if isinstance(mapping, dict) else None

    def line(keys) -> int:
        """The line of the deepest of ``keys`` the file has (1: none of them)."""
        node, found = root, 1
        for key in keys:
            if not isinstance(node, yaml.MappingNode):
                break
            node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
            if node is None:
                break
            found = node.start_mark.line + 1
        return found

    problems = []
    for os_name in ("macos", "debian"):
        for service in SERVICES:
            for action in ACTIONS:
                command = get(get(get(data, os_name), service), action)
                if not isinstance(command, str) or not command.strip():
                    where = line((os_name, service, action))
                    problems.append(f"{path}:{where}: {os_name}.{service}.{action}: missing command")
    if problems:
        raise ConfigError(f"{path}: the playbook is incomplete", problems)
    return data
