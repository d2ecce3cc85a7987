"""The one interface through which a capability adds lines to ``prontuario status``.

A *source* is a named callable ``(inventory, deadline) -> rows``: it reads one part of
the platform and says, row by row, what it found. ``deadline`` is absolute
(``time.monotonic()``); a source that touches the network passes it to its
connectors and returns by then. Sources are registered in one place,
:data:`prontuario_cli.status.sources.SOURCES`, and run concurrently.

A :class:`Row` is what one line of the screen says: its status, what it is about, its
state in words, and — when it is not OK — the problem and the next command to run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, NamedTuple, Protocol, Sequence

from prontuario_cli.inventory import Inventory
from prontuario_cli.report import Perf, Status


@dataclass(frozen=True)
class Row:
    """One line of ``prontuario status``.

    ``component`` is the kind of thing (node, postgres, redis, sentinel, haproxy,
    etcd, cloud, fallback, drill, audit, source); ``name`` is how a person calls it
    ("mac-studio-2", "drill failover"). ``action`` is a command to run next, set on
    every row that is not OK. ``details`` holds the facts behind the row for scripts
    (keys documented per component in :mod:`prontuario_cli.status.report`).
    """

    component: str
    name: str
    status: Status
    state: str
    problem: str = ""
    action: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # filled in by the aggregator: which source said it
    perf: tuple[Perf, ...] = field(default=(), metadata={"json": False})  # Nagios perfdata


class StatusSource(Protocol):
    """``(inventory, deadline) -> rows``: what a capability registers to appear in ``status``."""

    def __call__(self, inventory: Inventory, deadline: float) -> Sequence[Row]: ...


class Source(NamedTuple):
    """A registered source: its name (shown when it fails) and the callable."""

    name: str
    rows: StatusSource


# Worst first: CRITICAL, UNKNOWN, WARNING, OK (Nagios's aggregation order, as Status.worst).
SEVERITY = {Status.CRITICAL: 0, Status.UNKNOWN: 1, Status.WARNING: 2, Status.OK: 3}


def worst_first(rows: Iterable[Row]) -> list[Row]:
    """Rows sorted worst first; rows of equal status keep their order (sources, then rows)."""
    return sorted(rows, key=lambda row: SEVERITY[row.status])


def source_failed(name: str, message: str, action: str = "") -> Row:
    """The row of a source that could not say anything: UNKNOWN, naming the source."""
    return Row("source", name, Status.UNKNOWN, "could not check", message, action, {"source": name})


def problem_row(
    component: str,
    name: str,
    state: str,
    problems: Sequence[tuple[Status, str]],
    action: Callable[[Status], str] | str,
    **extra: Any,
) -> Row:
    """A row whose status is the worst of ``problems`` (OK when none); the action only when not OK."""
    status = Status.worst([s for s, _ in problems]) if problems else Status.OK
    shown = [text for s, text in sorted(problems, key=lambda p: SEVERITY[p[0]])]
    todo = "" if status == Status.OK else (action(status) if callable(action) else action)
    return Row(component, name, status, state, "; ".join(dict.fromkeys(shown)), todo, **extra)
