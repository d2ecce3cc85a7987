"""HAProxy's runtime API over its unix socket: one command, one answer, bounded; and the
one parser of ``show stat`` (the CSV the stats page exports too).

In non-interactive mode HAProxy answers a single command and closes the
connection, so the answer is everything read until end of file.
"""

from __future__ import annotations

import csv
import io
import socket
import time
from dataclasses import dataclass

from prontuario_cli.connect import Refused, TimedOut, as_int
from prontuario_cli.errors import PermissionProblem, UnavailableError

MAX_ANSWER = 8 * 1024 * 1024


def runtime_command(path: str, command: str, deadline: float) -> str:
    """Send ``command`` (e.g. ``show stat``) to the runtime API at ``path``; return the answer.

    ``path`` is a unix socket path, or ``HOST:PORT`` for a runtime API bound to TCP.
    """
    where = f"HAProxy runtime API {path}"
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimedOut(f"{where}: no time left")
    chunks: list[bytes] = []
    size = 0
    tcp = not path.startswith(("/", ".", "~")) and ":" in path
    if tcp:
        host, _, port = path.rpartition(":")
        address: object = (host.strip("[]"), int(port))
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    else:
        address = path
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(left)
        sock.connect(address)
        sock.sendall(command.strip().encode() + b"\n")
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_ANSWER:
                raise UnavailableError(f"{where}: answer larger than {MAX_ANSWER} bytes")
    except FileNotFoundError:
        raise Refused(f"{where}: no such socket", hint="is HAProxy running, with 'stats socket' configured?") from None
    except ConnectionRefusedError:
        raise Refused(f"{where}: connection refused", hint="is HAProxy running?") from None
    except PermissionError:
        raise PermissionProblem(f"{where}: permission denied", hint="run as a user in HAProxy's socket group") from None
    except socket.timeout:
        raise TimedOut(f"{where}: no answer within the health-check timeout") from None
    except OSError as exc:
        raise UnavailableError(f"{where}: {exc.strerror or exc}") from None
    finally:
        sock.close()
    return b"".join(chunks).decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- show stat

HAPROXY_STAT_COMMAND = "show stat"
HAPROXY_STATS_CSV_PATH = "/;csv"


@dataclass(frozen=True)
class HAProxyServer:
    """One server line of ``show stat`` (the CSV the stats page also exports)."""

    proxy: str
    server: str
    status: str  # UP, DOWN, UP 1/2, DOWN 1/3, NOLB, MAINT, DRAIN, no check
    check_status: str = ""  # L7OK, L7STS, L4CON, L4TOUT, ...
    address: str | None = None  # "127.0.0.1:25000" (HAProxy >= 1.9)
    backup: bool = False
    weight: int | None = None
    last_change_s: int | None = None

    @property
    def up(self) -> bool:
        """Taking traffic: UP (also while going down, "UP 1/3"); not NOLB, DRAIN or MAINT."""
        return self.status.split(" ", 1)[0] == "UP"


def parse_haproxy_stat(text: str) -> tuple[HAProxyServer, ...]:
    """``show stat`` CSV (header line ``# pxname,svname,...``) -> one HAProxyServer per server."""
    lines = text.lstrip().splitlines()
    if not lines or not lines[0].startswith("#"):
        raise ValueError("not HAProxy 'show stat' CSV (no '# pxname,...' header)")
    header = lines[0].lstrip("# ").strip()
    reader = csv.DictReader(io.StringIO("\n".join([header, *lines[1:]])))
    servers = []
    for row in reader:
        name = row.get("svname") or ""
        if not name or name in ("FRONTEND", "BACKEND"):
            continue
        servers.append(
            HAProxyServer(
                proxy=row.get("pxname") or "",
                server=name,
                status=(row.get("status") or "").strip(),
                check_status=(row.get("check_status") or "").strip(),
                address=(row.get("addr") or "").strip() or None,
                backup=(row.get("bck") or "0").strip() == "1",
                weight=as_int(row.get("weight")),
                last_change_s=as_int(row.get("lastchg")),
            )
        )
    return tuple(servers)


def show_stat(path: str, deadline: float) -> tuple[HAProxyServer, ...]:
    """Every server of every proxy, from the runtime API at ``path``."""
    text = runtime_command(path, HAPROXY_STAT_COMMAND, deadline)
    try:
        return parse_haproxy_stat(text)
    except ValueError as exc:
        raise UnavailableError(f"HAProxy runtime API {path}: {exc}") from None
