"""``prontuario inventory``: check, show and create cluster.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from prontuario_cli.cli.common import audited, confirm, emit, get_env, output_options
from prontuario_cli.cli.complete import node_names

app = typer.Typer(
    help="Check, show and create the inventory (cluster.yaml).\n\nExample: prontuario -i cluster.yaml inventory check",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("check")
@output_options(nagios=True)
def check(
    secrets: bool = typer.Option(False, "--secrets", help="Also read every secret here (env var set? file mode 0600?)."),
) -> None:
    """Validate the inventory; list every problem with file, line and key.

    Exit 0 valid, 1 valid with warnings (e.g. no witness), 78 invalid or a secret
    missing, 77 a secret file readable by group/others.

    Example: prontuario -i cluster.yaml inventory check --format nagios
    """
    from prontuario_cli.errors import ConfigError
    from prontuario_cli.inventory import find_inventory, load_inventory
    from prontuario_cli.inventory_report import check_report

    env = get_env()
    path = str(find_inventory(env.inventory_path))
    try:
        inventory = load_inventory(path)
        problems: list[str] = []
    except ConfigError as exc:
        inventory, problems = None, exc.problems or [exc.message]
    emit(check_report(path, inventory, problems, secrets=secrets))


@app.command("show")
@output_options
def show(
    node: Optional[str] = typer.Argument(None, help="Show only this node.", autocompletion=node_names),
) -> None:
    """Show the nodes, ports, health checks, targets and cloud fallback (never secret values).

    Example: prontuario -i cluster.yaml inventory show mac-studio-1 --json
    """
    from prontuario_cli.inventory_report import show_report

    emit(show_report(get_env().inventory(), node))


@app.command("init")
@output_options
def init(
    path: Path = typer.Argument(Path("cluster.yaml"), help="Where to write the new inventory."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be written; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Write an example inventory for the production pair, to edit.

    Example: prontuario inventory init /etc/prontuario/cluster.yaml --yes
    """
    from prontuario_cli.inventory_init import write_example

    env = get_env()
    with audited("inventory init", {"path": str(path), "force": force}, dry_run=dry_run) as details:
        plan = write_example(path, force=force, dry_run=True)
        if dry_run:
            emit(plan)
            return
        confirm(f"write an example inventory to {path}?", yes=yes)
        report = write_example(path, force=force, dry_run=False)
        details["written"] = report.path
    env.say(f"wrote {report.path}; edit it, then run: prontuario -i {report.path} inventory check")
    emit(report)
