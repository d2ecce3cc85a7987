"""prontuario's own programs as services on a Mac: the three inference servers and the document sync job.

``serve install`` and bootstrap both take these from here, so a Mac runs the servers
with the same command line whichever wrote the job. The document sync is a periodic job
(every ``docs.interval_s``): it runs ``prontuario docs sync --once --node NAME`` on each
Mac, which pushes only when that Mac is the Patroni leader.
"""

from __future__ import annotations

from pathlib import Path

from prontuario_cli.inventory import Inventory, Node
from prontuario_cli.services import Service

KINDS = ("llm", "stt", "face")
PORT_FIELD = {"llm": "medgemma", "stt": "whisper", "face": "facenet"}  # inventory nodes[].ports
DESCRIPTION = {"llm": "MedGemma (mlx-lm, pinned)", "stt": "Whisper (mlx-whisper)", "face": "FaceNet (onnxruntime)"}


def model_store(inventory: Inventory, node: Node) -> str:
    """Where a node keeps its models: its own ``models_dir``, else ``models.store``."""
    return node.models_dir or inventory.models.store


def server_services(inventory: Inventory, node: Node) -> list[tuple[str, Service]]:
    """(kind, Service) for every inference server the inventory gives this node a port for."""
    serve = inventory.serve
    out = []
    for kind in KINDS:
        port = getattr(node.ports, PORT_FIELD[kind])
        if not port:
            continue
        model = getattr(serve, kind)
        log = str(Path(serve.log_dir) / f"serve-{kind}.log")
        argv = (inventory.models.prontuario, "serve", kind, "--store", model_store(inventory, node), "--model", model,
                "--host", serve.host, "--port", str(port), "--log", log)
        env = {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        out.append((kind, Service(f"serve-{kind}", f"prontuario {DESCRIPTION[kind]} server", argv,
                                  str(Path(serve.log_dir) / f"serve-{kind}.supervisor.log"), serve.user, env)))
    return out


def docs_sync_service(inventory: Inventory, node: Node, inventory_path: str) -> Service | None:
    """The periodic document sync of one Mac (None for a node that is not a Mac)."""
    if node.role not in ("primary", "secondary"):
        return None
    argv = (inventory.models.prontuario, "-i", inventory_path, "docs", "sync", "--once", "--node", node.name, "--yes")
    log = str(Path(inventory.serve.log_dir) / "docs-sync.log")
    interval = max(1, round(inventory.docs.interval_s))
    return Service("docs-sync", f"prontuario document sync of {node.name} (every {interval} s; pushes only from the leader)",
                   argv, log, inventory.serve.user, {"PYTHONUNBUFFERED": "1"}, throttle_s=interval, stop_timeout_s=max(30, int(inventory.docs.timeout_s)),
                   interval_s=interval)  # fmt: skip


def app_files(inventory: Inventory, node: Node, inventory_path: str, init: str) -> list:
    """The job files (launchd plists or systemd units) of this node's servers and document sync."""
    from prontuario_cli.render.node import RenderedFile
    from prontuario_cli.render.units import service_path, service_text
    from prontuario_cli.services import systemd_timer

    services = [service for _, service in server_services(inventory, node)]
    sync = docs_sync_service(inventory, node, inventory_path)
    files = [RenderedFile(service_path(s, init), service_text(s, init), 0o644, s.name) for s in [*services, *([sync] if sync else [])]]
    if sync is not None and init == "systemd":
        files.append(RenderedFile(service_path(sync, init).removesuffix(".service") + ".timer", systemd_timer(sync), 0o644, sync.name))
    return files
