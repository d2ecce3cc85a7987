"""Secrets: read from an environment variable or a 0600 file, never from cluster.yaml.

A secret is read only when a command needs it, never when the inventory loads: a
secret file that hangs (a FIFO, a dead network mount) must not stop ``inventory show``
or ``audit verify``, which need no secret. Files are opened without blocking, must be
regular files no larger than :data:`MAX_SECRET_BYTES`, owner-only (like ssh's keys),
and are read within :data:`READ_TIMEOUT_S`. Empty values are refused: an empty
password is a mistake, not a choice.

Every value read is remembered, as is every value the inventory's environment
variables hold, so :func:`redact` can blank it out of anything logged, audited or
printed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from prontuario_cli.errors import PermissionProblem, SecretError, SecretMissing

REDACTED = "***"
MAX_SECRET_BYTES = 64 * 1024  # a password, a token or a service-account key; never more
READ_TIMEOUT_S = 5.0
_known: set[str] = set()


def key_path(name: str) -> str:
    """The inventory key a secret is configured under: ``postgres_password`` -> ``secrets.postgres_password``."""
    return name if "." in name else f"secrets.{name}"


def read_secret(ref, name: str) -> str:
    """The value of secret ``name`` from its SecretRef; refuses unsafe files as ssh does."""
    key = key_path(name)
    if ref is None:
        raise SecretMissing(f"{key} is not configured", hint=f"add {key}: {{env: VAR}} or {{file: PATH}} to the inventory")
    if ref.env is None and not ref.file:
        raise SecretError(f"{key} names neither an environment variable nor a file", hint="run: prontuario inventory check")
    if ref.env is not None:
        if not ref.env.strip():
            raise SecretError(f"{key}: env: names no variable", hint="run: prontuario inventory check")
        value = os.environ.get(ref.env)
        if value is None:
            raise SecretMissing(f"{key}: environment variable {ref.env} is not set")
        if not value.strip():
            raise SecretMissing(f"{key}: environment variable {ref.env} is empty", hint=f"export {ref.env} with the secret's value")
    else:
        value = read_secret_file(Path(ref.file).expanduser(), name)
    remember(value)
    return value


def optional_secret(ref, name: str) -> str | None:
    """The secret's value, or None when the inventory does not configure it."""
    return read_secret(ref, name) if ref is not None else None


def secret_or_none(inventory, name: str) -> str | None:
    """``secrets.<name>`` of the inventory, or None when it is not configured."""
    return optional_secret(getattr(inventory.secrets, name), name)


def read_secret_file(path: Path, name: str, *, timeout_s: float = READ_TIMEOUT_S) -> str:
    """The text of the secret file ``path`` (ends of line stripped), remembered for :func:`redact`.

    Refused: anything but a regular file (a FIFO would block forever), a file readable
    by group or others, one larger than :data:`MAX_SECRET_BYTES`, an empty one. The
    read runs in a worker thread so a hung file system costs ``timeout_s``, not the
    terminal.
    """
    import threading

    key = key_path(name)
    outcome: list = []

    def read() -> None:
        try:
            outcome.append(_read_regular_file(path, key))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=read, name=f"read {key}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not outcome:
        raise SecretError(f"{key}: reading {path} took more than {timeout_s:g} s", hint="check the file and the file system it is on")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    value = outcome[0]
    remember(value)
    return value


def _read_regular_file(path: Path, key: str) -> str:
    """Open without blocking, check what was opened (not the name: no race), read a bounded amount."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SecretMissing(f"{key}: file {path} does not exist") from None
    except OSError as exc:
        raise SecretError(f"{key}: cannot read {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretError(f"{key}: {path} is not a regular file ({_kind(info.st_mode)}); refusing to read it")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise PermissionProblem(
                f"{key}: {path} is readable by group or others (mode {mode:04o}); refusing to use it",
                hint=f"run: chmod 600 {path}",
            )
        if info.st_size > MAX_SECRET_BYTES:
            raise SecretError(f"{key}: {path} is {info.st_size} bytes, more than a secret can be ({MAX_SECRET_BYTES})")
        chunks, size = [], 0
        while size <= MAX_SECRET_BYTES:
            chunk = os.read(fd, MAX_SECRET_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise SecretError(f"{key}: cannot read {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > MAX_SECRET_BYTES:
        raise SecretError(f"{key}: {path} is larger than {MAX_SECRET_BYTES} bytes, more than a secret can be")
    try:
        value = b"".join(chunks).decode("utf-8").strip("\r\n")
    except UnicodeDecodeError:
        raise SecretError(f"{key}: {path} is not UTF-8 text") from None
    if not value.strip():
        raise SecretMissing(f"{key}: {path} is empty")
    return value


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return kind
    return "not a file"


def remember_inventory(inventory) -> None:
    """Know the values of the inventory's environment-variable secrets before anything can print them.

    Only the environment is read here (no file: see the module docstring); a secret
    file's value is remembered when a command reads it.
    """
    from prontuario_cli.inventory import secret_refs

    for _, ref in secret_refs(inventory):
        if ref.env and os.environ.get(ref.env):
            remember(os.environ[ref.env])


def remember(value: str) -> None:
    """Redact ``value`` from now on (under 3 characters, or only blanks, it would blank ordinary text)."""
    if value and len(value.strip()) >= 3:
        _known.add(value)


def redact(text: str) -> str:
    """``text`` with every secret value read so far replaced by ***."""
    for value in sorted(_known, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


SENSITIVE_WORDS = ("password", "passwd", "secret", "token", "credential", "apikey", "api_key")


def is_sensitive(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    return any(word in lowered for word in SENSITIVE_WORDS)


def redact_args(args):
    """A copy of command arguments with sensitive names' values and known secrets blanked."""
    if isinstance(args, dict):
        return {k: (REDACTED if is_sensitive(str(k)) and v not in (None, False) else redact_args(v)) for k, v in args.items()}
    if isinstance(args, (list, tuple)):
        out, hide_next = [], False
        for item in args:
            if hide_next:
                out.append(REDACTED)
                hide_next = False
                continue
            if isinstance(item, str) and item.startswith("--") and is_sensitive(item):
                if "=" in item:
                    out.append(item.split("=", 1)[0] + "=" + REDACTED)
                else:
                    out.append(item)
                    hide_next = True
                continue
            out.append(redact_args(item))
        return out
    if isinstance(args, str):
        return redact(args)
    return args
