"""The cloud fallback against a real lab: refusal, promote (through a 409 and an
interruption, promoteReplica accepted exactly once), failback with every emergency
write kept, and --force fencing a live primary.

These tests kill and promote things, so the module runs its own lab (base port 26000,
torn down by PID at the end) instead of the session's shared one. They run in order
and each leaves the lab in the state the next one starts from.
"""

from __future__ import annotations

import os
import json
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import LAB_BASE_PORT
from tests.helpers import poll, run

pytestmark = pytest.mark.lab

BASE_PORT = LAB_BASE_PORT + 1000  # 26000 beside the session lab at its default 25000
LAB_DIR = f"/tmp/prontuario-test-gcp-{BASE_PORT}"
STATE = Path(LAB_DIR) / "state"
EVENTS = Path(LAB_DIR) / "notify-events.jsonl"
MACS = ("mac-studio-1", "mac-studio-2")


@pytest.fixture(scope="module")
def gcp_lab():
    import yaml

    from prontuario_cli.lab import Lab
    from prontuario_cli.lab.procs import alive
    from tests.conftest import lab_prerequisites_missing

    reason = lab_prerequisites_missing()
    if reason:  # the lab is part of what is tested: never skip it silently
        pytest.fail(f"the lab cannot run here: {reason}")
    shutil.rmtree(LAB_DIR, ignore_errors=True)
    lab = Lab(LAB_DIR, base_port=BASE_PORT, profile="fast", say=lambda text: None)
    try:
        lab.up()
        data = yaml.safe_load(lab.inventory_path.read_text())
        script = Path(LAB_DIR) / "notify.py"
        script.write_text(f"import sys\nwith open({str(EVENTS)!r}, 'a') as fh:\n    fh.write(sys.stdin.read() + '\\n')\nprint('told everyone')\n")
        data["cloud"]["notify_command"] = [sys.executable, str(script)]
        inventory = Path(LAB_DIR) / "gcp-test.yaml"
        inventory.write_text(yaml.safe_dump(data, sort_keys=False))
        lab.gcp_inventory = inventory
        yield lab
    finally:
        pids = [p for p in (lab.pid(name) for name in lab.components()) if p]
        lab.down(purge=True)
        left = [pid for pid in pids if alive(pid)]
        assert not left, f"lab processes still alive after down: {left}"


@pytest.fixture
def lab(gcp_lab, monkeypatch):
    """The module's lab, with the state dir and audit log kept across its tests."""
    monkeypatch.setenv("PRONTUARIO_STATE_DIR", str(STATE))
    monkeypatch.setenv("PRONTUARIO_AUDIT_LOG", str(STATE / "audit.jsonl"))
    return gcp_lab


# --------------------------------------------------------------------------- helpers


def gcp(lab, *args: str):
    return run("-i", str(lab.gcp_inventory), "gcp", *args)


def api(lab, method: str, path: str, body: dict | None = None) -> dict:
    import httpx

    response = httpx.request(method, f"http://127.0.0.1:{lab.spec.standin_api_port}{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def promote_calls(lab, since: int) -> dict[str, int]:
    """promoteReplica requests in the stand-in's log after byte ``since``, by HTTP status."""
    text = lab.log("cloudsql-api").read_bytes()[since:].decode(errors="replace")
    counts: dict[str, int] = {}
    for match in re.finditer(r'"POST /v1/projects/[^/]+/instances/[^/]+/promoteReplica HTTP/1\.[01]" (\d{3})', text):
        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


def sql(port: int, query: str, params=(), dbname: str = "prontuario"):
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname, autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def write_rows(lab, n: int, tag: str) -> int:
    """n rows through HAProxy's write frontend; returns the server port that took them."""
    port = lab.spec.haproxy_write_port
    sql(port, "CREATE TABLE IF NOT EXISTS clinical_notes (id bigserial PRIMARY KEY, tag text, at timestamptz DEFAULT now())")
    for _ in range(n):
        sql(port, "INSERT INTO clinical_notes (tag) VALUES (%s)", (tag,))
    return sql(port, "SELECT inet_server_port()")[0][0]


def writers(lab) -> list[str]:
    from prontuario_cli.connect.haproxy import parse_haproxy_stat, runtime_command

    text = runtime_command(str(lab.spec.haproxy_socket), "show stat", time.monotonic() + 3)
    servers = [s for s in parse_haproxy_stat(text) if s.proxy == "write"]
    active = [s.server for s in servers if s.up and not s.backup]
    return active or [s.server for s in servers if s.up]


def macs_down(lab) -> bool:
    from prontuario_cli.gcp.macs import mac_health
    from prontuario_cli.inventory import load_inventory

    return not any(h.reachable for h in mac_health(load_inventory(lab.gcp_inventory)))


def replication_ok(lab) -> bool:
    return run("-i", str(lab.gcp_inventory), "replication", "check", "--json").code == 0


def audit_commands() -> list[str]:
    return [json.loads(line)["command"] for line in (STATE / "audit.jsonl").read_text().splitlines() if line.strip()]


def events() -> list[dict]:
    return [json.loads(line) for line in EVENTS.read_text().splitlines() if line.strip()] if EVENTS.exists() else []


def metric(lab) -> str:
    path = Path(LAB_DIR) / "metrics" / "prontuario.prom"
    return next(line for line in path.read_text().splitlines() if line.startswith("gcp_fallback_active "))


# --------------------------------------------------------------------------- tests


def test_status_on_a_healthy_lab_and_a_permission_error(lab):
    result = gcp(lab, "status", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["replica"] is True and data["in_recovery"] is True and data["fallback_active"] is False
    assert data["credential"] == "anonymous (lab stand-in)" and len(data["write_servers"]) == 1
    # It follows through pglogical, and the slot on the Mac primary says how far behind.
    assert data["logical"] is True and data["receiver_status"] == "replicating"
    slot = data["slot"]
    assert slot["present"] and slot["name"] == "pgl_prontuario_onprem_cloudsql" and slot["active"] is True
    assert slot["behind_bytes"] is not None and slot["behind_bytes"] >= 0 and slot["confirmed_flush_lsn"]
    table = gcp(lab, "status", "--format", "table")
    assert "slot on the Macs" in table.out and "pgl_prontuario_onprem_cloudsql, active" in table.out, table.out
    api(lab, "POST", "/_standin/fault", {"status": 403, "path_contains": "/instances/", "count": 1})
    result = gcp(lab, "status", "--json")
    assert result.code == 77, result.err
    assert "cloudsql.instances.get" in result.err and "permission denied (403)" in result.err


def test_promote_is_refused_while_a_mac_primary_is_up(lab):
    before = writers(lab)
    result = gcp(lab, "promote", "--reason", "test: refusal", "--yes")
    assert result.code == 14, result.err
    # A healthy primary taking writes: said before any plan, never answered with --force.
    assert "is the primary and answers" in result.err and "--force" not in result.err
    assert "plan:" not in result.err and "maintenance" not in result.err
    entries = [json.loads(line) for line in Path(os.environ["PRONTUARIO_AUDIT_LOG"]).read_text().splitlines()]
    promote = [e for e in entries if e["command"].startswith("gcp promote")]
    outcomes = [e for e in promote if e["phase"] == "outcome"]
    # Written ahead: every outcome has its intent, under the same id; all of them refused.
    assert outcomes and sorted(e["id"] for e in promote if e["phase"] == "intent") == sorted(e["id"] for e in outcomes)
    assert {e["outcome"] for e in outcomes} == {"refused"} and {e["exit_code"] for e in outcomes} == {14}
    assert api(lab, "GET", "/_standin/state")["replica"] is True  # nothing was promoted
    assert not list(STATE.glob("gcp-promote-*.json")) and not (STATE / "gcp-fallback.json").exists()
    assert writers(lab) == before and before[0] in MACS  # HAProxy untouched


def test_promote_end_to_end_through_a_409_and_an_interruption(lab):
    from prontuario_cli.gcp.promote import Promotion
    from prontuario_cli.inventory import load_inventory
    from prontuario_cli.runbook.engine import Interrupted

    log_start = lab.log("cloudsql-api").stat().st_size
    port = write_rows(lab, 20, "before")
    assert port in (lab.spec.node_ports(m).postgresql for m in MACS)
    for node in MACS:
        lab.kill_node(node, signal.SIGKILL)
    poll(lambda: macs_down(lab), 30, "both Macs down")

    # 1. Google answers 409: a clear message, and nothing recorded as sent.
    api(lab, "POST", "/_standin/fault", {"status": 409, "path_contains": "promoteReplica", "count": 1})
    result = gcp(lab, "promote", "--reason", "test: both Macs lost", "--yes")
    assert result.code == 75, result.err
    assert "another operation is already running" in result.err
    journal = json.loads((STATE / "gcp-promote-prontuario-lab-replica.json").read_text())
    assert journal["promote"]["status"] == "not sent"

    # 2. Interrupted right after promoteReplica was accepted (the rehearsal hook).
    with pytest.raises(Interrupted, match="stopped after promote"):
        Promotion(load_inventory(lab.gcp_inventory), stop_after="promote").run(resume=True)
    journal = json.loads((STATE / "gcp-promote-prontuario-lab-replica.json").read_text())
    assert journal["promote"]["status"] == "sent" and not journal.get("completed_at")

    # 3. Resumed: polls the same operation, never sends promoteReplica again.
    result = gcp(lab, "promote", "--resume", "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["completed"] and report["operation"] == journal["promote"]["operation"]
    statuses = {s["step"]: s["status"] for s in report["steps"]}
    assert statuses["promote"] == "already done" and statuses["wait-operation"] == "done" and statuses["notify"] == "done"
    assert promote_calls(lab, log_start) == {"409": 1, "200": 1}
    assert report["rto_s"] is not None and report["rto_s"] < report["rto_target_s"] == 300
    assert report["rpo_s"] is not None and report["rpo_s"] < report["rpo_target_s"] == 60
    print(f"\nlab promote: RTO {report['rto_s']} s ({report['rto_from']}), RPO bound {report['rpo_s']} s")

    # Emergency mode is on, everywhere it should be.
    assert api(lab, "GET", "/_standin/state")["replica"] is False
    assert writers(lab) == ["cloudsql"]
    assert write_rows(lab, 10, "emergency") == lab.spec.standin_pg_port
    assert json.loads((STATE / "gcp-fallback.json").read_text())["active"] is True
    assert metric(lab) == "gcp_fallback_active 1"
    assert events()[-1]["event"] == "emergency-mode-on" and events()[-1]["reason"] == "test: both Macs lost"
    commands = audit_commands()
    for step in ("check-macs", "fence-routing", "check-instance", "measure-lag", "promote", "wait-operation", "verify-write", "route-writes", "set-flag", "notify"):
        assert f"gcp promote: {step}" in commands
    status = gcp(lab, "status", "--json").json()
    assert status["fallback_active"] and status["write_servers"] == ["cloudsql"] and status["in_recovery"] is False


def test_failback_brings_every_emergency_write_back_to_the_macs(lab):
    result = gcp(lab, "failback", "--yes", "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["completed"] and report["kept_database"].startswith("prontuario_before_failback_")
    port = lab.spec.haproxy_write_port
    server = sql(port, "SELECT inet_server_port()")[0][0]
    assert server in (lab.spec.node_ports(m).postgresql for m in MACS)
    counts = dict(sql(port, "SELECT tag, count(*) FROM clinical_notes GROUP BY tag"))
    assert counts == {"before": 20, "emergency": 10}
    assert sql(port, "SELECT count(*) FROM prontuario_emergency_checks")[0][0] >= 3  # promote x2, failback x1
    assert json.loads((STATE / "gcp-fallback.json").read_text())["active"] is False
    assert metric(lab) == "gcp_fallback_active 0"
    assert events()[-1]["event"] == "emergency-mode-off"
    assert api(lab, "GET", "/_standin/state")["replica"] is True  # the cloud replica is back
    rebuilt = next(s for s in report["steps"] if s["step"] == "rebuild-replica")
    assert "follows the Macs again (a write made via" in json.dumps(rebuilt), rebuilt  # proven with a row
    assert "cloudsql" not in writers(lab)
    assert not list(STATE.glob("gcp-*-prontuario-lab-replica.json"))  # journals archived
    poll(lambda: replication_ok(lab), 90, "replication check OK after failback")
    assert "cloudsql" not in writers(lab)  # the guarded backup stays out while it is a replica


def test_force_fences_a_live_primary_before_promoting(lab):
    poll(lambda: replication_ok(lab), 90, "a healthy lab")
    result = gcp(lab, "promote", "--reason", "test: fence", "--force", "--yes", "--json")
    assert result.code == 0, result.err
    report = result.json()
    fence = next(s for s in report["steps"] if s["step"] == "fence-nodes")
    assert fence["status"] == "done"
    assert not any(lab.alive(f"patroni-{m}") or lab.alive(f"postgres-{m}") for m in MACS)
    assert writers(lab) == ["cloudsql"]
    # Back to normal for whatever runs next.
    result = gcp(lab, "failback", "--yes", "--json")
    assert result.code == 0, result.err
    poll(lambda: replication_ok(lab), 90, "replication check OK after the second failback")
