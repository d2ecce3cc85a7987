"""``serve status``: each inference server's own ``/status``, like ``ollama ps``.

The servers listen on 127.0.0.1 of their Mac (HAProxy on the same Mac in front), so
the operator's command asks each Mac to look at its own servers
(``prontuario serve status --url ... --json`` there, through the node-access seam) and
``--url`` asks the given servers directly. Every request is bounded; a server that
does not answer is a row saying so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prontuario_cli.errors import ExitCode, ProntuarioError
from prontuario_cli.inventory import Inventory, Node
from prontuario_cli.report import Status, Table, human_bytes
from prontuario_cli.render.apps import KINDS, PORT_FIELD

TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ServerRow:
    node: str
    kind: str
    url: str
    state: str  # ready | not-ready | down | no answer
    status: Status
    model: str | None = None
    version: str | None = None
    rss_bytes: int | None = None
    uptime_s: float | None = None
    queue_depth: int | None = None
    requests: int | None = None
    failed: int | None = None
    note: str = ""


@dataclass(frozen=True)
class ServeStatus:
    servers: tuple[ServerRow, ...]

    @property
    def status(self) -> Status:
        return Status.worst([s.status for s in self.servers]) if self.servers else Status.OK

    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def tables(self) -> list[Table]:
        rows = tuple(
            (s.node or "here", s.kind, s.state, s.model or "-", s.version or "-", human_bytes(s.rss_bytes, "-"), _uptime(s.uptime_s),
             "-" if s.queue_depth is None else s.queue_depth, "-" if s.requests is None else s.requests, s.status, s.note)
            for s in self.servers
        )
        return [Table("inference servers", ("node", "server", "state", "model", "version", "memory", "uptime", "queue", "requests", "status", "note"), rows)]


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def row_from(node: str, url: str, kind: str | None, outcome) -> ServerRow:
    """A row from one ``/status`` fetch (an Outcome of the fan-out); pure."""
    from prontuario_cli.connect import Refused, TimedOut

    if outcome.ok and isinstance(outcome.value, dict):
        d: dict[str, Any] = outcome.value
        ready = bool(d.get("ready"))
        return ServerRow(node, str(d.get("kind") or kind or "?"), url, "ready" if ready else "not-ready", Status.OK if ready else Status.CRITICAL,
                         d.get("model"), d.get("version"), d.get("rss_bytes"), d.get("uptime_s"), d.get("queue_depth"), d.get("requests"),
                         d.get("failed"), "" if ready else str(d.get("reason") or "not ready"))
    if outcome.timed_out or isinstance(outcome.error, TimedOut):
        return ServerRow(node, kind or "?", url, "no answer", Status.CRITICAL, note=f"no answer within {TIMEOUT_S:g} s (hung?)")
    if isinstance(outcome.error, Refused):
        return ServerRow(node, kind or "?", url, "down", Status.CRITICAL, note="connection refused: not running")
    message = outcome.error.message if outcome.error is not None else str(outcome.bug)
    return ServerRow(node, kind or "?", url, "error", Status.UNKNOWN, note=message[:200])


def status_of_urls(urls: list[str], node: str = "", kinds: dict[str, str] | None = None) -> ServeStatus:
    """Ask each server's ``/status`` at once, bounded."""
    from prontuario_cli.connect.fanout import run_all
    from prontuario_cli.connect.http import get_json

    def probe(url: str):
        def fetch(deadline: float):
            _, body = get_json(url.rstrip("/") + "/status", deadline)
            return body

        return fetch

    outcomes = run_all({url: probe(url) for url in urls}, time.monotonic() + TIMEOUT_S)
    return ServeStatus(tuple(row_from(node, url, (kinds or {}).get(url), outcomes[url]) for url in urls))


def urls_of(node: Node) -> dict[str, str]:
    """``{url: kind}`` of the servers the inventory gives this node a port for (on its loopback)."""
    out = {}
    for kind in KINDS:
        port = getattr(node.ports, PORT_FIELD[kind])
        if port:
            out[f"http://127.0.0.1:{port}"] = kind
    return out


def status_of_nodes(inventory: Inventory, names: list[str]) -> ServeStatus:
    """Each Mac looks at its own servers (they listen on its loopback); rows together."""
    import json

    from prontuario_cli.cluster.nodes import node_access
    from prontuario_cli.models.nodes import fan_out, macs

    nodes = macs(inventory, names)

    def ask(node: Node) -> ServeStatus:
        urls = urls_of(node)
        if not urls:
            return ServeStatus(())
        argv = [inventory.models.prontuario, "serve", "status", *[a for url in urls for a in ("--url", url)], "--json"]
        result = node_access(inventory).run(node.name, argv, timeout_s=30)
        try:
            data = json.loads(result.stdout)
        except ValueError:
            from prontuario_cli.errors import OperationFailed

            raise OperationFailed(f"{node.name}: serve status gave no JSON: {(result.stderr.strip().splitlines() or ['no output'])[-1][:200]}") from None
        rows = []
        for s in data.get("servers") or ():
            kind = urls.get(s.get("url"), s.get("kind"))
            rows.append(ServerRow(node.name, s.get("kind") if s.get("kind") not in (None, "?") else kind, s.get("url", ""), s.get("state", "?"),
                                  Status[str(s.get("status", "unknown")).upper()], s.get("model"), s.get("version"), s.get("rss_bytes"),
                                  s.get("uptime_s"), s.get("queue_depth"), s.get("requests"), s.get("failed"), s.get("note", "")))
        return ServeStatus(tuple(rows))

    answers = fan_out(nodes, ask)
    rows: list[ServerRow] = []
    for node in nodes:
        answer = answers[node.name]
        if isinstance(answer, ProntuarioError):
            rows.append(ServerRow(node.name, "-", "", "unreachable", Status.UNKNOWN, note=answer.one_line()[:200]))
        else:
            rows.extend(answer.servers)
    return ServeStatus(tuple(rows))
