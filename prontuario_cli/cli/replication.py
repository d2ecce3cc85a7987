"""``prontuario replication``: PostgreSQL, Redis/Sentinel and HAProxy replication at a glance."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from prontuario_cli.cli.common import emit, get_env, output_options
from prontuario_cli.errors import ExitCode

app = typer.Typer(
    help=(
        "Watch PostgreSQL and Redis replication: roles, lag in seconds and bytes, Sentinel agreement, "
        "HAProxy routing.\n\nExample: prontuario -i cluster.yaml replication check --format nagios"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)

PROMETHEUS_HELP = "Also write the metrics to this node_exporter textfile (replaced atomically), e.g. the inventory's paths.metrics_textfile."


def _run(record: bool, prometheus: Optional[Path]):
    from prontuario_cli import replication

    env = get_env()
    inventory = env.inventory()
    report = replication.check(inventory, record=record)
    if prometheus is not None:
        from prontuario_cli.replication.metrics import write_replication_textfile

        written = write_replication_textfile(prometheus, report, inventory)
        env.debug(f"wrote {written}")
    return report


@app.command("status")
@output_options(nagios=True)
def status(
    prometheus: Optional[Path] = typer.Option(None, "--prometheus", metavar="FILE", help=PROMETHEUS_HELP),
) -> None:
    """Show the whole replication picture; exit 0 whatever it shows (use 'check' for alerting).

    Members with role, state and timeline (Patroni's view and PostgreSQL's own),
    each replica's sync state and write/flush/replay lag in seconds and bytes, Redis
    roles and offsets, each Sentinel's master and quorum, HAProxy's write server.
    Every probe runs concurrently; the whole look takes at most the health-check
    timeout (health_checks.timeout_s) plus half a second, even with a hung node.

    Example: prontuario -i cluster.yaml replication status
    """
    emit(_run(record=False, prometheus=prometheus), ExitCode.OK)


@app.command("check")
@output_options(nagios=True)
def check(
    prometheus: Optional[Path] = typer.Option(None, "--prometheus", metavar="FILE", help=PROMETHEUS_HELP),
    ack_timeline: bool = typer.Option(
        False, "--ack-timeline", help="Acknowledge the unexpected timeline change now reported (audited), then check."
    ),
) -> None:
    """Check replication against the inventory's thresholds; exit with the Nagios status.

    0 OK, 1 WARNING (lag over the synchronous target, an asynchronous replica, an
    unexpected timeline change: reported to every caller for 24 h or until
    --ack-timeline; a drill's own change is not), 2 CRITICAL (lag over alert_s and
    alert_bytes, commits waiting for a silent sync standby, no synchronous standby, a
    member down or frozen, Sentinels disagreeing or without quorum, no or two HAProxy
    write servers), 3 UNKNOWN (a component did not answer in time). Bounded like 'status'.

    Example: prontuario -i cluster.yaml replication check -f nagios --prometheus /var/lib/node_exporter/textfile/prontuario.prom
    """
    if ack_timeline:
        _acknowledge_timeline()
    emit(_run(record=True, prometheus=prometheus))


def _acknowledge_timeline() -> None:
    """Acknowledge under the state dir's lock; a state dir that cannot be written is the
    operator's to fix (one line naming it), not a bug."""
    from prontuario_cli import paths, replication
    from prontuario_cli.cli.common import audited
    from prontuario_cli.errors import OperationFailed

    env = get_env()
    inventory = env.inventory()
    with audited("replication check --ack-timeline", {}) as details:
        try:
            details["result"] = replication.acknowledge_timeline(inventory)
        except OSError as exc:
            where = paths.state_dir(inventory)
            raise OperationFailed(
                f"cannot record the acknowledgement in {where}: {exc.strerror or exc}",
                hint="make the state directory writable (paths.state_dir or $PRONTUARIO_STATE_DIR)",
            ) from None
    env.say(details["result"])
