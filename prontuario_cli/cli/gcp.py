"""``prontuario gcp``: the emergency Cloud SQL fallback — status, promote, failback."""

from __future__ import annotations

from typing import Optional

import typer

from prontuario_cli.cli.common import audited, confirm, emit, get_env, output_options

app = typer.Typer(
    help=(
        "The emergency Cloud SQL fallback: status, manual promote (guarded, resumable) and failback."
        "\n\nExit codes: 0 done, 14 refused (a Mac is still up, a drill on the live replica), "
        "12 not confirmed, 20 a step failed (continue with --resume), 69 Google or a host unreachable, "
        "75 another run or operation in progress, 77 permission denied, 78 configuration."
        "\n\nExample: prontuario gcp status"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)

INSTANCE_HELP = "Cloud SQL instance (default cloud.sql_instance; cloud.drill_instance makes it a drill)."


@app.command("status")
@output_options
def status(instance: Optional[str] = typer.Option(None, "--instance", metavar="NAME", help=INSTANCE_HELP)) -> None:
    """Replica state and lag, whether emergency mode is on, the Macs, and where HAProxy sends writes.

    Read-only and bounded; a part that cannot be checked is listed, not fatal.

    Example: prontuario gcp status --json
    """
    from prontuario_cli.gcp.status import status as gcp_status

    emit(gcp_status(get_env().inventory(), instance))


@app.command("promote")
@output_options
def promote(
    reason: str = typer.Option("", "--reason", metavar="TEXT", help="Why (goes to the audit log and the notification). Required unless --resume."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for the typed instance name."),
    force: bool = typer.Option(False, "--force", help="A Mac is still reachable: FENCE it (stop Patroni/PostgreSQL) and promote anyway."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted promotion (promoteReplica is never sent twice)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and the refusals; change nothing."),
    instance: Optional[str] = typer.Option(None, "--instance", metavar="NAME", help=INSTANCE_HELP),
) -> None:
    """Promote the Cloud SQL replica when both Macs are down (emergency mode); prints the plan first.

    Refuses (exit 14) while a Mac is reachable, unless --force, which fences it first.
    Every step is audited and recorded in the state dir; after an interruption run the
    same command with --resume. Prints RTO and RPO against targets.both_lost.

    Example: prontuario gcp promote --reason "both Macs lost: power failure in room 2"
    """
    from prontuario_cli.errors import RefusedError
    from prontuario_cli.gcp.promote import Promotion
    from prontuario_cli.report import Message

    from prontuario_cli.cli.progress import for_env

    env = get_env()
    inventory = env.inventory()
    view = for_env(env)
    promotion = Promotion(inventory, instance, reason, force=force, say=view.say)
    promotion.progress = view.progress  # each step once, live on a terminal
    args = {"instance": promotion.instance, "reason": reason, "force": force, "resume": resume, "drill": promotion.drill}
    with audited("gcp promote", args, dry_run=dry_run) as details:
        plan = promotion.preview(resume=resume)
        if plan.refusal and not dry_run:  # a refusal is said before any plan
            raise RefusedError(plan.refusal, hint=plan.refusal_hint)
        if plan.refusal:
            env.say(f"REFUSED: {plan.refusal} — {plan.refusal_hint}")
        env.say(f"plan: {'resume ' if resume else ''}promote {plan.instance}" + (" (drill)" if plan.drill else "") + (" (would be refused)" if plan.refusal else ""))
        for h in plan.macs:
            env.say(f"  {h.node}: {h.state} (patroni: {h.patroni}; postgres: {h.postgres})")
        env.say(f"  instance: {plan.instance_state}")
        for i, step in enumerate(plan.steps, 1):
            env.say(f"  {i:2}. {step}")
        if dry_run:
            details.update(refusal=plan.refusal)
            emit(Message("dry run: nothing was changed" + (f"; it would be refused: {plan.refusal}" if plan.refusal else ""), {"plan": list(plan.steps), "refusal": plan.refusal, "macs": [h.__dict__ for h in plan.macs]}))
            return
        if not resume:
            confirm(typed=promotion.instance, yes=yes, question=f"PROMOTE {promotion.instance} to a stand-alone primary" + (" after FENCING the reachable Macs" if force and any(h.reachable for h in plan.macs) else ""))
        with view:
            report = promotion.run(resume=resume)
        details.update(run_id=report.run_id, rto_s=report.rto_s, rpo_s=report.rpo_s, rto_met=report.rto_met, rpo_met=report.rpo_met, operation=report.operation)
        details.conclude("completed" if report.completed else "incomplete", report.exit_code())
    _say_targets(report)
    emit(report)


def _say_targets(report) -> None:
    env = get_env()
    for label, value, target, met in (("RTO", report.rto_s, report.rto_target_s, report.rto_met), ("RPO", report.rpo_s, report.rpo_target_s, report.rpo_met)):
        if value is None:
            env.say(f"{label}: not measured")
        else:
            env.say(f"{label}: {value:.1f} s — {'within' if met else 'MISSED'} the both-Macs-lost target of {target:g} s")
    for note in report.notes:
        env.say(f"note: {note}")


@app.command("failback")
@output_options
def failback(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before each step."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted failback where it stopped."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the runbook; change nothing."),
    instance: Optional[str] = typer.Option(None, "--instance", metavar="NAME", help=INSTANCE_HELP),
) -> None:
    """Return from emergency mode to the Macs without losing the writes made in the cloud.

    Freeze the cloud, bring the Mac cluster up behind HAProxy maintenance, copy the
    database from the cloud into the Mac primary (the Macs' old copy is kept under a
    new name), verify row counts, route writes back, clear the flag, re-create the
    cloud replica. Each step is printed, confirmed, audited and resumable.

    Example: prontuario gcp failback
    """
    from prontuario_cli.gcp.failback import Failback
    from prontuario_cli.report import Message

    from prontuario_cli.cli.progress import for_env

    env = get_env()
    inventory = env.inventory()
    view = for_env(env)
    runbook = Failback(inventory, instance, say=view.say, confirm=lambda question: confirm(question, yes=yes))
    runbook.progress = view.progress  # each step once, live on a terminal
    with audited("gcp failback", {"instance": runbook.instance, "resume": resume}, dry_run=dry_run) as details:
        steps = runbook.plan()
        env.say(f"runbook: {'resume ' if resume else ''}failback from {runbook.instance} to the Macs")
        for i, step in enumerate(steps, 1):
            env.say(f"  {i:2}. {step}")
        if dry_run:
            emit(Message("dry run: nothing was changed", {"plan": steps}))
            return
        with view:
            report = runbook.run(resume=resume)
        details.update(run_id=report.run_id, completed=report.completed)
        details.conclude("completed" if report.completed else "incomplete", report.exit_code())
        if report.completed:  # the Macs restarted on purpose: their new timeline is no surprise
            from prontuario_cli.replication import record_operation_timeline

            details["timeline"] = record_operation_timeline(inventory, f"gcp failback {report.run_id}")
            env.say(details["timeline"])
    emit(report)
