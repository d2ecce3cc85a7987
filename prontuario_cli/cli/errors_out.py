"""Turning any exception into one line on stderr and an exit code."""

from __future__ import annotations

import datetime as _dt
import os
import traceback
from pathlib import Path

from prontuario_cli.errors import ExitCode, ProntuarioError


def handle(exc: BaseException, env) -> int:
    from typer import _click as click
    from typer import exceptions as typer_exceptions

    if isinstance(exc, typer_exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else ExitCode.FAILED
    if isinstance(exc, (KeyboardInterrupt, typer_exceptions.Abort)):
        env.say("interrupted")
        return ExitCode.INTERRUPTED
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        env.stdout.write(exc.ctx.get_help() + "\n")
        return ExitCode.OK
    if isinstance(exc, click.exceptions.UsageError):
        command = exc.ctx.command_path if exc.ctx else "prontuario"
        env.say(f"error: {exc.format_message()} (see: {command} --help)")
        return ExitCode.USAGE
    if isinstance(exc, click.exceptions.ClickException):
        env.say(f"error: {exc.format_message()}")
        return ExitCode.USAGE
    if isinstance(exc, ProntuarioError):
        from prontuario_cli.secrets import redact

        env.say(f"error: {redact(exc.one_line())}")
        return int(exc.exit_code)
    if isinstance(exc, BrokenPipeError):
        return ExitCode.OK
    path = write_debug_log(exc)
    env.say(f"error: unexpected {type(exc).__name__} — this is a bug in prontuario; the traceback is in {path}")
    return ExitCode.BUG


def debug_dir() -> Path:
    from prontuario_cli.paths import state_dir

    return state_dir() / "debug"


def write_debug_log(exc: BaseException) -> Path:
    """Write the traceback (no locals, secrets redacted) to a fresh file; return its path."""
    from prontuario_cli.secrets import redact

    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for directory in (debug_dir(), Path("/tmp")):
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = directory / f"prontuario-bug-{stamp}-{os.getpid()}.log"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(redact(text))
            return path
        except OSError:
            continue
    return Path("(could not write a debug log)")
