"""Files prontuario writes: atomically (a reader sees the old one or the new one, never half),
and the one lock file a run holds so that two never run at once."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from prontuario_cli.errors import OperationFailed, PermissionProblem, ProntuarioError


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


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, holder: str, busy: Callable[[str], ProntuarioError]) -> Iterator[None]:
    """Hold a non-blocking flock on ``path`` for the ``with`` block.

    The lock file records ``holder`` (pid, what, since when); a second taker gets
    ``busy(what the file says)`` raised at once, never a wait. The kernel drops the
    lock when the process dies, so a crashed run never leaves it stuck.
    """
    from prontuario_cli.clock import utc_now

    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise PermissionProblem(f"cannot open the lock {target}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy(os.pread(fd, 512, 0).decode(errors="replace").strip() or "unknown") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {holder}, since {utc_now()}".encode(), 0)
        yield
    finally:
        os.close(fd)
