"""``prontuario audit``: read and verify the HMAC-chained audit log."""

from __future__ import annotations

from typing import Optional

import typer

from prontuario_cli.cli.common import emit, get_env, output_options

app = typer.Typer(
    help="Read and verify the audit log of every state-changing command.\n\nExample: prontuario audit verify",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _log():
    from prontuario_cli import audit
    from prontuario_cli.errors import ProntuarioError

    env = get_env()
    try:
        inventory = env.inventory()
    except ProntuarioError:
        inventory = None  # the log is still readable without an inventory
    return audit.log_for(inventory)


@app.command("show")
@output_options
def show(
    since: Optional[str] = typer.Option(None, "--since", metavar="WHEN", help="Only entries at or after WHEN: an ISO date/time (UTC) or an age like 30m, 12h, 7d."),
    limit: int = typer.Option(0, "--limit", "-n", min=0, help="Only the last N entries (0 = all)."),
) -> None:
    """List operations: when each started, operator, host, command, outcome, duration.

    Each operation is an intent entry (written before it changed anything) and an
    outcome entry; an intent alone shows as "no outcome recorded" (still running, or
    killed).

    Example: prontuario audit show --since 7d --json
    """
    from prontuario_cli.audit_report import NO_OUTCOME, entries_report, operations, parse_since

    when = parse_since(since) if since else None  # a bad --since fails before the log is read
    log = _log()
    rows = operations(_readable(log.entries), when)
    rows = rows[-limit:] if limit else rows
    env = get_env()
    for row in rows:
        if row.get("outcome") == NO_OUTCOME:
            env.say(f"warning: seq {row.get('seq')}: '{row.get('command')}' started {row.get('time')}: {NO_OUTCOME}")
    emit(entries_report(str(log.path), rows))


@app.command("verify")
@output_options(nagios=True)
def verify() -> None:
    """Check the MAC chain and its head; name any entry edited, forged, deleted, inserted or reordered.

    Also caught: a cut tail, an older head put back, a missing, malformed or forged head,
    a missing or wrong key. Warnings (exit still 0): legacy unkeyed entries, an operation
    with no outcome recorded, a head one entry behind after a crash.

    Exit 0 intact, 65 broken, 77 the key is unsafe (readable by others, not a file).

    Example: prontuario audit verify --format nagios
    """
    log = _log()
    report = _readable(log.verify)
    env = get_env()
    for warning in report.warnings:
        env.say(f"warning: {warning.message}")
    emit(report)


def _readable(read):
    """Run a reader of the log; a file that cannot be read is a permission problem, not a bug."""
    from prontuario_cli.errors import PermissionProblem

    try:
        return read()
    except OSError as exc:
        raise PermissionProblem(f"cannot read the audit log: {exc.strerror or exc} ({exc.filename})", hint="run as a user that may read it") from None
