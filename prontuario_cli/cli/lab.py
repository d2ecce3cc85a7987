"""``prontuario lab``: the whole architecture on 127.0.0.1 for rehearsal and tests.

Thin commands over :mod:`prontuario_cli.lab`. ``lab up`` does not ask for
confirmation: it only creates things inside its own directory and on its own
ports (``--dry-run`` still shows the plan). ``lab down`` asks unless ``--yes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from prontuario_cli.cli.common import audited, confirm, emit, get_env, output_options

app = typer.Typer(
    help=(
        "Bring the whole architecture up on 127.0.0.1 for rehearsal and tests: etcd (3), "
        "Patroni + PostgreSQL (2), HAProxy, Redis + 3 Sentinels, and a Cloud SQL stand-in.\n\n"
        "Example: prontuario lab up --profile fast && prontuario -i /var/lib/prontuario/lab/cluster.yaml inventory check"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)

DIR_HELP = "Lab directory (default: <state dir>/lab, or lab.dir of the inventory given with -i)."


def complete_component(ctx, args, incomplete: str) -> list[str]:
    """Shell completion for component names (static: the names never depend on ports)."""
    try:
        from prontuario_cli.lab.components import component_names

        return [name for name in component_names() if name.startswith(incomplete)]
    except Exception:  # completion must never print an error into the shell
        return []


def complete_profile(ctx, args, incomplete: str) -> list[str]:
    return [p for p in ("seed", "fast") if p.startswith(incomplete)]


def _lab_dir(directory: Optional[Path]) -> Path:
    """--dir, else the lab.dir of an inventory named explicitly (-i / $PRONTUARIO_INVENTORY), else the default."""
    import os

    if directory is not None:
        return directory
    env = get_env()
    if env.inventory_path or os.environ.get("PRONTUARIO_INVENTORY"):
        from prontuario_cli.errors import ProntuarioError

        try:
            inventory = env.inventory()
        except ProntuarioError:
            inventory = None
        if inventory is not None:
            from prontuario_cli.cluster.nodes import lab_dir

            if lab_dir(inventory) is not None:
                return lab_dir(inventory)
    from prontuario_cli.lab.spec import default_dir

    return default_dir()


def _open(directory: Optional[Path], profile: Optional[str] = None, base_port: Optional[int] = None, view=None, with_serve: Optional[bool] = None):
    """The lab, talking through a progress view (``view``, else a new one on stderr): each
    wait a live line on a terminal, plain timestamped lines otherwise."""
    from prontuario_cli.lab import Lab

    view = view or _view()
    return Lab(_lab_dir(directory), profile=profile, base_port=base_port, with_serve=with_serve, say=view.say, progress=view.progress)


def _view():
    from prontuario_cli.cli.progress import for_env

    return for_env(get_env())


@app.command("up")
@output_options
def up(
    directory: Optional[Path] = typer.Option(None, "--dir", "-d", help=DIR_HELP),
    profile: Optional[str] = typer.Option(
        None, "--profile", "-p", help="seed (the brief's checks: inter 5s, fall 3) or fast (lowest safe RTO). Default seed.",
        autocompletion=complete_profile,
    ),
    base_port: Optional[int] = typer.Option(None, "--base-port", help="First port; every port is derived from it (default 15000)."),
    with_serve: bool = typer.Option(
        False, "--with-serve",
        help="Also run the inference servers (llm, stt, face) on each Mac, on tiny random models built in the lab. "
        "Remembered: later 'lab up/down/status' keep handling them.",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Accepted for symmetry; lab up never asks."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; change nothing."),
) -> None:
    """Bring the lab up (idempotent) and wait until every component is healthy.

    Exit 0 healthy; 20 a component failed (its log is named); 69 something did not
    become healthy in time.

    With --with-serve the lab also builds three tiny models, installs them in each Mac's
    store and starts 'prontuario serve llm|stt|face' for each Mac, so 'serve status' and
    'models status' with the lab's inventory show real servers and stores.

    Example: prontuario lab up --dir /var/lib/prontuario/lab --profile fast --base-port 16000 --with-serve
    """
    if profile is not None and profile not in ("seed", "fast"):
        from prontuario_cli.errors import UsageError

        raise UsageError(f"unknown profile {profile!r}", hint="choose seed or fast")
    view = _view()
    lab = _open(directory, profile, base_port, view, with_serve=with_serve or None)
    args = {"dir": str(lab.dir), "profile": lab.spec.profile, "base_port": lab.spec.base_port, "with_serve": lab.spec.with_serve}
    if dry_run:
        with audited("lab up", args, dry_run=True, log=lab.spec.audit_log_path):
            emit(lab.plan_up())
        return
    with audited("lab up", args, log=lab.spec.audit_log_path) as details, view:
        report = lab.up()
        details["started"] = list(report.started)
        details["seconds"] = report.seconds
    view.say(f"lab up in {report.seconds:g} s; inventory: {report.inventory}")
    emit(report)


@app.command("down")
@output_options
def down(
    directory: Optional[Path] = typer.Option(None, "--dir", "-d", help=DIR_HELP),
    purge: bool = typer.Option(False, "--purge", help="Also delete the lab directory (all its data)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be stopped; change nothing."),
) -> None:
    """Stop every lab process by PID (pause Patroni, then stop in a fast order); keep data unless --purge.

    Example: prontuario lab down --yes          (then: prontuario lab up, to restart on the same data)
    """
    view = _view()
    lab = _open(directory, view=view)
    args = {"dir": str(lab.dir), "purge": purge}
    if dry_run:
        with audited("lab down", args, dry_run=True, log=lab.spec.audit_log_path):
            emit(lab.plan_down(purge))
        return
    question = f"stop the lab in {lab.dir} and DELETE all its data?" if purge else f"stop the lab in {lab.dir} (data kept)?"
    with audited("lab down", args, log=lab.spec.audit_log_path) as details:
        confirm(question, yes=yes)  # inside: a "no" is audited as declined
        with view:
            report = lab.down(purge=purge)
        details["stopped"] = list(report.stopped)
        details["seconds"] = report.seconds
    emit(report)


@app.command("status")
@output_options(nagios=True)
def status(directory: Optional[Path] = typer.Option(None, "--dir", "-d", help=DIR_HELP)) -> None:
    """Per component: pid, alive, port, role and health. Exit 0 all healthy, 2 (CRITICAL) otherwise.

    Example: prontuario lab status --format nagios
    """
    emit(_open(directory).status())


@app.command("logs")
def logs(
    component: str = typer.Argument(..., help="Component, e.g. patroni-mac-studio-1, haproxy.", autocompletion=complete_component),
    directory: Optional[Path] = typer.Option(None, "--dir", "-d", help=DIR_HELP),
    lines: int = typer.Option(50, "--lines", "-n", min=1, help="How many lines from the end."),
) -> None:
    """Print the end of one component's log (PostgreSQL logs into its Patroni's log).

    Example: prontuario lab logs patroni-mac-studio-2 --lines 100
    """
    from prontuario_cli.errors import UnavailableError
    from prontuario_cli.lab.procs import log_tail

    lab = _open(directory)
    path = lab.log(component)
    if not path.exists():
        raise UnavailableError(f"{component} has no log yet ({path})", hint="bring the lab up first: prontuario lab up")
    env = get_env()
    env.say(f"==> {path} <==")
    text = log_tail(path, lines)
    env.stdout.write(text + ("\n" if text else ""))
    env.stdout.flush()


@app.command("install")
@output_options
def install(
    no_apt: bool = typer.Option(False, "--no-apt", help="Only the Python side (the venv), no Debian packages."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the packages; install nothing."),
) -> None:
    """Install the Debian and PyPI packages the lab needs (runs the repository's install.sh).

    Example: prontuario lab install --dry-run
    """
    from prontuario_cli.lab.install import install as run_install
    from prontuario_cli.lab.spec import audit_log_beside

    log = audit_log_beside(_lab_dir(None))  # the lab's log, not the machine's
    if dry_run:
        with audited("lab install", {"apt": not no_apt}, dry_run=True, log=log):
            emit(run_install(dry_run=True, apt=not no_apt))
        return
    with audited("lab install", {"apt": not no_apt}, log=log):
        confirm("install the lab's Debian and Python packages?", yes=yes)  # inside: a "no" is audited as declined
        report = run_install(dry_run=False, apt=not no_apt)
    emit(report)
