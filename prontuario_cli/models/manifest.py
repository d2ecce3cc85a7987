"""Model manifests: which files make a model, by relative path, size and sha256.

One YAML file per model (``models/NAME.yaml``), read like the inventory (every problem
as ``file:line: key: what``, all at once)::

    format: 1
    name: medgemma-4b
    role: llm                 # llm | stt | face
    runtime: mlx-lm           # mlx-lm | mlx-whisper | onnxruntime
    source: {hub: {repo: google/medgemma-4b-it, revision: 1f2e3d4}}   # or {origin: "text"}
    files:
      - {path: config.json, size: 1024, sha256: 9f86d0...}

sha256 is the identity: it is what the Hub calls an LFS file's oid. A model's *version*
is the first 12 hex digits of the sha256 of its sorted file list (``path size sha256``
lines), so the same bytes always make the same version on both Macs, and any change of
any file makes another.

Paths are relative, POSIX, and stay inside the model directory: absolute paths, ``..``,
empty or ``.`` components, backslashes and names starting with ``.prontuario`` are
refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


Role = Literal["llm", "stt", "face"]
Runtime = Literal["mlx-lm", "mlx-whisper", "onnxruntime"]
RUNTIME_OF_ROLE = {"llm": "mlx-lm", "stt": "mlx-whisper", "face": "onnxruntime"}
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
VERSION_LENGTH = 12
RESERVED_PREFIX = ".prontuario"
MAX_FILE_BYTES = 2**63 - 1  # what a file size (off_t) can be


@dataclass(frozen=True)
class HubSource:
    repo: str
    revision: str


@dataclass(frozen=True)
class Source:
    hub: HubSource | None = None
    origin: str | None = None  # where a locally built or converted model came from


@dataclass(frozen=True)
class ModelFile:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    name: str
    role: Role
    runtime: Runtime
    source: Source
    files: tuple[ModelFile, ...]
    format: int = 1
    origin_path: str = field(default="", metadata={"schema": False})  # the file it was read from

    @property
    def version(self) -> str:
        return version_of(self.files)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> ModelFile | None:
        return next((f for f in self.files if f.path == path), None)


def version_of(files) -> str:
    """The version of a set of files: short sha256 of the sorted ``path size sha256`` lines."""
    lines = "".join(f"{f.path} {f.size} {f.sha256}\n" for f in sorted(files, key=lambda f: f.path))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()[:VERSION_LENGTH]


def path_problem(path: str) -> str | None:
    """Why a manifest path is unsafe, or None. Paths must stay inside the model directory."""
    if not path:
        return "is empty"
    if "\\" in path or "\x00" in path:
        return "has a backslash or a NUL byte"
    if path.startswith("/"):
        return "is absolute (paths are relative to the model directory)"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "leaves the model directory or is not normalised ('..', '.', '//' or a trailing '/')"
    if parts[0].startswith(RESERVED_PREFIX):
        return f"starts with {RESERVED_PREFIX!r}, reserved for prontuario's own files"
    return None


# --------------------------------------------------------------------------- reading


def load_manifest(path: str | Path) -> Manifest:
    from prontuario_cli.schema import read_document

    text = read_document(path, "manifest", missing_hint="write one with: prontuario models lock NAME --from-dir PATH")
    return parse_manifest(text, str(path))


def parse_manifest(text: str, source: str = "manifest.yaml") -> Manifest:
    import dataclasses

    from prontuario_cli.schema import Converter, compose, raise_problems

    root = compose(text, source, "manifest")
    conv = Converter(source)
    manifest = conv.convert(root, Manifest, "")
    problems = list(conv.problems)
    if manifest is not None:
        problems += _validate(manifest, conv)
    if problems or manifest is None:
        raise_problems(source, problems, "manifest")
    return dataclasses.replace(manifest, origin_path=source)


def _validate(m: Manifest, conv) -> list[str]:
    from prontuario_cli.schema import shown

    out: list[str] = []

    def add(keypath: str, message: str) -> None:
        out.append(f"{conv.source}:{conv.line_of(keypath)}: {keypath}: {message}")

    if m.format != 1:
        add("format", f"format {m.format} is not known (this prontuario reads format 1)")
    if not NAME.match(m.name):
        add("name", f"{shown(m.name)} is not a model name (lower-case letters, digits, '.', '_', '-'; at most 64)")
    if RUNTIME_OF_ROLE[m.role] != m.runtime:
        add("runtime", f"a {m.role} model runs on {RUNTIME_OF_ROLE[m.role]}, not {m.runtime}")
    if (m.source.hub is None) == (m.source.origin is None):
        add("source", "give exactly one of hub: {repo, revision} or origin: TEXT")
    if not m.files:
        add("files", "a model has at least one file")
    seen: dict[str, int] = {}
    for i, f in enumerate(m.files):
        key = f"files[{i}]"
        problem = path_problem(f.path)
        if problem:
            add(f"{key}.path", f"{shown(f.path)} {problem}")
        folded = f.path.casefold()  # APFS is case-insensitive: a.bin and A.bin are one file on a Mac
        if folded in seen:
            add(f"{key}.path", f"{shown(f.path)} is listed twice (also files[{seen[folded]}])")
        seen.setdefault(folded, i)
        if f.size < 0:
            add(f"{key}.size", "must be 0 or more bytes")
        elif f.size > MAX_FILE_BYTES:
            add(f"{key}.size", f"{f.size} bytes is more than a file can hold (at most {MAX_FILE_BYTES})")
        if not SHA256.match(f.sha256):
            add(f"{key}.sha256", "must be 64 lower-case hex digits (the file's sha256)")
    paths = {f.path for f in m.files}
    for i, f in enumerate(m.files):  # a file may not also be a directory of another
        parts = f.path.split("/")
        for cut in range(1, len(parts)):
            if "/".join(parts[:cut]) in paths:
                add(f"files[{i}].path", f"{shown(f.path)} is under {shown('/'.join(parts[:cut]))}, which is a file")
    return out


# --------------------------------------------------------------------------- writing


def manifest_text(m: Manifest) -> str:
    """The manifest as YAML (files sorted by path), with a header saying what it is."""
    import yaml

    source: dict = {"hub": {"repo": m.source.hub.repo, "revision": m.source.hub.revision}} if m.source.hub else {"origin": m.source.origin}
    body = {
        "format": m.format,
        "name": m.name,
        "role": m.role,
        "runtime": m.runtime,
        "source": source,
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in sorted(m.files, key=lambda f: f.path)],
    }
    header = (
        f"# Model manifest for {m.name}, version {m.version} ({len(m.files)} files, {m.total_bytes} bytes).\n"
        "# Written by 'prontuario models lock' from a verified directory. Every file is pinned by sha256.\n"
    )
    return header + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=1 << 16)
