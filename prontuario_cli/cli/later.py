"""Command groups whose capability is not built yet: they say what they will do and exit 4."""

from __future__ import annotations

import typer

from prontuario_cli.errors import NotAvailableYet

GROUPS = {
    "bootstrap": "Set up a Mac Studio (or the witness) from the inventory: packages, users, launchd services.",
}


def group(name: str, summary: str) -> typer.Typer:
    """A placeholder sub-app: help says what it will do; running it exits NOT_AVAILABLE."""
    sub = typer.Typer(
        help=f"{summary}\n\nNot available yet in this version (exit code 4).\n\nExample: prontuario {name} --help",
        invoke_without_command=True,
        rich_markup_mode=None,
    )

    @sub.callback()
    def _placeholder(ctx: typer.Context) -> None:
        if ctx.resilient_parsing:
            return
        raise NotAvailableYet(f"'prontuario {name}' is not available yet in this version")

    return sub
