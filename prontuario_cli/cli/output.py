"""One renderer for every report: a rich table on a terminal, JSON for scripts, a Nagios line.

Data goes to stdout; talk (progress, warnings, errors) goes to stderr. rich is
imported only when a table is actually drawn.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TextIO

from prontuario_cli.errors import UsageError
from prontuario_cli.report import Message, Table, to_jsonable

FORMATS = ("table", "json", "nagios")


def render(report: Any, fmt: str, out: TextIO, *, color: bool = True, width: int | None = None) -> None:
    """Write ``report`` to ``out`` in ``fmt`` (table, json or nagios)."""
    if fmt == "json":
        json.dump(to_jsonable(report), out, indent=2, sort_keys=False, ensure_ascii=False)
        out.write("\n")
    elif fmt == "nagios":
        nagios = getattr(report, "nagios", None)
        if nagios is None:
            raise UsageError("--format nagios is only for check commands", hint="use table or json")
        out.write(nagios().line() + "\n")
    elif fmt == "table":
        _render_tables(report, out, color=color, width=width)
    else:
        raise UsageError(f"unknown format {fmt!r}", hint=f"choose one of: {', '.join(FORMATS)}")
    out.flush()


def tables_of(report: Any) -> list[Table]:
    """The tables a report shows: its own ``tables()``, or one built from its fields."""
    own = getattr(report, "tables", None)
    if own is not None:
        return list(own())
    if isinstance(report, Message):
        return []
    if not dataclasses.is_dataclass(report):
        return [Table("", ("value",), ((report,),))]
    scalars: list[tuple[str, Any]] = []
    found: list[Table] = []
    for f in dataclasses.fields(report):
        value = getattr(report, f.name)
        if isinstance(value, (list, tuple)) and value and dataclasses.is_dataclass(value[0]):
            columns = tuple(g.name for g in dataclasses.fields(value[0]))
            rows = tuple(tuple(getattr(item, c) for c in columns) for item in value)
            found.append(Table(f.name.replace("_", " "), columns, rows))
        else:
            scalars.append((f.name, value))
    if scalars:
        found.insert(0, Table("", ("key", "value"), tuple(scalars)))
    return found


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    jsonable = to_jsonable(value)
    if isinstance(jsonable, (dict, list)):
        return json.dumps(jsonable, ensure_ascii=False)
    return str(jsonable)


def _render_tables(report: Any, out: TextIO, *, color: bool, width: int | None) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console(file=out, no_color=not color, highlight=False, width=width, soft_wrap=False)
    if isinstance(report, Message):
        console.print(report.message, markup=False)
    for table in tables_of(report):
        rich_table = RichTable(title=table.title or None, title_justify="left", show_edge=False, pad_edge=False)
        for column in table.columns:
            rich_table.add_column(column, overflow="fold")
        for row in table.rows:
            rich_table.add_row(*(_styled(v) for v in row))
        console.print(rich_table)


_STYLES = {
    "ok": "green", "valid": "green", "up": "green", "passed": "green", "intact": "green", "yes": "green",
    "warning": "yellow", "unknown": "magenta", "dry-run": "cyan",
    "critical": "bold red", "invalid": "bold red", "down": "bold red", "failed": "bold red", "broken": "bold red",
}


def _styled(value: Any):
    from rich.text import Text

    text = cell(value)
    style = _STYLES.get(text.split(" ", 1)[0].lower()) if not isinstance(value, bool) else None
    return Text(text, style=style or "")
