"""What every command shares: the environment object, output options, confirmation, audit.

Commands stay thin: parse, call the core, hand the report to :func:`emit`.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterator, Optional, TextIO

import typer

from prontuario_cli.errors import AbortedError, ExitCode, ProntuarioError, UsageError


class Format(str, Enum):
    table = "table"
    json = "json"
    nagios = "nagios"


@dataclass
class Env:
    """Streams and global options, passed down through the Typer context (tests swap streams)."""

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    inventory_path: Optional[str] = None
    format: Optional[str] = None
    verbose: bool = False
    argv: list[str] = field(default_factory=lambda: list(sys.argv[1:]))
    _inventory: Any = None

    @property
    def color(self) -> bool:
        return not os.environ.get("NO_COLOR") and _isatty(self.stdout)

    @property
    def interactive(self) -> bool:
        return _isatty(self.stdin) and _isatty(self.stderr)

    @property
    def output_format(self) -> str:
        """The chosen --format, else table on a terminal and JSON otherwise."""
        if self.format:
            return self.format
        return "table" if _isatty(self.stdout) else "json"

    def inventory(self):
        """The validated inventory (loaded once); its warnings go to stderr."""
        if self._inventory is None:
            from prontuario_cli.inventory import load_inventory

            from prontuario_cli.secrets import remember_inventory

            self._inventory = load_inventory(self.inventory_path)
            remember_inventory(self._inventory)
            from prontuario_cli.cluster.nodes import lab_dir

            where = lab_dir(self._inventory)
            kind = f"lab in {where}" if where else "production"
            self.debug(f"inventory {self._inventory.source}: {len(self._inventory.nodes)} nodes ({kind})")
            for warning in self._inventory.warnings:
                self.say(f"warning: {warning}")
        return self._inventory

    def say(self, text: str) -> None:
        """Human talk: always stderr, never mixed with data."""
        print(text, file=self.stderr, flush=True)

    def debug(self, text: str) -> None:
        if self.verbose:
            from prontuario_cli.secrets import redact

            self.say(f"debug: {redact(text)}")


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def get_env(ctx: typer.Context | None = None) -> Env:
    ctx = ctx or _current_context()
    root = ctx.find_root()
    if root.obj is None:
        root.obj = Env()
    return root.obj


def _current_context():
    from typer._click.globals import get_current_context

    return get_current_context()


def output_options(func=None, *, nagios: bool = False):
    """Add ``--format/-f`` and ``--json`` to a command (they override the global ones).

    ``@output_options(nagios=True)`` marks a check command: only those accept
    ``--format nagios``. The format is validated before the command runs, so a drill or a
    promotion never starts only to fail at rendering time.
    """
    if func is None:
        return functools.partial(output_options, nagios=nagios)
    signature = inspect.signature(func)
    extra = [
        inspect.Parameter(
            "_format",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Optional[Format],
        ),
        inspect.Parameter("_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool),
    ]
    formats = "table (default on a terminal), json" + (", nagios" if nagios else "")
    extra[0] = extra[0].replace(default=typer.Option(None, "--format", "-f", help=f"Output: {formats}."))
    extra[1] = extra[1].replace(default=typer.Option(False, "--json", help="Same as --format json."))
    params = list(signature.parameters.values()) + extra

    @functools.wraps(func)
    def wrapper(*args, _format=None, _json=False, **kwargs):
        env = get_env()
        if _json and _format not in (None, Format.json):
            raise UsageError("--json and --format disagree", hint="give one of them")
        if _json:
            env.format = "json"
        elif _format is not None:
            env.format = _format.value
        if env.format == Format.nagios.value and not nagios:
            raise UsageError("--format nagios is only for check commands", hint="use table or json")
        return func(*args, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=params)
    return wrapper


def emit(report: Any, exit_code: ExitCode | int | None = None, *, after: Callable[[], None] | None = None) -> None:
    """Render a report to stdout and end the command with its exit code.

    ``after`` runs once the report is rendered, before the exit (a verdict line that
    must be the last thing on screen).
    """
    from prontuario_cli.cli.output import render

    env = get_env()
    width = None if _isatty(env.stdout) else int(os.environ.get("COLUMNS") or 160)  # piped tables: wide
    render(report, env.output_format, env.stdout, color=env.color, width=width)
    if after is not None:
        after()
    if exit_code is None:
        own = getattr(report, "exit_code", None)
        exit_code = own() if callable(own) else ExitCode.OK
    if int(exit_code) != 0:
        raise typer.Exit(int(exit_code))


class Declined(AbortedError):
    """The operator answered no: nothing was changed. Audited as ``declined``."""

    audit_outcome = "declined"


# How many audited() blocks are open: a "no" inside one is recorded by that block; a
# "no" outside any is recorded by confirm() itself, so no declined prompt goes unaudited.
_auditing: ContextVar[int] = ContextVar("prontuario_auditing", default=0)


def confirm(question: str, *, yes: bool, typed: str | None = None) -> None:
    """Ask before a change. ``--yes`` skips; without a terminal, --yes is required.

    With ``typed``, the operator must type that text (an instance name) instead of "y":
    for what cannot be undone. A "no" raises :class:`Declined` and is audited as
    ``declined``, inside an ``audited`` block or not.
    """
    env = get_env()
    if yes:
        return
    if not env.interactive:
        raise UsageError(f"{question} needs confirmation", hint="run it on a terminal, or pass --yes (e.g. from cron)")
    if typed is None:
        env.stderr.write(f"{question} [y/N] ")
    else:
        env.stderr.write(f"{question}. This cannot be undone. Type the instance name ({typed}) to go on: ")
    env.stderr.flush()
    answer = env.stdin.readline().strip()
    if typed is not None and answer != typed:
        _decline("the name typed does not match; nothing was changed")
    if typed is None and answer.lower() not in ("y", "yes"):
        _decline("not confirmed; nothing was changed")


def _decline(message: str) -> None:
    """Raise :class:`Declined`; outside any ``audited`` block, record it first under this command's name."""
    declined = Declined(message)
    if _auditing.get():
        raise declined  # the enclosing audited() records it
    ctx = _current_context()
    command = " ".join(ctx.command_path.split()[1:]) or ctx.command_path
    args = {k: v for k, v in ctx.params.items() if not k.startswith("_")}
    try:
        with audited(command, args):
            raise declined
    except Declined:
        raise
    except ProntuarioError as exc:  # the log could not take it: still a "no", said plainly
        get_env().say(f"warning: this answer could not be audited: {exc.one_line()}")
        raise declined from None


@contextmanager
def audited(command: str, args: dict[str, Any], *, dry_run: bool = False, log: Any = None) -> Iterator[dict[str, Any]]:
    """Audit a state-changing command: an intent entry before the block, the outcome after.

    If the intent cannot be written, the block does not run: the command stops with
    :class:`~prontuario_cli.audit.AuditUnwritable` before changing anything. Yields a
    dict the command may fill with details (what changed); ``details.conclude(verdict,
    exit_code)`` records a real verdict (a drill's ``missed``) instead of ``ok``. Other
    outcomes: ``dry-run``, ``failed`` (with the error), ``refused``, ``aborted``,
    ``declined``, ``interrupted``. ``log`` names a command's own log (the lab's);
    ``$PRONTUARIO_AUDIT_LOG`` still wins over it.
    """
    from prontuario_cli import audit

    env = get_env()
    inventory = None
    if log is None:
        try:
            inventory = env.inventory()
        except ProntuarioError:  # commands that write audit entries before any inventory exists
            inventory = None
    token = _auditing.set(_auditing.get() + 1)
    try:
        with audit.action(audit.log_for(inventory, log), command, args, dry_run=dry_run) as details:
            yield details
    finally:
        _auditing.reset(token)
