"""Tables at 80 columns: no line wider than the terminal, no word broken, empty columns hidden,
a table too wide for the screen shown as key/value blocks, colour by status only."""

from __future__ import annotations

import io
import re

from prontuario_cli.cli.output import render
from prontuario_cli.report import Table


class Report:
    def __init__(self, *tables: Table):
        self._tables = tables

    def tables(self):
        return list(self._tables)


def draw(report, width: int = 80, color: bool = False) -> str:
    out = io.StringIO()
    render(report, "table", out, color=color, width=width)
    return out.getvalue()


def words_of(report) -> set[str]:
    from prontuario_cli.cli.output import cell

    found = set()
    for table in report.tables():
        for row in table.rows:
            for value in row:
                text = cell(value)
                if not text.startswith("/"):
                    found.update(text.split())
        found.update(w for c in table.columns for w in c.split())
    return found


def assert_readable(text: str, report, width: int = 80) -> None:
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width, "\n".join(line for line in lines if len(line) > width)
    tokens = set(re.findall(r"[^\s│┃─━┼╇╈]+", text))
    broken = [w for w in words_of(report) if w not in tokens and not any(w in t for t in tokens)]
    assert not broken, f"words broken across lines: {broken[:10]}"


def test_a_wide_report_at_80_columns_breaks_no_word():
    wide = Table(
        "drills",
        ("drill", "mode", "runs", "passed", "missed", "aborted", "failed", "rollback failed", "RTO median s", "RTO p95 s",
         "RTO max s", "RTO target", "lost writes", "worst RPO s", "RPO target", "targets"),
        (("failover", "kill", 12, 11, 1, 0, 0, 0, 20.451, 21.322, 21.9, "< 30 s", 0, 0.0, "0 s", "met"),
         ("health", "checks", 28, 28, 0, 0, 0, 0, 1.2, 1.4, 1.5, "-", 0, 0.0, "-", "met")),
    )
    report = Report(wide)
    text = draw(report)
    assert_readable(text, report)
    assert "rollback failed" in text and "failover" in text  # shown as blocks: every column named


def test_node_names_and_headers_are_never_split():
    nodes = Table(
        "Macs",
        ("node", "state", "patroni", "postgres", "reachable", "note"),
        (("mac-studio-1", "primary", "primary (timeline 7, lag 0 B)", "primary, accepting writes", True, "-"),
         ("mac-studio-2", "replica", "replica streaming from mac-studio-1", "replica, in recovery", True, "rejoined through pg_rewind")),
    )
    report = Report(nodes)
    assert_readable(draw(report), report)


def test_empty_columns_are_hidden_and_long_paths_shortened():
    table = Table("runs", ("run", "error", "journal"), (("20261129T030000Z-a1b2c3", None, "/var/lib/prontuario/reports/drills/2026/11/failover-kill-20261129T030000Z-a1b2c3.json"),))
    text = draw(Report(table))
    assert "error" not in text
    assert "…/11/failover-kill-20261129T030000Z-a1b2c3.json" in text


def test_colour_follows_status_not_state_words():
    table = Table("write backend", ("server", "status", "verdict"), (("mac-studio-2", "DOWN", "OK"), ("cloudsql", "DOWN", "CRITICAL")))
    text = draw(Report(table), color=True)
    down = re.findall(r"(\x1b\[[0-9;]*m)?DOWN", text)
    assert all(code == "" for code in down), "a server state is not an alarm by itself"
    assert re.search(r"\x1b\[[0-9;]*mCRITICAL", text) and re.search(r"\x1b\[[0-9;]*mOK", text)
