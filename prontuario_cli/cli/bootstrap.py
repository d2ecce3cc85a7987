"""``prontuario bootstrap``: make each node what the inventory says, with our playbooks run by pyinfra."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from prontuario_cli.cli.common import audited, confirm, emit, get_env, output_options
from prontuario_cli.cli.complete import node_names
from prontuario_cli.errors import ExitCode

app = typer.Typer(
    help=(
        "Set up the Macs and the witness over SSH: YAML playbooks run by pyinfra, configs from the shared renderers."
        "\n\nExit codes: 0 every host ok or changed, 20 a step failed on a host, 69 a node unreachable, "
        "77 a host key refused, 78 a malformed playbook."
        "\n\nExample: prontuario bootstrap run --check --diff"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)

NODES_HELP = "Nodes to bootstrap (default: every node of the inventory)."


class HostsView:
    """Each host's progress on stderr: a live table on a terminal (host, state, step, time),
    plain timestamped lines otherwise (cron mail, logs)."""

    def __init__(self, env, nodes: list[str]):
        import time

        from prontuario_cli.cli.progress import _isatty

        self.env = env
        self.started = time.monotonic()
        self.rows = {name: ["waiting", "", 0.0] for name in nodes}
        self.live = None
        if _isatty(env.stderr):
            from rich.console import Console
            from rich.live import Live

            self.live = Live(self._table(), console=Console(file=env.stderr), refresh_per_second=8, transient=False)

    def _table(self):
        import time

        from rich.table import Table as RichTable

        table = RichTable(box=None, show_header=True, header_style="bold")
        for column in ("node", "state", "step", "time"):
            table.add_column(column)
        for name, (state, step, seconds) in self.rows.items():
            colour = {"failed": "red", "unreachable": "red", "changed": "yellow", "ok": "green"}.get(state, "")
            elapsed = seconds or (time.monotonic() - self.started if state == "running" else 0.0)
            table.add_row(name, f"[{colour}]{state}[/]" if colour else state, step, f"{elapsed:.1f} s")
        return table

    def __enter__(self):
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(*exc)

    def event(self, event: dict) -> None:
        import time

        kind, node = event.get("kind"), event.get("node", "?")
        row = self.rows.setdefault(node, ["waiting", "", 0.0])
        if kind == "step":
            row[0], row[1] = "running", event["step"]
            text = f"{node}: {event['step']}"
        elif kind == "unreachable":
            row[0], row[1], row[2] = "unreachable", event["detail"][:60], time.monotonic() - self.started
            text = f"{node}: UNREACHABLE: {event['detail']}"
        elif kind == "host-done":
            row[0], row[1], row[2] = event["status"], "", event["seconds"]
            text = f"{node}: {event['status']} ({event['seconds']:.1f} s)"
        else:
            return
        if self.live is not None:
            self.live.update(self._table())
        else:
            self.env.say(f"{time.strftime('%H:%M:%S', time.gmtime())} {text}")


@app.command("run")
@output_options
def run(
    nodes: Optional[List[str]] = typer.Argument(None, help=NODES_HELP, autocompletion=node_names),
    check: bool = typer.Option(False, "--check", help="Show what would change; change nothing."),
    dry_run: bool = typer.Option(False, "--dry-run", help="The same as --check."),
    diff: bool = typer.Option(False, "--diff", help="Print unified diffs of the files that change."),
    accept_new: bool = typer.Option(False, "--accept-new", help="Trust a node's host key the first time it is seen (never a changed one)."),
    prefix: str = typer.Option("", "--prefix", metavar="DIR", help="A rehearsal: every path rooted under DIR ({node} in it: one tree per node), files left to the connecting user; users, services, pmset and defaults left alone."),
    playbooks: Optional[Path] = typer.Option(None, "--playbooks", metavar="DIR", help="Where the playbooks are (default: the shipped playbooks/)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Apply the playbooks (macos-node.yaml / debian-node.yaml by each node's os), hosts in parallel.

    Playbooks are validated before anything connects; host keys are checked against each
    node's known_hosts. --check reads facts and lists what would change; a run asks for
    confirmation with that list, applies it, and prints a recap per host (ok / changed /
    failed). A failing step stops its host and names the step, the command, its exit
    code and the tail of its output. A second run changes nothing.

    Example: prontuario bootstrap run mac-studio-2 --check --diff
    """
    from prontuario_cli.bootstrap.runbook import Bootstrap
    from prontuario_cli.errors import OperationFailed

    env = get_env()
    inventory = env.inventory()
    names = list(nodes or [n.name for n in inventory.nodes])
    view = HostsView(env, names)
    book = Bootstrap(inventory, nodes or None, playbooks=playbooks, diff=diff, accept_new=accept_new, prefix=prefix, on_event=view.event,
                     say=env.say, confirm=lambda question: _confirm_with_plan(book, question, yes))  # fmt: skip
    args = {"nodes": [p.node.name for p in book.planned], "check": check or dry_run, "prefix": prefix or None, "accept_new": accept_new}
    if check or dry_run:
        with audited("bootstrap run", args, dry_run=True) as details, view:
            report = book.look()
            details["would_change"] = {h.node: h.changes for h in report.hosts}
        _say_diffs(report.hosts)
        emit(report)
        return
    for line in book.plan():
        env.say(f"plan: {line}")
    try:
        with view:
            report = book.run()
    except OperationFailed:
        if book.applied:
            from prontuario_cli.bootstrap.runbook import BootstrapReport

            emit(BootstrapReport(False, tuple(book.applied), 0.0), ExitCode.OK)
        raise
    emit(report)


def _say_diffs(hosts) -> None:
    """With --diff: what each changed file would become, per host, on stderr (stdout stays the report)."""
    env = get_env()
    for h in hosts:
        if h.diff:
            env.say(f"--- {h.node} ---\n{h.diff.rstrip()}")


def _confirm_with_plan(book, question: str, yes: bool) -> None:
    """Before the question: what would change on each host (and with --diff, how), from the look step."""
    env = get_env()
    _say_diffs(book.looked)
    for h in book.looked:
        env.say(f"  {h.node}: {h.changed} step(s) to change" + (f": {', '.join(h.changes)}" if h.changes else ""))
    confirm(question, yes=yes)


@app.command("facts")
@output_options
def facts(
    node: str = typer.Argument(..., help="The node.", autocompletion=node_names),
    accept_new: bool = typer.Option(False, "--accept-new", help="Trust the node's host key the first time it is seen."),
) -> None:
    """Show what pyinfra sees on a node: OS, kernel, architecture, user, Homebrew, Python, pmset, security.

    Example: prontuario bootstrap facts mac-studio-1 --json
    """
    from prontuario_cli.bootstrap.facts import gather

    env = get_env()
    emit(gather(env.inventory(), node, accept_new=accept_new))
