"""Every wait is bounded: hung peers (they accept TCP and never answer) cost one deadline.

A "silent" listener is a socket that listens but never accepts: the kernel completes
the TCP handshake, exactly as with a SIGSTOPped server.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from prontuario_cli.connect import Refused, TimedOut
from prontuario_cli.connect.fanout import run_all
from prontuario_cli.inventory import parse_inventory

SLACK = 0.5  # the brief's bound: timeout + 0.5 s


@pytest.fixture
def silent_ports():
    """Make silent listeners on demand: ``silent_ports()`` -> a new port."""
    sockets = []

    def make() -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sockets.append(sock)
        return sock.getsockname()[1]

    yield make
    for sock in sockets:
        sock.close()


@pytest.fixture
def silent_port(silent_ports):
    return silent_ports()


@pytest.fixture
def closed_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    return port


@pytest.fixture
def silent_unix_socket(tmp_path):
    path = tmp_path / "haproxy.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(16)
    yield path
    sock.close()


def test_fanout_returns_at_the_deadline_and_abandons_a_hung_probe():
    release = threading.Event()

    def hung(deadline):
        release.wait(30)
        return "late"

    started = time.monotonic()
    outcomes = run_all({"hung": hung, "fast": lambda d: 42, "bad": lambda d: 1 / 0}, started + 0.3)
    elapsed = time.monotonic() - started
    release.set()
    assert elapsed < 0.3 + SLACK
    assert outcomes["hung"].timed_out and not outcomes["hung"].ok
    assert outcomes["fast"].value == 42 and outcomes["fast"].ok
    assert outcomes["bad"].bug.startswith("ZeroDivisionError")
    assert list(outcomes) == ["hung", "fast", "bad"]


def test_fanout_threads_are_daemons():
    seen = []

    def probe(deadline):
        seen.append(threading.current_thread().daemon)

    run_all({"a": probe}, time.monotonic() + 1)
    assert seen == [True]


def test_postgres_connect_to_a_hung_server_is_bounded(silent_port):
    from prontuario_cli.connect.postgres import PgTarget, run_queries

    def probe(deadline):
        return run_queries(PgTarget("127.0.0.1", silent_port), ["SELECT 1"], deadline)

    started = time.monotonic()
    outcomes = run_all({"pg": probe}, started + 0.5)
    assert time.monotonic() - started < 0.5 + SLACK
    assert not outcomes["pg"].ok


def test_postgres_refused_is_refused(closed_port):
    from prontuario_cli.connect.postgres import PgTarget, run_queries

    with pytest.raises(Refused):
        run_queries(PgTarget("127.0.0.1", closed_port), ["SELECT 1"], time.monotonic() + 2)


def test_postgres_watchdog_wakes_a_blocked_reader():
    from prontuario_cli.connect.postgres import Watchdog

    a, b = socket.socketpair()
    try:
        dog = Watchdog(a.fileno(), time.monotonic() + 0.2)
        started = time.monotonic()
        a.settimeout(5)
        assert a.recv(10) == b""  # woken by the shutdown, not by the 5 s timeout
        assert time.monotonic() - started < 1.0 and dog.fired
    finally:
        a.close()
        b.close()


def test_postgres_watchdog_disarmed_touches_nothing():
    from prontuario_cli.connect.postgres import Watchdog

    a, b = socket.socketpair()
    try:
        dog = Watchdog(a.fileno(), time.monotonic() + 0.1)
        dog.disarm()
        time.sleep(0.2)
        b.sendall(b"x")
        assert a.recv(1) == b"x" and not dog.fired
    finally:
        a.close()
        b.close()


class StallingPostgres:
    """A PostgreSQL server on 127.0.0.1 that logs every client in, then never answers a query:
    what a backend that hangs after the login looks like from the client. ``close()`` hangs up
    on every client (so a blocked client can be released) and stops listening."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.query_received = threading.Event()
        self.clients: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.clients.append(conn)
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError("client went away")
            data += chunk
        return data

    def _client(self, conn: socket.socket) -> None:
        try:
            while True:  # SSLRequest / GSSENCRequest: "N" (no encryption), then the startup packet
                length, code = struct.unpack("!ii", self._read(conn, 8))
                self._read(conn, length - 8)
                if code in (80877103, 80877104):
                    conn.sendall(b"N")
                    continue
                break

            def message(kind: bytes, body: bytes) -> bytes:
                return kind + struct.pack("!i", len(body) + 4) + body

            params = {"server_version": "15.0", "client_encoding": "UTF8", "standard_conforming_strings": "on", "DateStyle": "ISO, MDY", "integer_datetimes": "on"}
            conn.sendall(
                message(b"R", struct.pack("!i", 0))  # AuthenticationOk
                + b"".join(message(b"S", f"{k}\0{v}\0".encode()) for k, v in params.items())
                + message(b"K", struct.pack("!ii", 4242, 1))  # BackendKeyData
                + message(b"Z", b"I")  # ReadyForQuery
            )
            while conn.recv(65536):  # the query arrives ... and is never answered
                self.query_received.set()
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()
        for conn in self.clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


@pytest.fixture
def stalling_postgres():
    server = StallingPostgres()
    yield server
    server.close()


def _call_in_thread(function) -> tuple[threading.Thread, dict]:
    """Start FUNCTION() in a daemon thread; the dict gets "value" or "error" when it returns."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def test_postgres_query_to_a_server_hung_after_login_is_cut_at_the_deadline(stalling_postgres):
    """The login succeeds, the query is never answered, statement_timeout cannot help (the
    server never runs it): only the session's watchdog returns control at the deadline."""
    from prontuario_cli.connect.postgres import PgTarget, run_queries

    started = time.monotonic()
    thread, outcome = _call_in_thread(lambda: run_queries(PgTarget("127.0.0.1", stalling_postgres.port), ["SELECT 1"], started + 0.5))
    thread.join(0.5 + SLACK)
    elapsed = time.monotonic() - started
    assert not thread.is_alive(), f"run_queries still blocked {elapsed:.1f} s after a 0.5 s deadline: is the watchdog armed?"
    assert stalling_postgres.query_received.is_set(), "the query never reached the server: the login failed"
    assert isinstance(outcome.get("error"), TimedOut), outcome


def test_without_the_watchdog_the_same_query_hangs(stalling_postgres, monkeypatch):
    """The control experiment: with the watchdog made a no-op, nothing else (libpq's
    connect_timeout, statement_timeout, tcp_user_timeout) ends the wait, so the test above
    passes only because of the watchdog."""
    from prontuario_cli.connect import postgres

    class NoWatchdog:
        fired = False

        def __init__(self, fd: int, deadline: float):
            pass

        def disarm(self) -> None:
            pass

    monkeypatch.setattr(postgres, "Watchdog", NoWatchdog)
    deadline = time.monotonic() + 0.5
    thread, outcome = _call_in_thread(lambda: postgres.run_queries(postgres.PgTarget("127.0.0.1", stalling_postgres.port), ["SELECT 1"], deadline))
    thread.join(deadline + 1.0 - time.monotonic())
    assert stalling_postgres.query_received.is_set(), "the query never reached the server: the login failed"
    assert thread.is_alive(), f"returned without the watchdog: {outcome}"
    stalling_postgres.close()  # hang up: the blocked query fails at once
    thread.join(5)
    assert not thread.is_alive() and "error" in outcome


def test_redis_hung_server_times_out(silent_port):
    from prontuario_cli.connect.redis import RedisTarget, commands

    started = time.monotonic()
    with pytest.raises(TimedOut):
        commands(RedisTarget("127.0.0.1", silent_port), [("INFO", "replication")], started + 0.4)
    assert time.monotonic() - started < 0.4 + SLACK


def test_redis_refused(closed_port):
    from prontuario_cli.connect.redis import RedisTarget, commands

    with pytest.raises(Refused):
        commands(RedisTarget("127.0.0.1", closed_port), [("PING",)], time.monotonic() + 1)


def test_http_hung_server_times_out(silent_port):
    from prontuario_cli.connect.http import get_json

    started = time.monotonic()
    with pytest.raises(TimedOut):
        get_json(f"http://127.0.0.1:{silent_port}/patroni", started + 0.4)
    assert time.monotonic() - started < 0.4 + SLACK


def test_haproxy_hung_socket_times_out(silent_unix_socket):
    from prontuario_cli.connect.haproxy import runtime_command

    started = time.monotonic()
    with pytest.raises(TimedOut):
        runtime_command(str(silent_unix_socket), "show stat", started + 0.4)
    assert time.monotonic() - started < 0.4 + SLACK


def test_haproxy_missing_socket_is_refused(tmp_path):
    from prontuario_cli.connect.haproxy import runtime_command

    with pytest.raises(Refused):
        runtime_command(str(tmp_path / "nope.sock"), "show stat", time.monotonic() + 1)


def test_haproxy_runtime_api_reads_until_the_server_closes(tmp_path):
    from prontuario_cli.connect.haproxy import runtime_command

    path = tmp_path / "api.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    got = []

    def serve():
        conn, _ = server.accept()
        got.append(conn.recv(100))
        conn.sendall(b"# pxname,svname,status\n")
        conn.sendall(b"write,a,UP\n\n")
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        answer = runtime_command(str(path), "show stat", time.monotonic() + 2)
    finally:
        server.close()
    assert got == [b"show stat\n"]
    assert answer == "# pxname,svname,status\nwrite,a,UP\n\n"


def _hung_inventory(tmp_path: Path, ports: list[int], unix_socket: Path, timeout_s: float):
    pg, patroni, redis, sentinel, etcd = ports
    text = f"""
version: 1
nodes:
  - {{name: mac-studio-1, role: primary, address: 127.0.0.1, ports: {{postgresql: {pg}, patroni: {patroni}, redis: {redis}, sentinel: {sentinel}, etcd_client: {etcd}}}}}
  - {{name: witness, role: witness, address: 127.0.0.2, ports: {{sentinel: {sentinel}, etcd_client: {etcd}}}}}
health_checks: {{interval_s: 5, timeout_s: {timeout_s}}}
haproxy: {{socket: {unix_socket}}}
paths: {{state_dir: {tmp_path / 'state'}}}
"""
    return parse_inventory(text, "hung.yaml")


def test_the_whole_check_against_hung_services_is_bounded(tmp_path, silent_ports, silent_unix_socket):
    # 127.0.0.2 is loopback too, where nothing listens: the witness's Sentinel is refused.
    from prontuario_cli import replication
    from prontuario_cli.report import Status

    inventory = _hung_inventory(tmp_path, [silent_ports() for _ in range(5)], silent_unix_socket, timeout_s=0.7)
    started = time.monotonic()
    report = replication.check(inventory, record=True)
    elapsed = time.monotonic() - started
    assert elapsed < 0.7 + SLACK, elapsed
    assert report.status in (Status.UNKNOWN, Status.CRITICAL)
    member = report.members[0]
    assert member.reachable == "no answer"
    # A frozen etcd member costs the timeout too, and a quorum nobody answers for is CRITICAL.
    assert [(e.node, e.reachable) for e in report.etcd] == [("mac-studio-1", "no answer"), ("witness", "down")]
    assert report.etcd_quorum["quorum"] is False and report.status == Status.CRITICAL
    assert os.environ["PRONTUARIO_STATE_DIR"]  # the autouse fixture keeps state out of the machine
