"""``prontuario audit``: read and verify the hash-chained audit log."""

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
    """List audit entries: time, operator, host, command, outcome, duration.

    Example: prontuario audit show --since 7d --json
    """
    from prontuario_cli.audit_report import entries_report, parse_since

    entries = _log().entries(parse_since(since) if since else None)
    emit(entries_report(str(_log().path), entries[-limit:] if limit else entries))


@app.command("verify")
@output_options(nagios=True)
def verify() -> None:
    """Check the hash chain; name any entry edited, deleted, inserted or reordered.

    Exit 0 intact, 65 broken.

    Example: prontuario audit verify --format nagios
    """
    emit(_log().verify())
