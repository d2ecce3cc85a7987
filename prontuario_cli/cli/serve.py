"""``prontuario serve``: run the local inference servers (foreground, for launchd/systemd) and watch them."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from prontuario_cli.cli.common import emit, get_env, output_options

app = typer.Typer(
    help=(
        "Run the local inference servers (mlx-lm for MedGemma, Whisper, FaceNet) and check their readiness."
        "\n\nEach server runs in the foreground on the active, verified version of its model (launchd or systemd"
        " supervises it: 'serve install' writes the units). Exit codes: 0 stopped cleanly, 65 the model does not"
        " verify or is quarantined (refused at start), 64 usage, 78 the inventory."
        "\n\nExample: prontuario serve stt --store /opt/prontuario/models --model whisper-large-v3 --port 8081"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _options(kind: str, model: str, store: Optional[Path], node: Optional[str], host: Optional[str], port: Optional[int],
             log_file: Optional[Path], queue: Optional[int], max_bytes: Optional[int], threshold: Optional[float] = None):
    """Options from the flags, else from the inventory's node (store, port), else the defaults."""
    from prontuario_cli.errors import UsageError
    from prontuario_cli.render.apps import PORT_FIELD
    from prontuario_cli.serve.options import DEFAULT_MAX_BYTES, DEFAULT_PORT, DEFAULT_QUEUE, ServeOptions

    inventory_node = None
    if node is not None or store is None:
        inventory = get_env().inventory()
        from prontuario_cli.models.nodes import store_of

        inventory_node = inventory.node(node) if node else None
        if inventory_node is None:
            raise UsageError("give --store DIR, or --node NAME to take the store and port from the inventory")
        store = store or Path(store_of(inventory, inventory_node))
    if port is None and inventory_node is not None:
        port = getattr(inventory_node.ports, PORT_FIELD[kind])
    port = port or DEFAULT_PORT[kind]
    if not 1 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port")
    if queue is not None and queue < 1:
        raise UsageError("--queue must be at least 1")
    if max_bytes is not None and max_bytes < 1024:
        raise UsageError("--max-bytes must be at least 1024")
    if threshold is not None and not 0 < threshold < 2:
        raise UsageError(f"--threshold {threshold:g}: a distance between unit vectors is between 0 and 2")
    if threshold is None:
        threshold = get_env().inventory().serve.match_threshold if inventory_node is not None else 1.0
    return ServeOptions(kind, model, str(store), host or "127.0.0.1", port, str(log_file) if log_file else None,
                        queue or DEFAULT_QUEUE[kind], max_bytes or DEFAULT_MAX_BYTES[kind], threshold)


def _run(kind: str, options) -> None:
    """Verify the model, then hand the process to the server (it returns when stopped)."""
    import importlib

    from prontuario_cli.serve.options import resolve

    loaded = resolve(options)  # refused here — exit 65 — when the model does not verify
    env = get_env()
    env.say(f"serve {kind}: {loaded.name} {loaded.version} on {options.url}")
    importlib.import_module(f"prontuario_cli.serve.{kind}").run(options, loaded)


MODEL_HELP = "The model's name (its manifest's name)."
STORE_HELP = "The model store on this node (default: the inventory's, with --node)."
NODE_HELP = "This node's name in the inventory: store and port come from there."
HOST_HELP = "Address to listen on (default 127.0.0.1: HAProxy on the same Mac in front)."
LOG_HELP = "Append the server's log here (default: stderr). Never holds request or response bodies."


@app.command("llm")
def llm(
    model: str = typer.Option("medgemma-4b", "--model", "-m", help=MODEL_HELP),
    store: Optional[Path] = typer.Option(None, "--store", metavar="DIR", help=STORE_HELP),
    node: Optional[str] = typer.Option(None, "--node", "-n", help=NODE_HELP),
    host: Optional[str] = typer.Option(None, "--host", help=HOST_HELP),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="TCP port (default: the node's ports.medgemma, else 8080)."),
    log_file: Optional[Path] = typer.Option(None, "--log", metavar="FILE", help=LOG_HELP),
    queue: Optional[int] = typer.Option(None, "--queue", help="Requests that may wait (then 503)."),
    max_bytes: Optional[int] = typer.Option(None, "--max-bytes", help="Largest request body (then 413)."),
) -> None:
    """Serve MedGemma with mlx-lm's own server, pinned to the verified active version (other model names: 4xx).

    Example: prontuario serve llm --store /opt/prontuario/models --model medgemma-4b --port 8080
    """
    _run("llm", _options("llm", model, store, node, host, port, log_file, queue, max_bytes))


@app.command("stt")
def stt(
    model: str = typer.Option("whisper-large-v3", "--model", "-m", help=MODEL_HELP),
    store: Optional[Path] = typer.Option(None, "--store", metavar="DIR", help=STORE_HELP),
    node: Optional[str] = typer.Option(None, "--node", "-n", help=NODE_HELP),
    host: Optional[str] = typer.Option(None, "--host", help=HOST_HELP),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="TCP port (default: the node's ports.whisper, else 8081)."),
    log_file: Optional[Path] = typer.Option(None, "--log", metavar="FILE", help=LOG_HELP),
    queue: Optional[int] = typer.Option(None, "--queue", help="Requests that may wait (then 503 with Retry-After)."),
    max_bytes: Optional[int] = typer.Option(None, "--max-bytes", help="Largest upload (default 25 MiB; then 413)."),
) -> None:
    """Serve Whisper (mlx-whisper) behind OpenAI's POST /v1/audio/transcriptions.

    Example: prontuario serve stt --store /opt/prontuario/models --model whisper-large-v3 --port 8081
    """
    _run("stt", _options("stt", model, store, node, host, port, log_file, queue, max_bytes))


@app.command("face")
def face(
    model: str = typer.Option("facenet", "--model", "-m", help=MODEL_HELP),
    store: Optional[Path] = typer.Option(None, "--store", metavar="DIR", help=STORE_HELP),
    node: Optional[str] = typer.Option(None, "--node", "-n", help=NODE_HELP),
    host: Optional[str] = typer.Option(None, "--host", help=HOST_HELP),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="TCP port (default: the node's ports.facenet, else 8082)."),
    log_file: Optional[Path] = typer.Option(None, "--log", metavar="FILE", help=LOG_HELP),
    queue: Optional[int] = typer.Option(None, "--queue", help="Requests that may wait (then 503 with Retry-After)."),
    max_bytes: Optional[int] = typer.Option(None, "--max-bytes", help="Largest upload (default 8 MiB; then 413)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="L2 distance between unit embeddings under which two faces match (default: serve.match_threshold, 1.0)."),
) -> None:
    """Serve FaceNet (onnxruntime): POST /v1/face/embed and /v1/face/verify.

    Example: prontuario serve face --store /opt/prontuario/models --model facenet --port 8082
    """
    _run("face", _options("face", model, store, node, host, port, log_file, queue, max_bytes, threshold))


@app.command("status")
@output_options
def status(
    node: Optional[List[str]] = typer.Option(None, "--node", "-n", help="A node of the inventory (repeat; default: both Macs)."),
    url: Optional[List[str]] = typer.Option(None, "--url", help="Ask these servers directly (repeat), e.g. http://127.0.0.1:8081."),
) -> None:
    """Each server's state, readiness, model and digest, memory, uptime, queue depth and requests served (like 'ollama ps').

    Example: prontuario serve status
    """
    from prontuario_cli.serve.status import status_of_nodes, status_of_urls

    if url:
        emit(status_of_urls(list(url)))
        return
    emit(status_of_nodes(get_env().inventory(), list(node or [])))


@app.command("install")
@output_options
def install(
    node: str = typer.Option(..., "--node", "-n", help="The node whose servers to install (its os picks launchd or systemd)."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", metavar="DIR", help="Where to write (default /Library/LaunchDaemons or /etc/systemd/system)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the files; write nothing."),
) -> None:
    """Write the launchd plists (macOS) or systemd units (Debian) that keep the node's servers running.

    KeepAlive / Restart=always, a restart throttle, SIGTERM then 40 s to finish in-flight
    requests, HF_HUB_OFFLINE=1, logs in serve.log_dir. Each plist is parsed back (and, on
    a Mac, checked with plutil -lint); it is then loaded with launchctl bootstrap (shown).

    Example: prontuario serve install --node mac-studio-1 --dry-run
    """
    from prontuario_cli.cli.common import audited, confirm
    from prontuario_cli.serve.units import render

    env = get_env()
    inventory = env.inventory()
    units = render(inventory, inventory.node(node), output_dir)
    args = {"node": node, "files": [f.path for f in units.files]}
    if dry_run:
        with audited("serve install", args, dry_run=True):
            emit(units)
        return
    confirm(f"write {len(units.files)} {units.system} files for {node}?", yes=yes)
    import dataclasses
    import shutil
    import subprocess

    from prontuario_cli.files import write_atomically

    with audited("serve install", args):
        for f in units.files:
            Path(f.path).parent.mkdir(parents=True, exist_ok=True)
            write_atomically(Path(f.path), f.text, 0o644)
            if units.system == "launchd" and shutil.which("plutil"):
                lint = subprocess.run(["plutil", "-lint", f.path], capture_output=True, text=True, timeout=20)
                if lint.returncode != 0:
                    from prontuario_cli.errors import ConfigError

                    raise ConfigError(f"plutil -lint refused {f.path}: {lint.stdout.strip() or lint.stderr.strip()}")
    emit(dataclasses.replace(units, written=True))
