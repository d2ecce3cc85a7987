"""How a server is started: which model (verified), where it listens, its limits and log."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


RUNTIME = {"llm": "mlx-lm", "stt": "mlx-whisper", "face": "onnxruntime"}
DEFAULT_PORT = {"llm": 8080, "stt": 8081, "face": 8082}
DEFAULT_QUEUE = {"llm": 8, "stt": 4, "face": 16}
DEFAULT_MAX_BYTES = {"llm": 1 << 20, "stt": 25 << 20, "face": 8 << 20}  # OpenAI's audio limit is 25 MB


@dataclass(frozen=True)
class ServeOptions:
    kind: str
    model: str
    store: str
    host: str = "127.0.0.1"
    port: int = 0
    log_file: str | None = None
    queue: int = 4
    max_bytes: int = 1 << 20
    match_threshold: float = 1.0  # face: the distance under which two faces match

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class Loaded:
    """The model a server may load: the active version's directory, verified just now."""

    name: str
    version: str
    path: Path
    runtime: str


def resolve(options: ServeOptions) -> Loaded:
    """The active, verified version of the server's model; IntegrityError (65) otherwise.

    An unverified, quarantined or damaged version is never given to a server, and a model
    whose manifest names another runtime is refused (a FaceNet ONNX behind mlx-lm).
    """
    from prontuario_cli.errors import IntegrityError
    from prontuario_cli.models.local import servable
    from prontuario_cli.models.store import Store

    store = Store(options.store)
    path, version = servable(store, options.model)
    manifest = store.manifest(options.model, version)
    if manifest.runtime != RUNTIME[options.kind]:
        raise IntegrityError(f"{options.model} runs on {manifest.runtime}; 'serve {options.kind}' serves {RUNTIME[options.kind]} models")
    return Loaded(options.model, version, path, manifest.runtime)
