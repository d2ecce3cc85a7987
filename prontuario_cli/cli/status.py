"""``prontuario status``: the whole platform on one screen, worst first, with the next command to run."""

from __future__ import annotations

import inspect
from typing import Optional

import typer

from prontuario_cli.cli.common import emit, get_env, output_options, _isatty
from prontuario_cli.errors import UsageError

DEFAULT_INTERVAL_S = 2.0
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear the screen
HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"


@output_options(nagios=True)
def status(
    seconds: Optional[float] = typer.Argument(None, metavar="[SECONDS]", help="With --watch: seconds between refreshes (default 2)."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh every SECONDS until Ctrl-C (see above for what it prints without a terminal)."),
    count: Optional[int] = typer.Option(None, "--count", "-n", min=1, help="With --watch: stop after N refreshes."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.1, metavar="SECONDS", help="The one deadline for every check (default: health_checks.timeout_s)."),
) -> None:
    """The whole platform on one screen: Macs, witness, databases, routing, fallback, drills, audit.

    One row per thing, worst first; every row that is not OK carries the command to run
    next (→). Rows: each node (reachability; PostgreSQL role, timeline and lag; Redis
    role; its Sentinel), PostgreSQL (leader, timeline, sync standby), Redis, the
    Sentinels' agreement, HAProxy's write and read targets, the cloud replica, etcd's
    quorum, the emergency fallback flag, each drill's last run and next due date
    (OVERDUE when a day / week / month passed without one), and the audit chain.
    Everything is asked at once under one deadline (health_checks.timeout_s, or
    --timeout): a frozen node costs that timeout, not a stuck terminal.

    Exit codes (every format): 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, as a Nagios
    plugin; --format nagios prints one line with perfdata.

    --watch [SECONDS] refreshes in place on a terminal until Ctrl-C (exit 0). Without a
    terminal (or with --json / --format nagios) it prints one report per refresh: a JSON
    document per line (JSON lines), or a Nagios line; --format table without a terminal
    is refused. Each refresh is bounded like a single look.

    Example: prontuario -i /etc/prontuario/cluster.yaml status --watch 5
    """
    from prontuario_cli.status import collect

    env = get_env()
    if seconds is not None and not watch:
        raise UsageError(f"{seconds:g}: SECONDS goes with --watch", hint="prontuario status --watch 5")
    if count is not None and not watch:
        raise UsageError("--count goes with --watch")
    interval = DEFAULT_INTERVAL_S if seconds is None else seconds
    if interval <= 0:
        raise UsageError("--watch SECONDS must be more than 0")
    inventory = env.inventory()
    if not watch:
        report = collect(inventory, timeout_s=timeout)
        _debug_bugs(env, report)
        emit(report)
        return
    fmt = env.output_format
    if fmt == "table" and not _isatty(env.stdout):
        raise UsageError(
            "--watch draws its table in place on a terminal only",
            hint="without a terminal it prints JSON lines (--json) or Nagios lines (--format nagios)",
        )
    _watch(env, lambda: collect(inventory, timeout_s=timeout), interval, count, fmt)


def _watch(env, look, interval: float, count: Optional[int], fmt: str) -> None:
    """Refresh until Ctrl-C (or ``count`` refreshes); a table in place, else one line per report."""
    import time

    in_place = fmt == "table"
    done = 0
    try:
        if in_place:
            env.stdout.write(HIDE_CURSOR)
        while count is None or done < count:
            started = time.monotonic()
            report = look()
            _debug_bugs(env, report)
            _show(env, report, fmt, interval)
            done += 1
            if count is not None and done >= count:
                break
            time.sleep(max(0.0, started + interval - time.monotonic()))
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends: exit 0
    finally:
        if in_place:
            env.stdout.write(SHOW_CURSOR + "\n")
            env.stdout.flush()


def _show(env, report, fmt: str, interval: float) -> None:
    import json

    from prontuario_cli.cli.output import redact_json, render
    from prontuario_cli.report import to_jsonable
    from prontuario_cli.secrets import redact

    out = env.stdout
    if fmt == "json":  # one line per refresh (render's JSON is indented), redacted like every output
        out.write(json.dumps(redact_json(to_jsonable(report)), ensure_ascii=False) + "\n")
    elif fmt == "nagios":
        out.write(redact(report.nagios().line()) + "\n")
    else:
        out.write(CLEAR + f"every {interval:g} s, Ctrl-C to stop — prontuario status\n")
        render(report, "table", out, color=env.color)
    out.flush()


def _debug_bugs(env, report) -> None:
    for source, trace in report.bugs:
        env.debug(f"status source {source} failed:\n{trace}")



app = typer.Typer(
    help=inspect.cleandoc(status.__doc__ or ""),  # the docstring is the --help
    rich_markup_mode=None,
    add_completion=False,
    subcommand_metavar="",
    context_settings={"allow_interspersed_args": True},
)
app.callback(invoke_without_command=True)(status)
