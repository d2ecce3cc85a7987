"""The one adapter between our playbooks and pyinfra (used as a library, API mode).

pyinfra connects (paramiko; host keys checked against the node's known_hosts, reject by
default, ``accept-new`` only when asked), reads facts, decides per operation whether
anything would change, runs the operations host by host in parallel, and stops a host at
its first failing step. This module turns each playbook step into pyinfra operations
from the allow-list (:data:`~prontuario_cli.bootstrap.playbook.OPERATIONS`), and turns
pyinfra's results into a recap per host (ok / changed / failed, like Ansible's) with,
for a failure, the step, the command, its exit code and the tail of its output.

pyinfra's API is "mostly stable": nothing else in prontuario imports it.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from prontuario_cli.bootstrap.playbook import Playbook, PlaybookStep, load_playbook, substitute
from prontuario_cli.errors import ConfigError, UsageError
from prontuario_cli.inventory import Inventory, Node

Event = Callable[[dict[str, Any]], None]


def playbooks_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "playbooks"


def playbook_for(node: Node, directory: Path | None = None) -> Path:
    return (directory or playbooks_dir()) / f"{node.os}-node.yaml"


def variables(inventory: Inventory, node: Node, prefix: str) -> dict[str, str]:
    """What a playbook's ``${...}`` may name; every path already under ``prefix``."""
    base = prefix.rstrip("/")
    return {
        "node": node.name, "address": node.address, "role": node.role, "os": node.os, "prefix": base,
        "user": node.ssh.user, "home": f"{base}/var/lib/prontuario" if node.os == "debian" else f"{base}/Users/{node.ssh.user}",
        "venv": f"{base}/opt/prontuario/venv", "brew": "/opt/homebrew",
        "store": base + (node.models_dir or inventory.models.store), "docs": base + (node.docs_dir or inventory.docs.dir),
    }  # fmt: skip


@dataclass
class Failure:
    step: str
    command: str
    exit_code: int | None
    output: str  # the tail of what it printed (stderr and stdout, in order)


@dataclass
class HostRecap:
    node: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: str | None = None
    changes: list[str] = field(default_factory=list)  # steps that changed (or, with --check, would)
    failure: Failure | None = None
    diff: str = ""  # with --diff: what each changed file becomes (pyinfra's unified diff)

    @property
    def status(self) -> str:
        return "unreachable" if self.unreachable else ("failed" if self.failed else ("changed" if self.changed else "ok"))


@dataclass
class Planned:
    node: Node
    playbook: Playbook
    steps: list[PlaybookStep]


def plan(inventory: Inventory, names: list[str] | None, directory: Path | None = None) -> list[Planned]:
    """Every target's playbook, loaded and validated before anything connects."""
    nodes = [inventory.node(n) for n in names] if names else list(inventory.nodes)
    if not nodes:
        raise UsageError("the inventory has no nodes to bootstrap")
    out = []
    cache: dict[Path, Playbook] = {}
    for node in nodes:
        path = playbook_for(node, directory)
        if not path.exists():
            raise ConfigError(f"{node.name}: no playbook for os {node.os!r} ({path})")
        book = cache.get(path) or cache.setdefault(path, load_playbook(path))
        out.append(Planned(node, book, book.steps_for(node.role)))
    return out


class _HostLog(logging.Handler):
    """What pyinfra logs about each host: the last command's exit status (debug level) and
    its error lines (a fact that could not be read, a command's output on failure)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.last: dict[str, int] = {}
        self.errors: dict[str, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        from pyinfra.context import ctx_host

        current = ctx_host.get()
        if current is None:
            return
        if record.msg == "Command exit status: %i":
            self.last[current.name] = int(record.args[0])
        elif record.levelno >= logging.WARNING:
            text = _DiffCapture.ANSI.sub("", record.getMessage()).strip()
            self.errors.setdefault(current.name, []).append(text.split("] ", 1)[-1] if text.startswith("[") else text)


def _pyinfra_host_data(node: Node, accept_new: bool) -> dict[str, Any]:
    import os

    ssh = node.ssh
    return {
        "ssh_hostname": node.address, "ssh_port": ssh.port, "ssh_user": ssh.user,
        "ssh_key": os.path.expanduser(ssh.key) if ssh.key else None,
        "ssh_known_hosts_file": os.path.expanduser(ssh.known_hosts),
        "ssh_strict_host_key_checking": "accept-new" if accept_new else "yes",
        "ssh_allow_agent": ssh.key is None, "ssh_look_for_keys": ssh.key is None,
        "ssh_connect_retries": 0,
    }  # fmt: skip


# In a rehearsal (--prefix) every path is rooted under a scratch directory, so what lives
# outside any directory is left alone: users, services, power and system settings.
# Run as the SSH user, never through sudo: Homebrew refuses root, and the Mac-to-Mac key
# must belong to the user that uses it. Everything else needs root on the node.
AS_SSH_USER = ("brew.packages", "ssh.key")
MACOS_PATH = "/opt/homebrew/bin:/opt/homebrew/sbin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
OUTSIDE_ANY_DIRECTORY = ("user", "systemd.service", "launchd.job", "macos.pmset", "macos.defaults")


def _add_step(state, host, step: PlaybookStep, args, inventory: Inventory, node: Node, rehearsal: str = "") -> list:
    """The pyinfra operations of one step, added for one host; their OperationMeta."""
    from pyinfra.api.operation import add_op
    from pyinfra.operations import apt, brew, files, pip, server, systemd

    from prontuario_cli.bootstrap import ops

    def op(fn, **kwargs):
        if node.os == "macos":  # a non-login SSH session has no /opt/homebrew/bin on its PATH
            kwargs["_env"] = {"PATH": MACOS_PATH}
        if node.ssh.user != "root" and step.op not in AS_SSH_USER:
            kwargs["_sudo"] = True  # sudo -n: a password prompt fails the step instead of hanging it
        return add_op(state, fn, name=step.name, host=host, **kwargs)[host]

    if rehearsal and hasattr(args, "user"):  # a scratch tree belongs to whoever runs the rehearsal
        args = dataclasses.replace(args, user=None, **({"group": None} if hasattr(args, "group") else {}))

    kind = step.op
    if kind == "apt.packages":
        return [op(apt.packages, packages=list(args.packages), update=args.update)]
    if kind == "brew.packages":
        return [op(brew.packages, packages=list(args.packages))]
    if kind == "directory":
        return [op(files.directory, path=args.path, mode=args.mode, user=args.user, group=args.group)]
    if kind == "file":
        return [op(files.put, src=io.StringIO(args.content), dest=args.path, mode=args.mode, user=args.user, group=args.group)]
    if kind == "line":
        return [op(files.line, path=args.path, line=args.line, replace=args.replace or "")]
    if kind == "rendered":
        return _rendered(op, args, inventory, node, rehearsal)
    if kind == "user":
        return [op(server.user, user=args.name, home=args.home, shell=args.shell, system=True, ensure_home=True)]
    if kind == "venv":
        made = op(pip.venv, path=args.path, python=args.python)
        return [made, op(pip.packages, packages=list(args.packages), virtualenv=args.path)] if args.packages else [made]
    if kind == "command":
        return [op(ops.command_creates, run=args.run, creates=args.creates)]
    if kind == "ssh.key":
        return [op(ops.ssh_key, path=args.path, comment=f"prontuario@{node.name}")]
    if kind == "systemd.service":
        return [op(systemd.service, service=args.service, running=args.running, enabled=args.enabled, daemon_reload=True)]
    if kind == "macos.defaults":
        return [op(ops.defaults, domain=args.domain, key=args.key, kind=args.type, value=args.value)]
    if kind == "macos.pmset":
        return [op(ops.pmset, setting=args.setting, value=args.value)]
    if kind == "macos.check":
        return [op(ops.mac_check, check=args.check)]
    if kind == "launchd.job":
        return [op(ops.launchd_job, label=args.label, plist=f"/Library/LaunchDaemons/{args.label}.plist")]
    raise ConfigError(f"operation {kind!r} has no pyinfra adapter")  # the playbook schema and this list are kept in step


def _rendered(op, args, inventory: Inventory, node: Node, rehearsal: str) -> list:
    """The inventory, every rendered config and job file of this node; owners only outside a rehearsal.

    A file a service rewrites itself (Redis's and Sentinel's: a failover changes them) is
    written only when absent, never put back over what the service learnt.
    """
    from pyinfra.operations import files

    from prontuario_cli.bootstrap import ops
    from prontuario_cli.render import node_files
    from prontuario_cli.render.apps import app_files

    init = "launchd" if node.os == "macos" else "systemd"
    on_node = args.inventory.removeprefix(rehearsal) if rehearsal else args.inventory
    source = Path(inventory.source).read_text(encoding="utf-8") if inventory.source else ""
    metas = [op(files.put, src=io.StringIO(source), dest=args.inventory, mode="600", create_remote_dir=True)]
    rendered = node_files(inventory, node.name, services=args.services) + (app_files(inventory, node, on_node, init) if args.services else [])
    for f in rendered:
        dest = f"{rehearsal}{f.path}"
        owner = None if rehearsal else f.owner
        if f.initial_only:
            metas.append(op(ops.put_if_absent, content=f.content, dest=dest, mode=f"{f.mode:o}", user=owner))
        else:
            metas.append(op(files.put, src=io.StringIO(f.content), dest=dest, mode=f"{f.mode:o}", user=owner, group=None, create_remote_dir=True))
    return metas


def run(inventory: Inventory, planned: list[Planned], *, check: bool, diff: bool = False, accept_new: bool = False,
        prefix: str = "", on_event: Event | None = None) -> list[HostRecap]:
    """Connect, plan every step against live facts, and (unless ``check``) run them; a recap per host."""
    from pyinfra import logger as pyinfra_logger
    from pyinfra.api import BaseStateCallback, Config, State
    from pyinfra.api import Inventory as PyinfraInventory
    from pyinfra.api.connect import connect_all, disconnect_all
    from pyinfra.api.exceptions import PyinfraError
    from pyinfra.api.operations import run_ops

    event = on_event or (lambda e: None)
    recaps = {p.node.name: HostRecap(p.node.name) for p in planned}
    pinventory = PyinfraInventory(([(p.node.name, _pyinfra_host_data(p.node, accept_new)) for p in planned], {}))
    diffs = _DiffCapture() if diff else None
    host_log = _HostLog()
    pyinfra_logger.addHandler(host_log)
    if diffs is not None:
        pyinfra_logger.addHandler(diffs)
    previous_level = pyinfra_logger.level
    pyinfra_logger.setLevel(logging.DEBUG)
    pyinfra_logger.propagate = False  # its own lines would go to our stderr: we report through events
    names: dict[tuple[str, str], str] = {}  # (host, op hash) -> our step name
    last_step: dict[str, str] = {}

    class Callbacks(BaseStateCallback):
        @staticmethod
        def host_connect_error(state, host, error):
            recaps[host.name].unreachable = _connect_problem(str(error))
            event({"kind": "unreachable", "node": host.name, "detail": recaps[host.name].unreachable})

        @staticmethod
        def operation_host_start(state, host, op_hash):
            step = names.get((host.name, op_hash), "?")
            if last_step.get(host.name) != step:  # a step of several operations is one line
                last_step[host.name] = step
                event({"kind": "step", "node": host.name, "step": step})

    state = State(inventory=pinventory, config=Config(DIFF=diff, CONNECT_TIMEOUT=10, FAIL_PERCENT=None))
    _never_prompt_for_sudo()
    state.add_callback_handler(Callbacks())
    started = time.monotonic()
    try:
        try:
            connect_all(state)
        except PyinfraError as exc:
            for recap in recaps.values():
                recap.unreachable = recap.unreachable or _connect_problem(str(exc))
            return list(recaps.values())
        hosts = {h.name: h for h in state.activated_hosts}
        metas: dict[str, list[tuple[str, Any]]] = {name: [] for name in hosts}
        for p in planned:
            host = hosts.get(p.node.name)
            if host is None:
                continue
            root = prefix.replace("{node}", p.node.name)  # several "nodes" on one machine: a tree each
            values = variables(inventory, p.node, root)
            for step in p.steps:
                if root and step.op in OUTSIDE_ANY_DIRECTORY:
                    continue
                try:
                    added = _add_step(state, host, step, substitute(step.args, values), inventory, p.node, root.rstrip("/"))
                except PyinfraError:
                    added = None  # the last host failed while its facts were read: said below
                if added is None or host in state.failed_hosts:  # a fact could not be read (sudo, a dead link)
                    recap = recaps[host.name]
                    recap.failed = 1
                    recap.failure = Failure(step.name, "(reading the facts this step needs)", host_log.last.get(host.name),
                                            _tail(host_log.errors.get(host.name, [])))
                    event({"kind": "host-done", "node": host.name, "status": "failed", "seconds": round(time.monotonic() - started, 2)})
                    metas.pop(host.name, None)
                    break
                for meta in added:
                    names[(host.name, meta._hash)] = step.name
                    metas[host.name].append((step.name, meta))
        if check or not metas:
            for name, items in metas.items():
                changes = [s for s, m in items if m.will_change]
                recaps[name].changes = list(dict.fromkeys(changes))
                recaps[name].changed = len(recaps[name].changes)
                recaps[name].ok = len({s for s, _ in items}) - recaps[name].changed
            return list(recaps.values())
        try:
            run_ops(state)
        except PyinfraError:
            pass  # every host failed: each recap says where
        for name, items in metas.items():
            recap = recaps[name]
            seen: dict[str, str] = {}
            for step_name, meta in items:
                if not meta.is_complete():
                    continue
                if not meta.did_succeed(_raise_if_not_complete=False):
                    seen[step_name] = "failed"
                    if recap.failure is None:
                        commands = [str(c) for c in (meta._commands or [])]
                        recap.failure = Failure(step_name, commands[-1] if commands else "", host_log.last.get(name),
                                                _tail(meta.stderr_lines + meta.stdout_lines))
                elif meta.did_change() and seen.get(step_name) != "failed":
                    seen[step_name] = "changed"
                else:
                    seen.setdefault(step_name, "ok")
            recap.changes = [s for s, v in seen.items() if v == "changed"]
            recap.changed = len(recap.changes)
            recap.failed = sum(v == "failed" for v in seen.values())
            recap.ok = sum(v == "ok" for v in seen.values())
            event({"kind": "host-done", "node": name, "status": recap.status, "seconds": round(time.monotonic() - started, 2)})
        return list(recaps.values())
    finally:
        try:
            disconnect_all(state)
        except Exception:  # noqa: BLE001 -- a host that died mid-run must not hide the recap
            pass
        pyinfra_logger.removeHandler(host_log)
        if diffs is not None:
            pyinfra_logger.removeHandler(diffs)
            for recap in recaps.values():
                recap.diff = diffs.text.get(recap.node, "")
        pyinfra_logger.setLevel(previous_level)


def _never_prompt_for_sudo() -> None:
    """pyinfra asks for a sudo password on the terminal when sudo wants one; a bootstrap from
    cron would hang there. Answer with no password instead: sudo refuses, the step fails and
    its output says "a password is required" (the SSH user needs passwordless sudo)."""
    import pyinfra.connectors.util as connector_util

    connector_util.getpass = lambda prompt="": ""


def _tail(lines: list[str], count: int = 8) -> str:
    return "\n".join(line.rstrip() for line in lines[-count:])[-1200:]


def _connect_problem(text: str) -> str:
    low = text.lower()
    if "host key" in low and ("not found" in low or "no host key" in low):
        return f"host key unknown (not in known_hosts): refused ({text.strip()[:160]})"
    if "does not match" in low or "badhostkey" in low or "changed" in low:
        return f"HOST KEY MISMATCH: refused ({text.strip()[:160]})"
    return text.strip()[:240] or "could not connect"


class _DiffCapture(logging.Handler):
    """pyinfra logs, with Config DIFF, "Will create/modify FILE" and the file's diff lines
    while an operation is planned; keep them per host, without colours."""

    ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def __init__(self):
        super().__init__(logging.INFO)
        self.text: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        from pyinfra.context import ctx_host

        message = self.ANSI.sub("", record.getMessage())
        if not (message.startswith("  ") or "Will create" in message or "Will modify" in message or "Will remove" in message):
            return
        current = ctx_host.get()
        if current is not None:
            line = message.split("] ", 1)[-1] if message.startswith("[") else message
            self.text[current.name] = self.text.get(current.name, "") + line + "\n"
