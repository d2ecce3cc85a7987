"""Secrets: read from an environment variable or a 0600 file, never from cluster.yaml.

Every value read is remembered so :func:`redact` can blank it out of anything that
is logged, audited or printed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from prontuario_cli.errors import PermissionProblem, SecretError

REDACTED = "***"
_known: set[str] = set()


def read_secret(ref, name: str) -> str:
    """The value of secret ``name`` from its SecretRef; refuses unsafe files as ssh does."""
    if ref is None:
        raise SecretError(f"secret {name} is not configured", hint=f"add secrets.{name}: {{env: VAR}} or {{file: PATH}} to the inventory")
    if ref.env:
        value = os.environ.get(ref.env)
        if value is None:
            raise SecretError(f"secret {name}: environment variable {ref.env} is not set")
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


def read_secret_file(path: Path, name: str) -> str:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SecretError(f"secret {name}: file {path} does not exist") from None
    except OSError as exc:
        raise SecretError(f"secret {name}: cannot read {path}: {exc.strerror}") from None
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise PermissionProblem(
            f"secret {name}: {path} is readable by group or others (mode {mode:04o}); refusing to use it",
            hint=f"run: chmod 600 {path}",
        )
    try:
        value = path.read_text(encoding="utf-8").strip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"secret {name}: cannot read {path}: {exc}") from None
    if not value:
        raise SecretError(f"secret {name}: {path} is empty")
    return value


def remember_inventory(inventory) -> None:
    """Know the inventory's secrets before anything can print them (env at once, files if safe)."""
    from prontuario_cli.inventory import secret_refs

    for _, ref in secret_refs(inventory):
        if ref.env and os.environ.get(ref.env):
            remember(os.environ[ref.env])
        elif ref.file:
            path = Path(ref.file).expanduser()
            try:
                if not stat.S_IMODE(path.stat().st_mode) & 0o077:
                    remember(path.read_text(encoding="utf-8").strip("\r\n"))
            except (OSError, UnicodeDecodeError):
                pass


def remember(value: str) -> None:
    if value and len(value) >= 3:
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
