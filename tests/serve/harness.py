"""What the server tests share: a store holding a tiny model, and a real server started by `prontuario serve`."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PRONTUARIO = str(Path(sys.executable).parent / "prontuario")
ROLE = {"llm": "llm", "stt": "stt", "face": "face"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def install_model(store: Path, name: str, role: str, directory: Path) -> str:
    """Lock ``directory`` as model ``name`` and pull it into ``store`` (active, verified); its version."""
    from prontuario_cli.models.local import pull
    from prontuario_cli.models.manifest import RUNTIME_OF_ROLE, Manifest, Source
    from prontuario_cli.models.store import Store
    from prontuario_cli.models.verify import hash_directory

    manifest = Manifest(name, role, RUNTIME_OF_ROLE[role], Source(origin="built by the tests"), tuple(hash_directory(directory)))
    pull(Store(store), manifest, directory)
    return manifest.version


def refused_at_start(kind: str, store: Path, model: str, tmp_path: Path, timeout_s: float = 120.0) -> tuple[int, str]:
    """Run ``prontuario serve KIND`` on a model it must refuse; (exit code, stderr) once it exits (bounded)."""
    done = subprocess.run([PRONTUARIO, "serve", kind, "--store", str(store), "--model", model, "--port", str(free_port()),
                           "--log", str(tmp_path / f"serve-{kind}.log")], capture_output=True, text=True, timeout=timeout_s, check=False)
    return done.returncode, done.stderr


@dataclass
class Server:
    kind: str
    url: str
    proc: subprocess.Popen
    log: Path

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM (graceful), then SIGKILL after ``timeout_s``; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def start_server(kind: str, store: Path, model: str, tmp_path: Path, *extra: str, ready_within_s: float = 120.0, expect_ready: bool = True) -> Server:
    """``prontuario serve KIND --store STORE --model MODEL --port P --log FILE`` as a real process;
    waits (bounded) until /ready answers 200 (or, without ``expect_ready``, until it answers at all)."""
    import httpx

    port = free_port()
    log = tmp_path / f"serve-{kind}.log"
    proc = subprocess.Popen([PRONTUARIO, "serve", kind, "--store", str(store), "--model", model, "--port", str(port), "--log", str(log), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server = Server(kind, f"http://127.0.0.1:{port}", proc, log)
    from prontuario_cli.errors import ProntuarioError
    from prontuario_cli.poll import wait_for

    seen = {"last": "no answer"}

    def settled() -> bool:
        """Exited (the caller looks at why), ready, or — without ``expect_ready`` — answering."""
        if proc.poll() is not None:
            return True
        try:
            answer = httpx.get(f"{server.url}/ready", timeout=2)
        except httpx.HTTPError as exc:
            seen["last"] = str(exc)
            return False
        seen["last"] = f"{answer.status_code} {answer.text[:200]}"
        return answer.status_code == 200 or not expect_ready

    try:
        wait_for(f"serve {kind} ready", settled, ready_within_s, interval_s=0.2)
    except ProntuarioError:
        server.stop()
        pytest.fail(f"serve {kind} was not ready within {ready_within_s:g} s: {seen['last']}; log: {log.read_text()[-1000:] if log.exists() else ''}")
    return server


def logs_of(tmp_path: Path) -> str:
    """Every log file a test's servers wrote."""
    return "\n".join(p.read_text(errors="replace") for p in tmp_path.rglob("*.log"))


