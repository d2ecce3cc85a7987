"""The root Typer app: global options, one sub-app per capability, and the entry point.

``run()`` is the only place a process ends: it maps every ProntuarioError to its
exit code and one line on stderr, and every unexpected exception to "this is a
bug" plus the path of a debug log holding the traceback.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from prontuario_cli import __version__
from prontuario_cli.cli import audit as audit_cli
from prontuario_cli.cli import inventory as inventory_cli
from prontuario_cli.cli import later
from prontuario_cli.cli.common import Env, Format
from prontuario_cli.errors import ExitCode

app = typer.Typer(
    name="prontuario",
    help=(
        "Operate the Prontuário cluster: two Mac Studios (active/standby), a witness, "
        "and the emergency Cloud SQL fallback.\n\n"
        "Example: prontuario --inventory cluster.yaml inventory check"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.add_typer(inventory_cli.app, name="inventory")
for name, summary in later.GROUPS.items():
    app.add_typer(later.group(name, summary), name=name)
app.add_typer(audit_cli.app, name="audit")


def _version(value: bool) -> None:
    if value:
        print(f"prontuario {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    inventory: Optional[str] = typer.Option(
        None,
        "--inventory",
        "-i",
        metavar="PATH",
        help="cluster.yaml to use (else $PRONTUARIO_INVENTORY, ./cluster.yaml, ~/.config/prontuario/cluster.yaml).",
    ),
    output_format: Optional[Format] = typer.Option(
        None, "--format", "-f", help="Output: table (default on a terminal), json (default otherwise), nagios."
    ),
    json_: bool = typer.Option(False, "--json", help="Same as --format json."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Say more on stderr (secrets redacted)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    env = ctx.obj if isinstance(ctx.obj, Env) else Env()
    env.inventory_path = inventory
    env.format = "json" if json_ else (output_format.value if output_format else None)
    env.verbose = verbose
    ctx.obj = env


def run(argv: list[str] | None = None, env: Env | None = None) -> int:
    """Entry point of the ``prontuario`` script; returns (and exits with) the exit code."""
    code = main(argv, env)
    sys.exit(code)


def main(argv: list[str] | None = None, env: Env | None = None) -> int:
    """Run the CLI and return its exit code, never raising."""
    from prontuario_cli.cli import errors_out

    env = env or Env()
    if argv is not None:
        env.argv = list(argv)
    try:
        result = app(args=argv, prog_name="prontuario", standalone_mode=False, obj=env)
        return int(result) if isinstance(result, int) else 0
    except BaseException as exc:  # noqa: BLE001 - the one place every exception ends
        return errors_out.handle(exc, env)
