"""Writing the example inventory (``inventory init``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prontuario_cli.errors import RefusedError, UsageError

EXAMPLE = Path(__file__).with_name("example_cluster.yaml")


@dataclass(frozen=True)
class InitReport:
    path: str
    action: str  # "would write" | "wrote"
    bytes: int


def write_example(path: Path, *, force: bool, dry_run: bool) -> InitReport:
    text = EXAMPLE.read_text(encoding="utf-8")
    if path.is_dir():  # --force would not replace a directory anyway
        raise UsageError(f"{path} is a directory", hint=f"give the path of the file to write, e.g. {path / 'cluster.yaml'}")
    if path.exists() and not force:
        raise RefusedError(f"{path} already exists; not overwriting it", hint="pass --force to replace it")
    if dry_run:
        return InitReport(str(path), "would write", len(text.encode()))
    from prontuario_cli.files import write_atomically

    write_atomically(path, text, 0o640)
    return InitReport(str(path), "wrote", len(text.encode()))
