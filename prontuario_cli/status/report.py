"""The status report: every row of every source, worst first, with its next action.

JSON keys (stable)::

    status        ok | warning | critical | unknown (the Nagios verdict: the worst row)
    summary       one line, as in the Nagios output
    checked_at    ISO 8601 time of the look; elapsed_s, timeout_s (the one deadline)
    counts        {ok, warning, critical, unknown}: rows per status
    rows[]        component, name, status, state, problem, action, details, source (worst first)
    actions[]     the distinct next actions, worst first: what to type, in order

``details`` per component:

    node          role, reachable (up|down|no answer|-), postgres_role, timeline, sync_state,
                  lag_s, lag_bytes, redis_role, sentinel_agrees
    postgres      leader, timeline, previous_timeline, sync_standby, sync_lag_s
    redis         master, replicas_in_sync
    sentinel      master, agreeing, answering, total
    haproxy       writes_to [nodes], reads_from [nodes]
    etcd          healthy [members], unhealthy {member: why}, total
    cloud         state, timeline, reachable
    fallback      active, since, instance, reason
    docs          leader, source, target (the direction), last_sync_at, last_sync_age_s, last_error
    drill         cadence, last_run, verdict, run_id, rto_s, due_unit, due_by, overdue
    audit         log, entries, intact, problems, warnings
    source        source (a source that failed or did not answer in time)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prontuario_cli.errors import ExitCode
from prontuario_cli.report import Nagios, Perf, Status, Table
from prontuario_cli.status.rows import Row


@dataclass(frozen=True)
class StatusReport:
    status: Status
    summary: str
    checked_at: str
    elapsed_s: float
    timeout_s: float
    counts: dict[str, int]
    rows: tuple[Row, ...]
    actions: tuple[str, ...] = ()
    # Tracebacks of sources that failed unexpectedly (for the debug output, not the JSON).
    bugs: tuple[tuple[str, str], ...] = field(default=(), metadata={"json": False})

    def exit_code(self) -> ExitCode:
        """The Nagios status as the exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
        return ExitCode(int(self.status))

    def perfdata(self) -> tuple[Perf, ...]:
        perf = [
            Perf("critical", self.counts.get("critical", 0), "", crit=0, min=0),
            Perf("warning", self.counts.get("warning", 0), "", warn=0, min=0),
            Perf("unknown", self.counts.get("unknown", 0), "", min=0),
        ]
        for row in self.rows:
            perf.extend(row.perf)
        perf.append(Perf("elapsed", round(self.elapsed_s, 3), "s", crit=self.timeout_s, min=0))
        return tuple(perf)

    def nagios(self) -> Nagios:
        return Nagios(self.status, self.summary, self.perfdata())

    def tables(self) -> list[Table]:
        head = Table(
            "",
            ("status", "problems", "checked (UTC)", "took"),
            ((self.status, _problem_count(self.counts), self.checked_at.replace("+00:00", "Z"), f"{self.elapsed_s:.2f} s"),),
        )
        rows = Table("", ("status", "what", "state, problem and next action"), tuple((r.status, r.name, cell_text(r)) for r in self.rows))
        return [head, rows]


def cell_text(row: Row) -> str:
    """What the third column shows: the state, then the problem, then ``→ command``."""
    lines = [row.state]
    if row.problem and row.problem != row.state:
        lines.append(row.problem)
    if row.action:
        lines.append(f"→ {row.action}")
    return "\n".join(line for line in lines if line)


def _problem_count(counts: dict[str, int]) -> str:
    parts = [f"{counts[k]} {k}" for k in ("critical", "unknown", "warning") if counts.get(k)]
    return ", ".join(parts) if parts else "none"
