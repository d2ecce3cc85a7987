"""One renderer for every report: a rich table on a terminal, JSON for scripts, a Nagios line.

Data goes to stdout; talk (progress, warnings, errors) goes to stderr. rich is
imported only when a table is actually drawn. Every format is redacted the same way
as error messages and logs: a value equal to a secret read (or held by one of the
inventory's environment variables) is printed as ``***``, whatever field it sits in.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TextIO

from prontuario_cli.errors import UsageError
from prontuario_cli.report import Message, Table, to_jsonable
from prontuario_cli.secrets import redact

FORMATS = ("table", "json", "nagios")


def render(report: Any, fmt: str, out: TextIO, *, color: bool = True, width: int | None = None) -> None:
    """Write ``report`` to ``out`` in ``fmt`` (table, json or nagios)."""
    if fmt == "json":
        json.dump(redact_json(to_jsonable(report)), out, indent=2, sort_keys=False, ensure_ascii=False)
        out.write("\n")
    elif fmt == "nagios":
        nagios = getattr(report, "nagios", None)
        if nagios is None:
            raise UsageError("--format nagios is only for check commands", hint="use table or json")
        out.write(redact(nagios().line()) + "\n")
    elif fmt == "table":
        _render_tables(report, out, color=color, width=width)
    else:
        raise UsageError(f"unknown format {fmt!r}", hint=f"choose one of: {', '.join(FORMATS)}")
    out.flush()


def redact_json(value: Any) -> Any:
    """A JSON-ready tree with secrets blanked in every string (keys too) and every number.

    Redacting the tree, not the dumped text: JSON escapes (a quote, a backslash) would
    hide a secret from a text search. A number holding a secret becomes the string ``***``.
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_json(k) if isinstance(k, str) else k: redact_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(value)
        return value if redact(text) == text else redact(text)
    return value


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
    """The text of one table cell (secrets redacted)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return redact(f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}")
    jsonable = redact_json(to_jsonable(value))
    if isinstance(jsonable, (dict, list)):
        return json.dumps(jsonable, ensure_ascii=False)
    return str(jsonable)


def _render_tables(report: Any, out: TextIO, *, color: bool, width: int | None) -> None:
    """Tables that fit the terminal: empty columns hidden, long paths shortened, and a table
    too wide to show without breaking words drawn as one key/value block per row."""
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console(file=out, no_color=not color, force_terminal=True if color else None, highlight=False, width=width, soft_wrap=False)
    if isinstance(report, Message):
        console.print(redact(report.message), markup=False)
    for table in tables_of(report):
        columns, rows = _visible(table)
        if not columns:
            continue
        if _min_width(columns, rows) > console.width:
            _print_blocks(console, redact(table.title), columns, rows)
            continue
        rich_table = RichTable(title=redact(table.title) or None, title_justify="left", show_edge=False, pad_edge=False)
        for column in columns:
            rich_table.add_column(column, overflow="fold")
        for row in rows:
            rich_table.add_row(*(_styled(v) for v in row))
        console.print(rich_table)


def _visible(table: Table) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The table without its empty columns (every cell ``-`` or blank), paths shortened."""
    keep = [i for i in range(len(table.columns)) if not table.rows or any(cell(row[i]).strip() not in ("", "-") for row in table.rows)]
    if len(table.columns) == 2 and table.columns == ("key", "value"):
        keep = [0, 1]
    rows = [tuple(_short(row[i]) for i in keep) for row in table.rows]
    return [table.columns[i] for i in keep], rows


MAX_PATH = 36


def _short(value: Any) -> Any:
    """An absolute path longer than MAX_PATH as ``…/parent/name`` (JSON keeps it whole)."""
    if isinstance(value, str):
        value = redact(value)  # before shortening: a shortened value could show part of a secret
    if isinstance(value, str) and value.startswith("/") and " " not in value and len(value) > MAX_PATH:
        parts = value.rstrip("/").split("/")
        return "…/" + "/".join(parts[-2:])
    return value


def _min_width(columns: list[str], rows: list[tuple[Any, ...]]) -> int:
    """The narrowest the table can be drawn without breaking a word (one space between columns)."""
    def longest_word(text: str) -> int:
        return max((len(word) for word in text.split()), default=0)

    widths = [max([longest_word(column)] + [longest_word(cell(row[i])) for row in rows]) for i, column in enumerate(columns)]
    return sum(widths) + 3 * (len(widths) - 1)


def _print_blocks(console, title: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """One block per row: ``column: value`` lines, the first column as the block's head."""
    from rich.text import Text

    if title:
        console.print(Text(title, style="italic"))
    pad = max(len(c) for c in columns)
    for row in rows:
        head = Text(f"{columns[0]}: ", style="bold")
        head.append(_styled(row[0]))
        console.print(head)
        for column, value in zip(columns[1:], row[1:]):
            line = Text(f"  {column.ljust(pad)}  ")
            line.append(_styled(value))
            console.print(line)


# Colour by status, not by word: a server that is DOWN in a backend where it should be
# (the standby in the write backend) is not an alarm, so state words stay plain.
_STYLES = {
    "ok": "green", "valid": "green", "passed": "green", "intact": "green", "met": "green", "compliant": "green",
    "warning": "yellow", "unknown": "magenta", "dry-run": "cyan",
    "critical": "bold red", "invalid": "bold red", "failed": "bold red", "broken": "bold red", "missed": "bold red",
    "not": "bold red", "rollback_failed": "bold red", "aborted": "yellow", "refused": "yellow", "target_missed": "bold red",
}


def _styled(value: Any):
    from rich.text import Text

    text = cell(value)
    style = _STYLES.get(text.split(" ", 1)[0].lower().rstrip(":")) if not isinstance(value, bool) else None
    return Text(text, style=style or "")
