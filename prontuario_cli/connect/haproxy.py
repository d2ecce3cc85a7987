"""HAProxy's runtime API over its unix socket: one command, one answer, bounded.

In non-interactive mode HAProxy answers a single command and closes the
connection, so the answer is everything read until end of file.
"""

from __future__ import annotations

import socket
import time

from prontuario_cli.connect import Refused, TimedOut
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
