"""What a drill does to a node: kill, stop, hang, resume and start its database (or Redis).

In the lab the actions act on the lab's processes by PID; against real nodes the same
actions run the commands of ``playbooks/node-actions.yaml`` over SSH (host keys
verified). A drill only ever sees the :class:`NodeActions` interface.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Protocol

from prontuario_cli.errors import ConfigError, OperationFailed
from prontuario_cli.inventory import Inventory

ACTIONS = ("kill", "stop", "hang", "resume", "start")
SERVICES = ("postgres", "redis")


class NodeActions(Protocol):
    where: str  # "lab /path" or "ssh"

    def act(self, node: str, service: str, action: str) -> str: ...


class LabActions:
    """Acts on the processes of a loopback lab (``lab.dir`` in the inventory)."""

    def __init__(self, inventory: Inventory):
        from prontuario_cli.lab import Lab

        self.lab = Lab(inventory.lab.dir, say=lambda text: None)
        self.where = f"lab {inventory.lab.dir}"

    def act(self, node: str, service: str, action: str) -> str:
        lab = self.lab
        if service == "postgres":
            if action in ("kill", "hang", "resume"):
                sig = {"kill": signal.SIGKILL, "hang": signal.SIGSTOP, "resume": signal.SIGCONT}[action]
                return f"{sig.name} pids {self._signal_node(node, sig)}"
            if action == "stop":
                lab.stop(f"patroni-{node}", timeout_s=30)
                return f"stopped patroni-{node} (SIGTERM, PostgreSQL shut down by Patroni)"
            if action == "start":
                return f"started patroni-{node} (pid {lab.start(f'patroni-{node}')})"
        if service == "redis":
            name = f"redis-{node}"
            if action == "kill":
                return f"SIGKILL pid {lab.kill(name, signal.SIGKILL)}"
            if action == "hang":
                return f"SIGSTOP pid {lab.kill(name, signal.SIGSTOP)}"
            if action == "resume":
                return f"SIGCONT pid {lab.kill(name, signal.SIGCONT)}"
            if action == "stop":
                lab.stop(name)
                return f"stopped {name}"
            if action == "start":
                return f"started {name} (pid {lab.start(name)})"
        raise OperationFailed(f"no lab action {action!r} for {service} on {node}")

    def _signal_node(self, node: str, sig: int) -> list[int]:
        """Signal the node's Patroni, postmaster and every PostgreSQL backend at once:
        a lost or frozen machine takes all its processes with it, not just the parents."""
        import os

        parents = [pid for pid in (self.lab.pid(f"patroni-{node}"), self.lab.pid(f"postgres-{node}")) if pid]
        pids = parents + [pid for parent in parents[1:] for pid in children(parent)]
        signalled = []
        for pid in pids:
            try:
                os.kill(pid, sig)
                signalled.append(pid)
            except ProcessLookupError:
                continue
        return signalled


def children(pid: int) -> list[int]:
    """Direct children of ``pid``, read from /proc."""
    import os

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


class SSHActions:
    """Runs the playbook's command for (os, service, action) on the node over SSH."""

    def __init__(self, inventory: Inventory, playbook: Path | None = None):
        self.inventory = inventory
        self.playbook = load_playbook(playbook or default_playbook())
        self.where = "ssh"

    def command(self, node: str, service: str, action: str) -> str:
        os_name = self.inventory.node(node).os
        try:
            return self.playbook[os_name][service][action]
        except KeyError:
            raise ConfigError(f"playbook has no command for {os_name}/{service}/{action}") from None

    def act(self, node: str, service: str, action: str) -> str:
        from prontuario_cli.connect.ssh import run_command

        target = self.inventory.node(node)
        result = run_command(target, self.command(node, service, action), timeout_s=60)
        if result.exit_status != 0:
            raise OperationFailed(f"{node}: {service} {action} exited {result.exit_status}: {result.stderr.strip()[:200]}")
        return result.stdout.strip()[:200] or f"{service} {action} done"


def actions_for(inventory: Inventory) -> NodeActions:
    return LabActions(inventory) if inventory.lab is not None else SSHActions(inventory)


def default_playbook() -> Path:
    return Path(__file__).resolve().parent.parent / "playbooks" / "node-actions.yaml"  # = ./playbooks/


def load_playbook(path: Path) -> dict:
    """``{os: {service: {action: command}}}``, validated."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read playbook {path}: {exc}") from None
    problems = []
    for os_name in ("macos", "debian"):
        for service in SERVICES:
            for action in ACTIONS:
                command = (((data or {}).get(os_name) or {}).get(service) or {}).get(action)
                if not isinstance(command, str) or not command.strip():
                    problems.append(f"{path}: {os_name}.{service}.{action}: missing command")
    if problems:
        raise ConfigError(f"{path}: the playbook is incomplete", problems)
    return data
