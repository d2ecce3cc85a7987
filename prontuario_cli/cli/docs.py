"""``prontuario docs``: document storage pushed from the Patroni leader to the other Mac with rsync (the primary wins)."""

from __future__ import annotations

import typer

from prontuario_cli.cli.common import audited, confirm, emit, get_env, output_options
from prontuario_cli.cli.complete import node_names
from prontuario_cli.errors import LockedError, ProntuarioError, UsageError

app = typer.Typer(
    help=(
        "Keep the documents identical on both Macs: the Patroni leader's directory pushed to the other Mac "
        "with rsync every 5 s (the primary wins), and how fresh the copy is."
        "\n\nExit codes: sync 0 (pushed, nothing to push, or not the leader), 14 refused, 69 unreachable, 75 already running; "
        "status 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."
        "\n\nExample: prontuario docs status --format nagios"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("sync")
@output_options
def sync(
    once: bool = typer.Option(False, "--once", help="One pass (what each Mac's launchd job runs every docs.interval_s)."),
    node: str | None = typer.Option(None, "--node", "-n", metavar="NODE", help="Run as this Mac, here: push if it leads, else do nothing (the launchd job).", autocompletion=node_names),
    source: str | None = typer.Option(None, "--from", metavar="NODE", help="The Mac you expect to push; refused (exit 14) unless it is the leader.", autocompletion=node_names),
    accept_new: bool = typer.Option(False, "--accept-new", help="Trust the other Mac's host key the first time (never a changed one)."),
    allow_deletes: bool = typer.Option(False, "--allow-deletes", help="No docs.max_delete brake for this run: release deletions on hold, once you have looked."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be sent and deleted (rsync --dry-run); change nothing."),
) -> None:
    """Push the documents from the Patroni leader to the other Mac with rsync -a --delete (the primary wins).

    The direction follows failover: only the leader pushes. With --node (each Mac's launchd
    job, on that Mac) a Mac that does not lead does nothing and says why; without it the
    leader is found and the sync runs there. Never two at once (exit 75); an empty leader
    directory never empties the other Mac, and a run that would delete more than
    docs.max_delete puts deletions on hold (exit 14) until --allow-deletes. A run that
    moved something or failed is audited.

    Example: prontuario docs sync --once --node mac-studio-1 --yes
    """
    from prontuario_cli.docs import sync as syncing

    env = get_env()
    if not once:
        raise UsageError("docs sync makes one pass: add --once", hint="each Mac's launchd job runs it every docs.interval_s")
    if node is not None and source is not None:
        raise UsageError("give --node (run here, as that Mac) or --from (check the source, run on it), not both")
    inventory = env.inventory()
    args = {"node": node, "from": source, "accept_new": accept_new, "allow_deletes": allow_deletes}
    if node is not None:
        from prontuario_cli.docs.state import last_run_here

        if not dry_run:
            confirm(f"push {node}'s documents to the other Mac if {node} leads?", yes=yes)
        before = last_run_here(inventory, node)
        def here():
            return syncing.sync_here(inventory, node, dry_run=dry_run, accept_new=accept_new, allow_deletes=allow_deletes, say=env.say)

        _audit_run("docs sync", args, dry_run, here, previous=before)
        return
    try:
        leader = syncing.find_leader(inventory)
    except ProntuarioError as exc:
        with audited("docs sync", args):
            raise exc from None
    if source is not None and source != leader:
        _audit_run("docs sync", args, False, lambda: syncing.sync_via(inventory, source=source, leader=leader))
        return
    if not dry_run:
        env.say("plan:\n" + "\n".join(f"  {i}. {line}" for i, line in enumerate(syncing.plan_lines(inventory, leader), 1)))
        confirm(f"push the documents from {leader} to the other Mac?", yes=yes)

    def there():
        return syncing.sync_via(inventory, source=source, leader=leader, dry_run=dry_run, accept_new=accept_new, allow_deletes=allow_deletes)

    _audit_run("docs sync", {**args, "leader": leader}, dry_run, there)


def _audit_run(command: str, args: dict, dry_run: bool, run, previous: dict | None = None) -> None:
    """Run the sync; audit it when it moved something, failed, was refused or was a dry run.

    A pass that found nothing to do (every 5 s on both Macs) writes no audit entry, nor does
    one that found another run at work (exit 75) or a failure identical to the run before's
    (``previous``): the log records changes and the start of a failure, not a heartbeat.
    """
    from prontuario_cli.docs.state import same_failure_as_before

    try:
        result = run()
    except ProntuarioError as exc:
        if isinstance(exc, LockedError) or same_failure_as_before(previous, exc.one_line()):
            raise  # another run is at work (it audits itself), or this failure is already on record
        with audited(command, args):
            raise exc from None
    if dry_run or result.outcome == "synced":
        with audited(command, args, dry_run=dry_run) as details:
            details.update(source=result.source, target=result.target, files_sent=result.files_sent, deleted=result.deleted, bytes_sent=result.bytes_sent)
    if result.outcome == "skipped":
        get_env().say(result.message)
    emit(result)


@app.command("status")
@output_options(nagios=True)
def status(
    compare: bool = typer.Option(True, "--compare/--no-compare", help="List what differs now with rsync --dry-run on the leader (default) or only read the records."),
    timeout: float | None = typer.Option(None, "--timeout", metavar="SECONDS", help="How long to wait for the Macs (default: health_checks.timeout_s, at least 5 s)."),
) -> None:
    """How fresh the other Mac's copy of the documents is: the last successful sync's age, the direction, what differs now.

    Exit codes in every format are Nagios's: 0 OK, 1 WARNING (older than docs.stale_warning_s,
    or the last run failed), 2 CRITICAL (older than docs.stale_critical_s, never pushed,
    the directory missing), 3 UNKNOWN (no leader, the leader did not answer).

    Example: prontuario docs status --format nagios
    """
    from prontuario_cli.docs.status import gather

    if timeout is not None and timeout <= 0:
        raise UsageError("--timeout must be greater than 0")
    emit(gather(get_env().inventory(), compare=compare, timeout_s=timeout))
