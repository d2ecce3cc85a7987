"""Writing a file so that a reader sees the old one or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from prontuario_cli.errors import OperationFailed


def write_atomically(path: str | os.PathLike, text: str, mode: int | None = None) -> Path:
    """Write ``text`` to a temporary file beside ``path``, fsync it, rename it over ``path``.

    ``mode`` is the new file's mode; None keeps an existing file's mode (0644 for a new
    one). Missing parent directories are created. Raises OperationFailed naming the file.
    """
    target = Path(path).expanduser()
    if mode is None:
        try:
            mode = target.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise OperationFailed(f"cannot write {target}: {exc.strerror or exc}", hint="check the directory, its permissions and free space") from None
    return target
