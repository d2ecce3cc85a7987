"""Turning any exception into one line and an exit code.

The line goes to stderr, except with ``--format nagios``: a monitoring system reads
stdout and the exit code only, so every failure there, whatever its cause (an invalid
inventory, an unreachable host, a bug), is the plugin contract's one ``UNKNOWN`` line on
stdout and exit 3. A reader that went away (``… | head -1``) is not a failure: the
rest of the output is dropped and the exit code is 0.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from prontuario_cli.errors import ExitCode, ProntuarioError, UsageError


class StdoutClosed(Exception):
    """Writing to stdout failed with EPIPE: whoever read the output stopped reading.

    Deliberately not an OSError, so Typer does not turn it into exit 1 on the way out.
    """


def handle(exc: BaseException, env) -> int:
    from typer import _click as click
    from typer import exceptions as typer_exceptions

    if isinstance(exc, typer_exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else ExitCode.FAILED
    if isinstance(exc, (StdoutClosed, BrokenPipeError)):
        if stdout_is_closed(env):
            silence_stdout()
            return ExitCode.OK
        exc = exc.__cause__ or exc  # a pipe other than stdout broke: a bug like any other
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        env.stdout.write(exc.ctx.get_help() + "\n")
        return ExitCode.OK
    code, message = describe(exc, env)
    if nagios_requested(env) and not _refuses_the_format(exc):
        from prontuario_cli.report import Nagios, Status

        env.stdout.write(Nagios(Status.UNKNOWN, message.replace("\n", " ")).line() + "\n")
        env.stdout.flush()
        return ExitCode.UNKNOWN
    env.say(message if code == ExitCode.INTERRUPTED else f"error: {message}")
    return code


def describe(exc: BaseException, env) -> tuple[int, str]:
    """(exit code, message) for any exception; an unexpected one also gets a debug log."""
    from typer import _click as click
    from typer import exceptions as typer_exceptions

    from prontuario_cli.secrets import redact

    if isinstance(exc, (KeyboardInterrupt, typer_exceptions.Abort)):
        return ExitCode.INTERRUPTED, "interrupted"
    if isinstance(exc, click.exceptions.UsageError):
        command = exc.ctx.command_path if exc.ctx else "prontuario"
        return ExitCode.USAGE, f"{exc.format_message()} (see: {command} --help)"
    if isinstance(exc, click.exceptions.ClickException):
        return ExitCode.USAGE, exc.format_message()
    if isinstance(exc, ProntuarioError):
        problems = getattr(exc, "problems", None)
        text = exc.one_line() if not problems or not nagios_requested(env) else "; ".join([exc.message, *problems])
        return int(exc.exit_code), redact(text)
    path = write_debug_log(exc, env)
    return ExitCode.BUG, f"unexpected {type(exc).__name__} — this is a bug in prontuario; the traceback is in {path}"


def nagios_requested(env) -> bool:
    """Whether the caller asked for ``--format nagios``, even if the command line did not parse."""
    if getattr(env, "format", None) == "nagios":
        return True
    argv = list(getattr(env, "argv", None) or ())
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg in ("--format=nagios", "-fnagios") or (arg in ("--format", "-f") and argv[i + 1 : i + 2] == ["nagios"]):
            return True
    return False


def _refuses_the_format(exc: BaseException) -> bool:
    """The error is that this command is no check: it owes no plugin line (plain usage error, 64)."""
    return isinstance(exc, UsageError) and "--format nagios" in exc.message


def stdout_is_closed(env) -> bool:
    """Whether nobody reads stdout any more (its pipe's reader is gone)."""
    import select

    try:
        fd = env.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return True  # a stream without a descriptor: the broken pipe can only have been that stream
    try:
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass


def debug_dir(env=None) -> Path:
    """``<state dir>/debug``, the state dir following the inventory's ``paths.state_dir`` when there is one."""
    from prontuario_cli.paths import state_dir

    return state_dir(_inventory_if_any(env)) / "debug"


def _inventory_if_any(env):
    """The command's inventory if it loaded one, else the inventory it would load, else None."""
    inventory = getattr(env, "_inventory", None)
    if inventory is not None or env is None:
        return inventory
    try:
        from prontuario_cli.inventory import load_inventory

        return load_inventory(getattr(env, "inventory_path", None))
    except Exception:  # noqa: BLE001 - a bug report must not fail for want of an inventory
        return None


def write_debug_log(exc: BaseException, env=None) -> Path:
    """Write the traceback (no locals, secrets redacted) to a fresh file; return its path."""
    import datetime as _dt
    import traceback

    from prontuario_cli.secrets import redact

    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for directory in (debug_dir(env), Path("/tmp")):
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
