"""``prontuario replication status|check`` through the real CLI, against loopback ports where nothing listens."""

from __future__ import annotations

import socket
import sys

import pytest

from tests.helpers import run, run_process


def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def dead_cluster(tmp_path):
    """An inventory whose every service is down (connection refused) on 127.0.0.1."""
    p = [free_port() for _ in range(7)]
    path = tmp_path / "cluster.yaml"
    path.write_text(
        f"""version: 1
nodes:
  - {{name: mac-studio-1, role: primary, address: 127.0.0.1, ports: {{postgresql: {p[0]}, patroni: {p[1]}, redis: {p[2]}, sentinel: {p[3]}}}}}
  - {{name: mac-studio-2, role: secondary, address: 127.0.0.1, ports: {{postgresql: {p[4]}, patroni: {p[5]}}}}}
  - {{name: witness, role: witness, address: 127.0.0.1, ports: {{sentinel: {p[6]}}}}}
health_checks: {{timeout_s: 3}}  # refused connections answer at once; the margin is for a loaded machine
haproxy: {{socket: {tmp_path / 'no-haproxy.sock'}}}
""",
        encoding="utf-8",
    )
    return str(path)


def test_status_always_exits_0_and_gives_json(dead_cluster):
    result = run("-i", dead_cluster, "replication", "status", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["status"] == "critical"
    assert {m["node"]: m["reachable"] for m in data["members"]} == {"mac-studio-1": "down", "mac-studio-2": "down"}
    assert data["problems"] and all(set(p) == {"component", "status", "message"} for p in data["problems"])


def test_check_exits_with_the_nagios_status(dead_cluster):
    result = run("-i", dead_cluster, "replication", "check", "-f", "nagios")
    assert result.code == 2
    assert result.out.startswith("PRONTUARIO CRITICAL - ")
    assert " | " in result.out and "sentinels=0" in result.out
    assert result.out.count("\n") == 1


def test_table_output(dead_cluster):
    result = run("-i", dead_cluster, "replication", "status", "-f", "table")
    assert result.code == 0
    for title in ("PostgreSQL members", "Redis", "Sentinels", "problems"):
        assert title in result.out


def test_prometheus_textfile_is_written_even_when_critical(dead_cluster, tmp_path):
    target = tmp_path / "textfile" / "prontuario.prom"
    result = run("-i", dead_cluster, "replication", "check", "--json", "--prometheus", str(target))
    assert result.code == 2
    text = target.read_text()
    assert 'up{job="mac-studio",instance="mac-studio-1"} 0' in text
    assert "prontuario_replication_check_status 2" in text


def test_missing_secret_is_a_config_error(dead_cluster, tmp_path, monkeypatch):
    monkeypatch.delenv("PRONTUARIO_TEST_PG_PASSWORD", raising=False)
    path = tmp_path / "with-secret.yaml"
    path.write_text(open(dead_cluster).read() + "secrets: {postgres_password: {env: PRONTUARIO_TEST_PG_PASSWORD}}\n")
    result = run("-i", str(path), "replication", "check")
    assert result.code == 78
    assert "PRONTUARIO_TEST_PG_PASSWORD" in result.err and result.err.count("\n") == 1


def test_help_does_not_import_the_client_libraries():
    code = (
        "import sys\n"
        "from prontuario_cli.cli.main import main\n"
        "try:\n    main(['replication', 'check', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('psycopg', 'redis', 'httpx', 'paramiko') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "HEAVY []" in out, out


def test_as_a_real_process(dead_cluster):
    result = run_process("-i", dead_cluster, "replication", "check", "--format", "nagios")
    assert result.code == 2 and result.out.startswith("PRONTUARIO CRITICAL")
