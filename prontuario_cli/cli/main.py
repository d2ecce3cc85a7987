"""The root Typer app: global options, one sub-app per capability, and the entry point.

``run()`` is the only place a process ends: it maps every ProntuarioError to its
exit code and one line on stderr, and every unexpected exception to "this is a
bug" plus the path of a debug log holding the traceback. With ``--format nagios``
that line is the plugin's ``UNKNOWN`` line on stdout (exit 3); a closed stdout
(``… | head -1``) ends quietly with 0 (see :mod:`prontuario_cli.cli.errors_out`).
"""

from __future__ import annotations

import sys
from typing import Optional

import typer
from typer.core import TyperGroup

from prontuario_cli import __version__
from prontuario_cli.cli.common import Env, Format
from prontuario_cli.errors import ExitCode

# One sub-app per capability, in the order --help lists them: (module with `app`, summary).
# Modules are imported only when their group is used, so --help and TAB completion stay fast; a test keeps each
# summary equal to the first line of the sub-app's own help.
CAPABILITIES: dict[str, tuple[str, str]] = {
    "status": (
        "prontuario_cli.cli.status",
        "The whole platform on one screen: Macs, witness, databases, routing, fallback, drills, audit.",
    ),  # not a capability: one command that reads them all (prontuario_cli/status/)
    "inventory": ("prontuario_cli.cli.inventory", "Check, show and create the inventory (cluster.yaml)."),
    "lab": (
        "prontuario_cli.cli.lab",
        "Bring the whole architecture up on 127.0.0.1 for rehearsal and tests: etcd (3), "
        "Patroni + PostgreSQL (2), HAProxy, Redis + 3 Sentinels, and a Cloud SQL stand-in.",
    ),
    "replication": (
        "prontuario_cli.cli.replication",
        "Watch PostgreSQL and Redis replication: roles, lag in seconds and bytes, Sentinel agreement, HAProxy routing.",
    ),
    "drill": (
        "prontuario_cli.cli.drill",
        "Rehearse failover on a schedule: daily health, weekly failover, monthly cloud fallback, with measured RTO/RPO.",
    ),
    "models": (
        "prontuario_cli.cli.models",
        "Keep MedGemma, Whisper and FaceNet identical and intact on both Macs: sha256 manifests, "
        "parallel offline verify, Mac-to-Mac sync with rsync, atomic activation and rollback.",
    ),
    "docs": (
        "prontuario_cli.cli.docs",
        "Keep the documents identical on both Macs: the Patroni leader's directory pushed to the other Mac "
        "with rsync every 5 s (the primary wins), and how fresh the copy is.",
    ),
    "serve": (
        "prontuario_cli.cli.serve",
        "Run the local inference servers (mlx-lm for MedGemma, Whisper, FaceNet) and check their readiness.",
    ),
    "bootstrap": (
        "prontuario_cli.cli.bootstrap",
        "Set up the Macs and the witness over SSH: YAML playbooks run by pyinfra, configs from the shared renderers.",
    ),
    "gcp": ("prontuario_cli.cli.gcp", "The emergency Cloud SQL fallback: status, manual promote (guarded, resumable) and failback."),
    "monitor": ("prontuario_cli.cli.monitor", "Render the Prometheus alert rules from the inventory's thresholds."),
    "audit": ("prontuario_cli.cli.audit", "Read and verify the audit log of every state-changing command."),
}


def load_capability(name: str) -> typer.Typer:
    """The Typer sub-app of one capability."""
    import importlib

    module, _ = CAPABILITIES[name]
    return importlib.import_module(module).app


def summary(name: str) -> str:
    return CAPABILITIES[name][1]


class _LazyCommands(dict):
    """name -> click command, importing a capability's module on first use."""

    def __missing__(self, name: str):
        if name not in CAPABILITIES:
            raise KeyError(name)
        command = typer.main.get_group(load_capability(name))
        command.name = name
        self[name] = command
        return command

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def keys(self):
        return list(CAPABILITIES)


class LazyGroup(TyperGroup):
    """The root group: lists every capability, imports one only when it is used."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.commands = _LazyCommands(self.commands)

    def list_commands(self, ctx) -> list[str]:
        return list(CAPABILITIES)

    def invoke(self, ctx):
        """Run the command; a broken stdout pipe leaves as StdoutClosed, which Typer would
        otherwise turn into exit 1 (a Nagios WARNING) after a harmless ``| head``."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            from prontuario_cli.cli.errors_out import StdoutClosed

            raise StdoutClosed() from exc

    def format_commands(self, ctx, formatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in CAPABILITIES)
        rows = [(name, _shorten(summary(name), limit)) for name in CAPABILITIES]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 1)].rsplit(" ", 1)[0] + "..."


app = typer.Typer(
    name="prontuario",
    cls=LazyGroup,
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
        code = int(result) if isinstance(result, int) else 0
        if code == ExitCode.INTERRUPTED:  # typer turns Ctrl-C into a returned 130
            return errors_out.handle(KeyboardInterrupt(), env)
        return code
    except BaseException as exc:  # noqa: BLE001 - the one place every exception ends
        return errors_out.handle(exc, env)
