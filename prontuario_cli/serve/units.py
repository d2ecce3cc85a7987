"""The inference servers of one node as services (launchd on a Mac, systemd on Debian), from the inventory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prontuario_cli.errors import UsageError
from prontuario_cli.inventory import Inventory, Node
from prontuario_cli.report import Table
from prontuario_cli.services import Service, check_plist, plist_text, systemd_unit

DEFAULT_DIR = {"macos": "/Library/LaunchDaemons", "debian": "/etc/systemd/system"}


def services_of(inventory: Inventory, node: Node) -> list[tuple[str, Service]]:
    """(kind, Service) for every server the inventory gives this node a port for (the shared renderer's)."""
    from prontuario_cli.render.apps import server_services

    return server_services(inventory, node)


@dataclass(frozen=True)
class UnitFile:
    kind: str
    path: str
    text: str


@dataclass(frozen=True)
class Units:
    node: str
    system: str  # launchd | systemd
    files: tuple[UnitFile, ...]
    written: bool = False
    next_step: str = ""

    def tables(self) -> list[Table]:
        rows = tuple((f.kind, f.path, "written" if self.written else "would write") for f in self.files)
        out = [Table(f"{self.system} units for {self.node}", ("server", "file", "state"), rows)]
        if self.next_step:
            out.append(Table("", ("then",), ((self.next_step,),)))
        return out


def render(inventory: Inventory, node: Node, directory: Path | None = None) -> Units:
    """Each server's unit file for ``node`` (plists on macOS, systemd units on Debian), checked."""
    services = services_of(inventory, node)
    if not services:
        raise UsageError(f"{node.name} has no inference server port in the inventory (ports.medgemma, whisper, facenet)")
    directory = Path(directory or DEFAULT_DIR[node.os])
    files = []
    for kind, service in services:
        if node.os == "macos":
            text = plist_text(service)
            check_plist(text)
            files.append(UnitFile(kind, str(directory / service.plist_name), text))
        else:
            files.append(UnitFile(kind, str(directory / service.unit_name), systemd_unit(service)))
    system = "launchd" if node.os == "macos" else "systemd"
    if system == "launchd":
        step = "; ".join(f"launchctl bootstrap system {f.path}" for f in files)
    else:
        step = "systemctl daemon-reload && systemctl enable --now " + " ".join(Path(f.path).name for f in files)
    return Units(node.name, system, tuple(files), next_step=step)
