"""Our YAML playbooks: validated against an allow-list of operations before anything runs.

A playbook is what an operator reads and reviews; pyinfra is what runs it. Each step
names one operation of :data:`OPERATIONS` and gives its arguments, which are checked
against that operation's own schema (a dataclass: unknown arguments, wrong types and
missing ones are refused with ``file:line: key``, like the inventory)::

    format: 1
    name: debian-node
    os: debian
    steps:
      - name: prontuario's directories
        op: directory
        args: {path: "${prefix}/etc/prontuario", mode: "755"}
        roles: [primary, secondary]        # default: every role the playbook runs on

String arguments may use ``${variable}`` from :data:`VARIABLES` (the node's name,
address, role, the site's directories); an unknown variable is refused at load time.
"""

from __future__ import annotations

import dataclasses
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


ROLES = ("primary", "secondary", "witness")
VARIABLES = ("node", "address", "role", "os", "prefix", "user", "home", "venv", "brew", "store", "docs")


# --------------------------------------------------------------------------- each operation's arguments


@dataclass(frozen=True)
class AptPackages:
    packages: tuple[str, ...]
    update: bool = False


@dataclass(frozen=True)
class BrewPackages:
    packages: tuple[str, ...]


@dataclass(frozen=True)
class Directory:
    path: str
    mode: str = "755"
    user: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class File:
    path: str
    content: str
    mode: str = "644"
    user: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Line:
    path: str
    line: str
    replace: str | None = None  # a regular expression matching the line to replace


@dataclass(frozen=True)
class Rendered:
    """Every file the inventory gives this node, from the renderers the lab uses too: the
    services' configs, their launchd jobs or systemd units, the inference servers' and the
    document sync's jobs, and the inventory itself (at ``inventory``: what those jobs read)."""

    inventory: str
    services: bool = True  # also the launchd jobs / systemd units


@dataclass(frozen=True)
class User:
    """A system user the services run as (Debian; on a Mac the user is made when the Mac is set up)."""

    name: str
    home: str
    shell: str = "/usr/sbin/nologin"


@dataclass(frozen=True)
class Venv:
    path: str
    packages: tuple[str, ...] = ()
    python: str = "python3"


@dataclass(frozen=True)
class Command:
    """A command run only while ``creates`` does not exist (so a second run changes nothing)."""

    run: str
    creates: str


@dataclass(frozen=True)
class SystemdService:
    service: str
    running: bool = True
    enabled: bool = True


@dataclass(frozen=True)
class SshKey:
    path: str  # the private key; ``.pub`` beside it


@dataclass(frozen=True)
class MacDefaults:
    domain: str
    key: str
    type: Literal["bool", "int", "string"]
    value: str


@dataclass(frozen=True)
class Pmset:
    setting: str  # sleep, disksleep, displaysleep, womp, autorestart
    value: int


@dataclass(frozen=True)
class MacCheck:
    check: Literal["filevault", "firewall"]


@dataclass(frozen=True)
class LaunchdJob:
    label: str  # its plist is rendered by the renderers; this bootstraps it into launchd


# op name -> (arguments schema, the operating systems it runs on)
OPERATIONS: dict[str, tuple[type, tuple[str, ...]]] = {
    "apt.packages": (AptPackages, ("debian",)),
    "brew.packages": (BrewPackages, ("macos",)),
    "directory": (Directory, ("debian", "macos")),
    "file": (File, ("debian", "macos")),
    "line": (Line, ("debian", "macos")),
    "rendered": (Rendered, ("debian", "macos")),
    "user": (User, ("debian",)),
    "venv": (Venv, ("debian", "macos")),
    "command": (Command, ("debian", "macos")),
    "ssh.key": (SshKey, ("debian", "macos")),
    "systemd.service": (SystemdService, ("debian",)),
    "macos.defaults": (MacDefaults, ("macos",)),
    "macos.pmset": (Pmset, ("macos",)),
    "macos.check": (MacCheck, ("macos",)),
    "launchd.job": (LaunchdJob, ("macos",)),
}


@dataclass(frozen=True)
class PlaybookStep:
    name: str
    op: str
    args: object  # the operation's arguments dataclass
    roles: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Playbook:
    name: str
    os: str
    steps: tuple[PlaybookStep, ...]
    source: str = ""

    def steps_for(self, role: str) -> list[PlaybookStep]:
        return [s for s in self.steps if role in s.roles]


@dataclass(frozen=True)
class _Head:
    format: int
    name: str
    os: Literal["debian", "macos"]
    steps: tuple[object, ...] = field(default=(), metadata={"schema": False})


def load_playbook(path: Path) -> Playbook:
    from prontuario_cli.schema import read_document

    return parse_playbook(read_document(path, "playbook"), str(path))


def parse_playbook(text: str, source: str = "playbook.yaml") -> Playbook:
    import yaml

    from prontuario_cli.schema import Converter, compose, describe, raise_problems, shown

    root = compose(text, source, "playbook")
    conv = Converter(source)
    problems: list[str] = []

    def add(node, keypath: str, message: str) -> None:
        problems.append(f"{source}:{node.start_mark.line + 1}: {keypath}: {message}")

    if not isinstance(root, yaml.MappingNode):
        raise_problems(source, [f"{source}:1: (top level): expected a mapping (format, name, os, steps)"], "playbook")
    head_nodes = [(k, v) for k, v in root.value if not (isinstance(k, yaml.ScalarNode) and k.value == "steps")]
    steps_node = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "steps"), None)
    head = conv.convert(yaml.MappingNode(root.tag, head_nodes, root.start_mark, root.end_mark), _Head, "")
    format_node = next((v for k, v in head_nodes if isinstance(k, yaml.ScalarNode) and k.value == "format"), None)
    if format_node is not None and format_node.tag == "tag:yaml.org,2002:int" and format_node.value != "1":
        add(format_node, "format", f"format {format_node.value} is not known (this prontuario reads format 1)")
    if steps_node is None:
        add(root, "steps", "required key is missing")
    elif not isinstance(steps_node, yaml.SequenceNode) or not steps_node.value:
        add(steps_node, "steps", f"expected a non-empty list of steps, got {describe(steps_node, yaml)}")
    steps: list[PlaybookStep] = []
    names: dict[str, int] = {}
    for i, node in enumerate(steps_node.value if isinstance(steps_node, yaml.SequenceNode) else ()):
        key = f"steps[{i}]"
        if not isinstance(node, yaml.MappingNode):
            add(node, key, f"expected a mapping (name, op, args, roles), got {describe(node, yaml)}")
            continue
        fields = {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        for unknown in sorted(set(fields) - {"name", "op", "args", "roles"}):
            add(fields[unknown][0], f"{key}.{unknown}", "unknown key (known keys: name, op, args, roles)")
        name = _scalar(fields.get("name"), f"{key}.name", add, node)
        op = _scalar(fields.get("op"), f"{key}.op", add, node)
        if name is not None:
            if name in names:
                add(fields["name"][1], f"{key}.name", f"{shown(name)} is also the name of steps[{names[name]}]")
            names.setdefault(name, i)
        if op is not None and op not in OPERATIONS:
            import difflib

            close = difflib.get_close_matches(op[:100], list(OPERATIONS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(OPERATIONS)})"
            add(fields["op"][1], f"{key}.op", f"unknown operation {shown(op)}{hint}")
            continue
        if op is None:
            continue
        schema, systems = OPERATIONS[op]
        if head is not None and head.os not in systems:
            add(fields["op"][1], f"{key}.op", f"{op} does not run on {head.os} (only {', '.join(systems)})")
        args_node = fields.get("args", (None, yaml.MappingNode("tag:yaml.org,2002:map", [], node.start_mark, node.end_mark)))[1]
        args = conv.convert(args_node, schema, f"{key}.args")
        roles: tuple[str, ...] = ROLES
        if "roles" in fields:
            roles = conv.convert(fields["roles"][1], tuple[str, ...], f"{key}.roles") or ()
            for role in roles:
                if role not in ROLES:
                    add(fields["roles"][1], f"{key}.roles", f"{shown(role)} is not a role (one of: {', '.join(ROLES)})")
        if args is not None:
            for arg_name, value in _strings(args):
                for identifier in string.Template(value).get_identifiers():
                    if identifier not in VARIABLES:
                        add(args_node, f"{key}.args.{arg_name}", f"unknown variable ${{{identifier}}} (known: {', '.join(VARIABLES)})")
                if not string.Template(value).is_valid():
                    add(args_node, f"{key}.args.{arg_name}", "a lone '$' (write $$ for a dollar sign)")
        if name is not None and args is not None:
            steps.append(PlaybookStep(name, op, args, tuple(roles), node.start_mark.line + 1))
    problems += conv.problems
    if problems or head is None:
        raise_problems(source, problems, "playbook")
    return Playbook(head.name, head.os, tuple(steps), source)


def _scalar(pair, keypath: str, add, parent) -> str | None:
    import yaml

    if pair is None:
        add(parent, keypath, "required key is missing")
        return None
    node = pair[1]
    if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str" or not node.value.strip():
        add(node, keypath, "expected a non-empty string")
        return None
    return node.value


def _strings(args) -> list[tuple[str, str]]:
    out = []
    for f in dataclasses.fields(args):
        value = getattr(args, f.name)
        if isinstance(value, str):
            out.append((f.name, value))
        elif isinstance(value, tuple):
            out += [(f"{f.name}[{i}]", v) for i, v in enumerate(value) if isinstance(v, str)]
    return out


def substitute(args, variables: dict[str, str]):
    """``args`` with every ``${variable}`` of its strings filled in."""
    changes = {}
    for f in dataclasses.fields(args):
        value = getattr(args, f.name)
        if isinstance(value, str):
            changes[f.name] = string.Template(value).substitute(variables)
        elif isinstance(value, tuple):
            changes[f.name] = tuple(string.Template(v).substitute(variables) if isinstance(v, str) else v for v in value)
    return dataclasses.replace(args, **changes)
