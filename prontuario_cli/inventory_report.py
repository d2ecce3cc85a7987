"""Reports about the inventory itself (``inventory check`` / ``inventory show``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from prontuario_cli.errors import ExitCode
from prontuario_cli.inventory import Inventory, Node, Ports
from prontuario_cli.report import Nagios, Status, Table


@dataclass(frozen=True)
class SecretStatus:
    """Whether one secret can be read here (never its value)."""

    name: str
    source: str
    status: str  # ok | missing | unsafe | unreadable
    message: str = ""


@dataclass(frozen=True)
class CheckReport:
    inventory: str
    valid: bool
    nodes: int
    witness: bool
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    secrets: tuple[SecretStatus, ...] = ()

    def status(self) -> Status:
        if not self.valid or any(s.status != "ok" for s in self.secrets):
            return Status.CRITICAL
        return Status.WARNING if self.warnings else Status.OK

    def exit_code(self) -> ExitCode:
        if not self.valid:
            return ExitCode.CONFIG
        if any(s.status == "unsafe" for s in self.secrets):
            return ExitCode.PERMISSION
        if self.secrets and any(s.status != "ok" for s in self.secrets):
            return ExitCode.CONFIG
        return ExitCode.WARNING if self.warnings else ExitCode.OK

    def nagios(self) -> Nagios:
        if not self.valid:
            from prontuario_cli.schema import problem_count

            summary = f"{self.inventory}: {problem_count(self.problems)} problem(s): {self.problems[0]}"
        elif self.nagios_summary_secrets():
            summary = f"{self.inventory}: {self.nagios_summary_secrets()}"
        elif self.warnings:
            summary = f"{self.inventory}: valid with {len(self.warnings)} warning(s): {self.warnings[0]}"
        else:
            summary = f"{self.inventory}: valid, {self.nodes} nodes"
        return Nagios(self.status(), summary)

    def tables(self) -> list[Table]:
        verdict = "valid" if self.valid else "INVALID"
        rows = [(self.inventory, verdict, self.nodes, self.witness)]
        out = [Table("", ("inventory", "verdict", "nodes", "witness"), tuple(rows))]
        if self.problems:
            out.append(Table("problems", ("problem",), tuple((p,) for p in self.problems)))
        if self.warnings:
            out.append(Table("warnings", ("warning",), tuple((w,) for w in self.warnings)))
        if self.secrets:
            rows = tuple((s.name, s.source, s.status, s.message) for s in self.secrets)
            out.append(Table("secrets", ("secret", "source", "status", "what to do"), rows))
        return out

    def nagios_summary_secrets(self) -> str:
        bad = [s for s in self.secrets if s.status != "ok"]
        return f"secret {bad[0].name}: {bad[0].message}" if bad else ""


def check_report(path: str, inventory: Inventory | None, problems: list[str], *, secrets: bool = False) -> CheckReport:
    if inventory is None:
        return CheckReport(inventory=path, valid=False, nodes=0, witness=False, problems=tuple(problems))
    return CheckReport(
        inventory=path,
        valid=True,
        nodes=len(inventory.nodes),
        witness=any(n.role == "witness" for n in inventory.nodes),
        warnings=inventory.warnings,
        secrets=secret_statuses(inventory) if secrets else (),
    )


def secret_statuses(inventory: Inventory) -> tuple[SecretStatus, ...]:
    """Try to read every secret the inventory names; report where each one stands."""
    from prontuario_cli.errors import PermissionProblem, ProntuarioError
    from prontuario_cli.inventory import secret_refs
    from pathlib import Path

    from prontuario_cli.secrets import read_secret, read_secret_file

    reads = [
        (keypath.rsplit(".", 1)[-1] if keypath.startswith("secrets.") else keypath,
         f"env {ref.env}" if ref.env else f"file {ref.file}", lambda ref=ref, keypath=keypath: read_secret(ref, keypath.rsplit(".", 1)[-1]))
        for keypath, ref in secret_refs(inventory)
    ]
    credentials = inventory.cloud.credentials_file if inventory.cloud else None
    if credentials:  # the service-account key: a secret file under the same rule
        path = Path(credentials).expanduser()
        reads.append(("cloud.credentials_file", f"file {credentials}", lambda: read_secret_file(path, "cloud.credentials_file")))
    out = []
    for name, source, read in reads:
        try:
            read()
            out.append(SecretStatus(name, source, "ok"))
        except PermissionProblem as exc:
            out.append(SecretStatus(name, source, "unsafe", exc.one_line()))
        except ProntuarioError as exc:
            out.append(SecretStatus(name, source, "missing" if getattr(exc, "missing", False) else "unreadable", exc.one_line()))
    return tuple(out)


@dataclass(frozen=True)
class NodeRow:
    name: str
    role: str
    address: str
    os: str
    ssh: str
    ports: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ShowReport:
    inventory: str
    cluster: str
    nodes: tuple[NodeRow, ...]
    health_checks: dict
    targets: dict
    cloud: dict | None
    secrets: dict[str, str]

    def tables(self) -> list[Table]:
        node_rows = tuple((n.name, n.role, n.address, n.os, n.ssh) for n in self.nodes)
        services = [f.name for f in dataclasses.fields(Ports) if any(f.name in n.ports for n in self.nodes)]
        port_rows = tuple((service, *(n.ports.get(service) for n in self.nodes)) for service in services)
        hc = self.health_checks
        t = self.targets
        target_rows = tuple(
            (name, t[name]["rto_s"], t[name]["rpo_s"]) for name in ("primary_lost", "secondary_lost", "both_lost", "site_lost")
        )
        out = [
            Table(f"cluster {self.cluster} ({self.inventory})", ("node", "role", "address", "os", "ssh"), node_rows),
            Table("ports", ("service", *(n.name for n in self.nodes)), port_rows),
            Table("health checks", ("interval_s", "timeout_s", "fall", "rise"), ((hc["interval_s"], hc["timeout_s"], hc["fall"], hc["rise"]),)),
            Table("targets", ("scenario", "rto_s", "rpo_s"), target_rows),
        ]
        if self.cloud:
            out.append(Table("cloud fallback", ("setting", "value"), tuple(self.cloud.items())))
        if self.secrets:
            out.append(Table("secrets (where they are read from)", ("secret", "source"), tuple(self.secrets.items())))
        return out


def node_row(node: Node) -> NodeRow:
    ports = {f.name: getattr(node.ports, f.name) for f in dataclasses.fields(Ports) if getattr(node.ports, f.name) is not None}
    return NodeRow(node.name, node.role, node.address, node.os, f"{node.ssh.user}@{node.address}:{node.ssh.port}", ports)


def show_report(inventory: Inventory, node: str | None = None) -> ShowReport:
    from prontuario_cli.report import to_jsonable

    nodes = (inventory.node(node),) if node else inventory.nodes
    secrets = {}
    for f in dataclasses.fields(inventory.secrets):
        ref = getattr(inventory.secrets, f.name)
        if ref is not None:
            secrets[f.name] = f"env {ref.env}" if ref.env else f"file {ref.file}"
    cloud = None
    if inventory.cloud:
        cloud = {k: v for k, v in to_jsonable(inventory.cloud).items() if k != "data" and v is not None}
    return ShowReport(
        inventory=inventory.source,
        cluster=inventory.cluster.name,
        nodes=tuple(node_row(n) for n in nodes),
        health_checks=to_jsonable(inventory.health_checks),
        targets=to_jsonable(inventory.targets),
        cloud=cloud,
        secrets=secrets,
    )
