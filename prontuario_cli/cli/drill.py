"""``prontuario drill``: rehearse failover and measure RTO/RPO against the brief's targets."""

from __future__ import annotations

from enum import Enum
from typing import Optional

import typer

from prontuario_cli.cli.common import audited, confirm, emit, get_env, output_options


class Mode(str, Enum):
    """The failover drill's fault (a Choice: shown in --help and TAB-completed)."""

    switchover = "switchover"
    kill = "kill"
    stop = "stop"
    hang = "hang"


class Service(str, Enum):
    postgres = "postgres"
    redis = "redis"


class DcsMode(str, Enum):
    """The DCS drill's fault: which etcd members are frozen."""

    member = "member"
    quorum = "quorum"


app = typer.Typer(
    help=(
        "Rehearse failover on a schedule: daily health, weekly failover, monthly cloud fallback, with measured RTO/RPO."
        "\n\nMonthly too: dcs, etcd's quorum lost under a running cluster (writes must go on, no failover)."
        "\n\nExit codes: 0 passed, 10 target missed, 12 aborted before the fault, 20 failed (also: interrupted, then rolled back),"
        " 13 rollback failed or abandoned (a second Ctrl-C), 75 another drill holds the lock (wait for it),"
        " 130 interrupted before anything was changed."
        "\n\nOn a terminal: live steps, the watcher's events and the write counters, then one verdict line;"
        " -v or --format table adds the full tables. Piped: timestamped lines on stderr, JSON on stdout."
        "\n\nExample: prontuario drill failover --mode kill --yes"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _run(command: str, args: dict, experiment, question: str, view, *, dry_run: bool, yes: bool) -> None:
    """Plan (--dry-run) or confirm, run under the lock, audit, report: the same for every drill."""
    from prontuario_cli import drill
    from prontuario_cli.report import Message

    env = get_env()
    inventory = env.inventory()
    with audited(command, args, dry_run=dry_run) as details:
        if dry_run:
            plan = experiment.plan()
            emit(Message("plan:\n" + "\n".join(f"  {i}. {step}" for i, step in enumerate(plan, 1)), {"plan": plan}))
            return
        confirm(f"{question} (on {inventory.source})", yes=yes)
        with view:
            journal = drill.run(inventory, experiment, view.say, profile=drill.lab_profile(inventory), progress=view.progress)
        details.update(verdict=journal.verdict, run_id=journal.run_id, journal=journal.journal_path)
        details.conclude(journal.verdict, journal.exit_code())  # passed, missed, failed, aborted, rollback-failed
    _finish(journal, view)


def _finish(journal, view) -> None:
    """The end of a drill on screen: a short summary (or the tables), then the verdict line last.

    The full tables are shown with -v, an explicit --format, or when stdout is not a
    terminal (the data for scripts: JSON when piped, unchanged).
    """
    from prontuario_cli.cli.common import _isatty

    env = get_env()
    if journal.reason and journal.verdict != "passed":
        view.say(f"reason: {journal.reason}")
    if journal.verdict == "rollback-failed":
        view.say("ROLLBACK FAILED — the cluster is not back to its steady state; act now (see the report)")
        if journal.left_to_do:
            view.say("left to do: " + "; ".join(journal.left_to_do))
    view.say(f"journal: {journal.journal_path}")
    if env.verbose or env.format is not None or not _isatty(env.stdout):
        emit(journal, after=lambda: view.verdict(journal.verdict, verdict_text(journal)))  # exits with the verdict's code
        return
    view.say("full tables: add -v, or --format table")
    view.verdict(journal.verdict, verdict_text(journal))
    code = int(journal.exit_code())
    if code:
        raise typer.Exit(code)


HEADLINE_TARGETS = ("RTO", "RPO", "write gap")  # shown in the verdict line even when met


def verdict_text(journal) -> str:
    """``RTO 27.2 s (< 30)  RPO 0  report: …``: RTO, RPO and the write gap always, other targets when missed."""
    parts = []
    for t in journal.targets:
        short = next((h for h in HEADLINE_TARGETS if t.name.startswith(h)), t.name)
        if short not in HEADLINE_TARGETS and t.met:
            continue
        if t.value is None:
            parts.append(f"{short} not measured")
        elif t.unit == "s":
            parts.append(f"{short} {t.value:.1f} s ({t.comparison} {t.target:g})")
        else:
            parts.append(f"{short} {t.value:g}" + ("" if t.met else f" {t.unit} ({t.comparison} {t.target:g})"))
    if not parts and journal.targets:
        parts.append(f"{len(journal.targets)} targets met")
    parts.append(f"report: {journal.report_path}")
    return "  ".join(parts)


@app.command("failover")
@output_options
def failover(
    mode: Mode = typer.Option(Mode.kill, "--mode", "-m", help="switchover (planned), kill (node loss), stop (graceful), hang (SIGSTOP)."),
    service: Service = typer.Option(Service.postgres, "--service", "-s", help="postgres (Patroni) or redis (Sentinel)."),
    restore_primary: bool = typer.Option(False, "--restore-primary", help="After the rollback, switch back to the original primary."),
    skip_cloud: bool = typer.Option(
        False, "--skip-cloud", help="Do not require the cloud replica to follow the new primary (it is being rebuilt). Recorded in the report."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; touch nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (for cron)."),
) -> None:
    """Fail the primary over for real, measure RTO/RPO, then roll back (weekly drill).

    With a cloud fallback in the inventory, a PostgreSQL drill also starts only once the
    sync standby holds the cloud replica's slot, and ends by proving the cloud replica
    follows the new primary: its first write arrives there within the RPO target, and
    the replica holds every acknowledged write and nothing the new primary lacks.

    Example: prontuario -i /var/lib/prontuario/lab/cluster.yaml drill failover --mode kill --yes
    """
    from prontuario_cli.cli.progress import for_env

    env = get_env()
    view = for_env(env)
    mode, service = Mode(mode).value, Service(service).value
    experiment = _failover_experiment(env.inventory(), mode, service, restore_primary, view.progress, cloud=not skip_cloud)
    args = {"mode": mode, "service": service, "restore_primary": restore_primary, "skip_cloud": skip_cloud}
    question = f"run a {mode} failover drill of {service}? It really fails the primary over"
    _run("drill failover", args, experiment, question, view, dry_run=dry_run, yes=yes)


def _failover_experiment(inventory, mode: str, service: str, restore_primary: bool, progress=None, cloud: bool = True):
    from prontuario_cli import drill
    from prontuario_cli.drill.failover import MODES, FailoverOptions, PostgresFailover
    from prontuario_cli.errors import UsageError

    if mode not in MODES:
        raise UsageError(f"--mode {mode!r} is not one of: {', '.join(MODES)}")
    if service not in ("postgres", "redis"):
        raise UsageError(f"--service {service!r} is not one of: postgres, redis")
    run_id = drill.new_run_id("failover", f"{service}-{mode}")
    if service == "redis":
        from prontuario_cli.drill.redis_failover import RedisFailover

        return RedisFailover(inventory, FailoverOptions(mode=mode, restore_primary=restore_primary), run_id, get_env().say, progress)
    return PostgresFailover(inventory, FailoverOptions(mode=mode, restore_primary=restore_primary, cloud=cloud), run_id, get_env().say, progress)


@app.command("health")
@output_options
def health(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; touch nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (for cron)."),
) -> None:
    """Prove every health check works, with zero downtime (daily drill).

    Checks Patroni's REST contracts, fails one HAProxy check through the runtime API and
    times DOWN/UP against the inventory's interval × fall / rise, checks Sentinel quorum,
    and keeps writing throughout: not one write may fail.

    Example: prontuario drill health --yes --format table
    """
    from prontuario_cli import drill
    from prontuario_cli.cli.progress import for_env
    from prontuario_cli.drill.health import HealthDrill

    env = get_env()
    view = for_env(env)
    experiment = HealthDrill(env.inventory(), drill.new_run_id("health", "checks"), view.say, view.progress)
    question = "run the health drill? It briefly fails one HAProxy read check"
    _run("drill health", {}, experiment, question, view, dry_run=dry_run, yes=yes)


@app.command("cloud")
@output_options
def cloud(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; touch nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (for cron)."),
) -> None:
    """Both Macs down → promote the cloud DRILL replica → measure RTO/RPO → roll back (monthly drill).

    Uses the same code path as 'gcp promote', always against cloud.drill_instance (refused
    when the inventory names none); never routes writes to it or raises the emergency flag.
    Targets: the inventory's both_lost (brief: RTO < 5 min, RPO < 60 s).

    Example: prontuario -i /var/lib/prontuario/lab/cluster.yaml drill cloud --yes
    """
    from prontuario_cli import drill
    from prontuario_cli.cli.progress import for_env
    from prontuario_cli.drill.cloud import CloudDrill

    env = get_env()
    view = for_env(env)
    experiment = CloudDrill(env.inventory(), drill.new_run_id("cloud", "both-macs-lost"), view.say, progress=view.progress)
    question = f"run the cloud drill? It takes BOTH Macs down and promotes {experiment.instance}"
    _run("drill cloud", {"instance": experiment.instance}, experiment, question, view, dry_run=dry_run, yes=yes)


@app.command("dcs")
@output_options
def dcs(
    mode: DcsMode = typer.Option(
        DcsMode.quorum, "--mode", "-m",
        help="member (freeze the witness's etcd: no spare vote) or quorum (also the standby Mac's: no quorum, past Patroni's ttl).",
    ),
    hold: Optional[float] = typer.Option(
        None, "--hold", metavar="SECONDS",
        help="How long the freeze lasts (default: Patroni's ttl + 3 × loop_wait + 5 s, read from the leader; quorum: more than ttl).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; touch nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (for cron)."),
) -> None:
    """Freeze etcd members under a running cluster; writes must go on, with no failover (monthly drill).

    member freezes (SIGSTOP) the witness's etcd member: etcd keeps its quorum with no spare
    vote. quorum also freezes the etcd member on the Mac that is not the Patroni leader, for
    longer than Patroni's ttl: etcd has no quorum, and only Patroni's failsafe_mode keeps the
    primary writing. A write probe runs through HAProxy throughout; the rollback always thaws
    every member it froze. Targets: 0 acknowledged writes lost, no failover (same timeline,
    same leader), longest write gap < targets.primary_lost.rto_s (quorum) or < 5 s (member).

    Example: prontuario -i /var/lib/prontuario/lab/cluster.yaml drill dcs --mode quorum --yes
    """
    from prontuario_cli import drill
    from prontuario_cli.cli.progress import for_env
    from prontuario_cli.drill.dcs import DcsDrill, DcsOptions

    env = get_env()
    options = DcsOptions(mode=DcsMode(mode).value, hold_s=hold)  # a bad --hold is refused before anything runs
    view = for_env(env)
    experiment = DcsDrill(env.inventory(), options, drill.new_run_id("dcs", options.mode), view.say, view.progress)
    what = "the witness's etcd member" if options.mode == "member" else "two of the three etcd members (the witness's and the standby Mac's)"
    question = f"run a {options.mode} DCS drill? It freezes (SIGSTOP) {what}"
    _run("drill dcs", {"mode": options.mode, "hold_s": hold}, experiment, question, view, dry_run=dry_run, yes=yes)


from prontuario_cli.cli import drill_history  # noqa: E402 - schedule, history and report

drill_history.register(app)
