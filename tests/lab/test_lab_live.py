"""The real lab: PostgreSQL under Patroni, etcd, HAProxy, Redis + Sentinel, the cloud stand-in.

Every wait is "within N seconds"; nothing asserts on timing.
"""

from __future__ import annotations

import shutil
import signal
import socket
import time

import pytest

from prontuario_cli.connect.http import request
from prontuario_cli.errors import ProntuarioError
from prontuario_cli.lab import health
from prontuario_cli.lab.procs import alive, processes_under
from tests.helpers import poll, run

pytestmark = pytest.mark.lab


def within(seconds: float, probe, what: str):
    return poll(probe, seconds, what)


def http(method: str, url: str, body=None, timeout_s: float = 5.0):
    """(status, parsed JSON body) of one request, whatever the status."""
    answer = request(method, url, time.monotonic() + timeout_s, json_body=body, accept_status=None)
    return answer.status, (answer.json(url) if answer.body else None)


def write_server(spec, name: str) -> str:
    """The status of one server of HAProxy's write backend ("" when it is not listed)."""
    return next((s.status for s in health.haproxy_servers(spec.haproxy_socket) if (s.proxy, s.server) == ("write", name)), "")


def test_up_reaches_healthy_with_every_component_alive(lab):
    status = lab.status()
    bad = [(c.name, c.detail) for c in status.components if not (c.alive and c.healthy)]
    assert not bad, bad
    roles = {c.name: c.role for c in status.components}
    assert sorted([roles["postgres-mac-studio-1"], roles["postgres-mac-studio-2"]]) == ["primary", "replica"]
    assert roles["cloudsql-replica"] == "replica"


def test_the_lab_inventory_passes_inventory_check(lab):
    result = run("-i", str(lab.inventory_path), "inventory", "check", "--json")
    assert result.code == 0, result.err
    assert result.json()["valid"] is True


def test_status_json_parses_and_lists_every_component(lab):
    result = run("lab", "status", "--dir", str(lab.dir), "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["healthy"] is True
    names = {c["name"] for c in data["components"]}
    assert names == set(lab.components())
    for component in data["components"]:
        assert component["alive"] is True and isinstance(component["pid"], int)


def test_up_twice_is_idempotent(lab):
    before = {name: lab.pid(name) for name in lab.components()}
    result = run("lab", "up", "--dir", str(lab.dir), "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["started"] == [] and data["fresh"] is False
    assert {name: lab.pid(name) for name in lab.components()} == before


def test_writes_go_through_haproxy_to_the_primary_and_reach_the_sync_standby(lab):
    spec = lab.spec
    assert health.pg_in_recovery(spec.haproxy_write_port) is False
    assert health.pg_query(spec.haproxy_write_port, "SELECT current_database()", dbname=spec.database) == (spec.database,)
    row = health.pg_query(spec.haproxy_write_port, "SELECT sync_state FROM pg_stat_replication WHERE sync_state = 'sync'")
    assert row == ("sync",)
    # The backup (cloud) server is DOWN while the stand-in is still a replica (HAProxy
    # starts every server UP until its first checks fail: allow for that).
    within(30, lambda: write_server(spec, "cloudsql").startswith("DOWN"), "write/cloudsql DOWN")


def test_sentinels_agree_on_the_redis_primary(lab):
    spec = lab.spec
    masters = set()
    for node in ("mac-studio-1", "mac-studio-2", "witness"):
        port = spec.node_ports(node).sentinel
        assert health.sentinel_ready(port, spec.redis_master)
        info = health.sentinel_master(port, spec.redis_master)
        masters.add(f"{info['ip']}:{info['port']}")
    # One master for all three (which Mac holds it depends on the drills run before).
    redis_masters = {f"127.0.0.1:{spec.node_ports(mac).redis}" for mac in ("mac-studio-1", "mac-studio-2")}
    assert len(masters) == 1 and masters.pop() in redis_masters


def test_logs_prints_the_end_of_a_log(lab):
    result = run("lab", "logs", "haproxy", "--dir", str(lab.dir), "--lines", "5")
    assert result.code == 0, result.err
    assert 0 < len(result.out.splitlines()) <= 5
    assert str(lab.log("haproxy")) in result.err
    assert run("lab", "logs", "no-such-thing", "--dir", str(lab.dir)).code == 64


def test_down_purge_without_yes_refuses_and_stops_nothing(lab):
    before = lab.pid("etcd-witness")
    result = run("lab", "down", "--dir", str(lab.dir), "--purge")
    assert result.code == 64 and "needs confirmation" in result.err
    assert lab.pid("etcd-witness") == before and alive(before)


def test_standin_api_answers_like_cloud_sql(lab):
    spec = lab.spec
    base = f"http://127.0.0.1:{spec.standin_api_port}/v1/projects/{spec.project}"
    for name in (spec.sql_instance, spec.drill_instance):
        data = health.http_json(f"{base}/instances/{name}")
        assert data["name"] == name and data["state"] == "RUNNABLE"
        assert data["instanceType"] == "READ_REPLICA_INSTANCE" and data["databaseVersion"] == "POSTGRES_15"
        assert data["masterInstanceName"] == f"{spec.scope}-macs" and data["ipAddresses"]
        assert data["replicaConfiguration"]["kind"] == "sql#replicaConfiguration"
    source = health.http_json(f"{base}/instances/{spec.scope}-macs")
    assert source["instanceType"] == "ON_PREMISES_INSTANCE"
    assert source["onPremisesConfiguration"]["hostPort"] == f"127.0.0.1:{spec.haproxy_write_port}"
    status, body = http("GET", f"{base}/instances/nope")
    assert status == 404 and body["error"]["status"] == "NOT_FOUND"
    status, body = http("GET", f"{base}/operations/0000")
    assert status == 404 and body["error"]["code"] == 404


def test_standin_faults_are_injected_and_counted(lab):
    spec = lab.spec
    api = f"http://127.0.0.1:{spec.standin_api_port}"
    url = f"{api}/v1/projects/{spec.project}/instances/{spec.sql_instance}"
    status, _ = http("POST", f"{api}/_standin/fault", {"status": 403, "count": 2})
    assert status == 200
    try:
        assert health.http_status(url) == 403
        status, body = http("GET", url)
        assert status == 403 and body["error"]["status"] == "PERMISSION_DENIED"
        assert health.http_status(url) == 200, "the fault must stop after count requests"
        assert health.http_status(f"{api}/health") == 503, "faults never touch the HAProxy check"
    finally:
        http("DELETE", f"{api}/_standin/fault")


def test_promote_replica_really_promotes_then_rebuild_restores_the_replica(lab):
    spec = lab.spec
    api = f"http://127.0.0.1:{spec.standin_api_port}"
    base = f"{api}/v1/projects/{spec.project}"
    status, op = http("POST", f"{base}/instances/{spec.drill_instance}/promoteReplica")
    assert status == 200, op
    assert op["kind"] == "sql#operation" and op["operationType"] == "PROMOTE_REPLICA" and op["status"] in ("PENDING", "RUNNING")
    assert op["targetId"] == spec.drill_instance and op["selfLink"].endswith(f"/operations/{op['name']}")
    try:
        done = within(60, lambda: (health.http_json(f"{base}/operations/{op['name']}") or {}).get("status") == "DONE", "operation DONE")
        assert done
        final = health.http_json(f"{base}/operations/{op['name']}")
        assert "error" not in final, final
        assert health.standin_subscription(spec.standin_pg_port, spec.database, "cloudsql") is None  # no subscription left
        assert health.http_status(f"{api}/health") == 200
        assert health.http_json(f"{base}/instances/{spec.drill_instance}")["instanceType"] == "CLOUD_SQL_INSTANCE"
        status, body = http("POST", f"{base}/instances/{spec.drill_instance}/promoteReplica")
        assert status == 400 and body["error"]["code"] == 400
        # HAProxy marks the backup UP only now, after the real promotion; the primary still takes writes.
        within(30, lambda: write_server(spec, "cloudsql").startswith("UP"), "backup UP")
        assert health.pg_in_recovery(spec.haproxy_write_port) is False
    finally:
        lab.rebuild_standin()
    within(60, lambda: health.standin_replicating(spec.standin_pg_port, spec.database, "cloudsql"), "stand-in replicating again")
    assert health.http_status(f"{api}/health") == 503


def _sql(port: int, query: str, params=()):
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="prontuario", autocommit=True, connect_timeout=3) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def _write(spec, run_id: str, seq: int) -> bool:
    """One row through HAProxy's write frontend; True when acknowledged by a primary."""
    try:
        _sql(spec.haproxy_write_port, "INSERT INTO prontuario_drill.writes (run_id, seq) VALUES (%s, %s)", (run_id, seq))
    except Exception:  # noqa: BLE001 - a refused or broken write is retried with the next seq
        return False
    return True


def _on_standin(spec, run_id: str) -> list[int]:
    try:
        return [row[0] for row in _sql(spec.standin_pg_port, "SELECT seq FROM prontuario_drill.writes WHERE run_id = %s ORDER BY seq", (run_id,))]
    except Exception:  # noqa: BLE001 - not answering yet counts as nothing there
        return []


def test_a_write_through_haproxy_reaches_the_standin_by_logical_replication(lab):
    spec = lab.spec
    run_id = f"lab-{time.time_ns()}"
    assert _write(spec, run_id, 1)
    within(30, lambda: _on_standin(spec, run_id) == [1], "the row on the stand-in")
    # A logical subscriber: read-write all along, its subscription replicating.
    assert health.pg_in_recovery(spec.standin_pg_port) is False
    assert health.standin_subscription(spec.standin_pg_port, spec.database, "cloudsql") == "replicating"
    assert health.http_status(health.lab_url(spec.standin_api_port, "/health")) == 503
    slots = _sql(spec.haproxy_write_port, "SELECT slot_name, plugin, active FROM pg_replication_slots WHERE slot_type = 'logical'")
    assert slots == [("pgl_prontuario_onprem_cloudsql", "pglogical_output", True)]


def test_patching_the_source_hostport_repoints_the_subscription(lab):
    spec = lab.spec
    base = f"http://127.0.0.1:{spec.standin_api_port}/v1/projects/{spec.project}"
    source = f"{base}/instances/{spec.scope}-macs"
    leader = next(n for n in ("mac-studio-1", "mac-studio-2") if health.pg_in_recovery(spec.node_ports(n).postgresql) is False)
    direct, frontend = f"127.0.0.1:{spec.node_ports(leader).postgresql}", f"127.0.0.1:{spec.haproxy_write_port}"
    try:
        for target in (direct, frontend):
            status, op = http("PATCH", source, {"onPremisesConfiguration": {"hostPort": target}})
            assert status == 200 and op["operationType"] == "UPDATE", op
            within(30, lambda o=op: (health.http_json(f"{base}/operations/{o['name']}") or {}).get("status") == "DONE", "patch DONE")
            assert "error" not in health.http_json(f"{base}/operations/{op['name']}")
            assert health.http_json(source)["onPremisesConfiguration"]["hostPort"] == target
            run_id = f"patch-{time.time_ns()}"
            within(30, lambda r=run_id: _write(spec, r, 1) or True, "a write")
            within(60, lambda r=run_id: _on_standin(spec, r) == [1], f"a row through {target}")
        status, body = http("PATCH", f"{base}/instances/{spec.sql_instance}", {"onPremisesConfiguration": {"hostPort": direct}})
        assert status == 400 and body["error"]["code"] == 400
    finally:
        http("PATCH", source, {"onPremisesConfiguration": {"hostPort": frontend}})
        within(30, lambda: health.http_json(source)["onPremisesConfiguration"]["hostPort"] == frontend, "source back on HAProxy")


@pytest.mark.parametrize("mode", ["switchover", "kill"])
def test_the_standin_follows_the_new_primary_within_the_rpo_target(lab, mode):
    """After a switchover and after a kill failover, a row written after it reaches the
    stand-in within the 60 s RPO target, and no row arrives twice."""
    import subprocess

    from prontuario_cli.lab import ready

    spec = lab.spec
    # Settled: a sync standby Patroni may promote, the subscription replicating.
    within(180, lambda: ready.gaps(spec) == [] or None, "lab settled before the failover")
    old = next(n for n in ("mac-studio-1", "mac-studio-2") if health.pg_in_recovery(spec.node_ports(n).postgresql) is False)
    new = "mac-studio-2" if old == "mac-studio-1" else "mac-studio-1"
    run_id = f"{mode}-{time.time_ns()}"
    seqs = iter(range(1, 100000))
    acked = [s for s in (next(seqs) for _ in range(20)) if _write(spec, run_id, s)]
    assert acked
    try:
        if mode == "switchover":
            config = str(spec.sub("patroni", f"{old}.yml"))
            argv = [spec.binaries.patronictl, "-c", config, "switchover", "--leader", old, "--candidate", new, "--force"]
            subprocess.run(argv, check=True, capture_output=True, timeout=60)
        else:
            lab.kill_node(old, signal.SIGKILL)

        def written_on_new():
            seq = next(seqs)
            if _write(spec, run_id, seq) and health.pg_in_recovery(spec.node_ports(new).postgresql) is False:
                acked.append(seq)
                return seq
            return None

        after = within(90, written_on_new, f"a write acknowledged by {new}")
        within(60, lambda: after in _on_standin(spec, run_id), f"the row written after the {mode} on the stand-in")
    finally:
        if mode == "kill":
            lab.start(f"patroni-{old}")
    rows = _sql(spec.standin_pg_port, "SELECT seq, count(*) FROM prontuario_drill.writes WHERE run_id = %s GROUP BY seq HAVING count(*) > 1", (run_id,))
    assert rows == [], f"duplicated on the stand-in: {rows}"
    assert set(acked) <= set(_on_standin(spec, run_id))
    within(180, lambda: ready.gaps(spec) == [] or None, "lab settled again")


def test_kill_node_fails_over_and_start_brings_it_back(lab):
    spec = lab.spec
    old = next(n for n in ("mac-studio-1", "mac-studio-2") if health.pg_in_recovery(spec.node_ports(n).postgresql) is False)
    new = "mac-studio-2" if old == "mac-studio-1" else "mac-studio-1"
    patroni, postmaster = lab.pid(f"patroni-{old}"), lab.pid(f"postgres-{old}")
    killed = lab.kill_node(old, signal.SIGKILL)
    try:
        # Patroni, the postmaster and every backend, as a lost machine would lose them.
        assert patroni in killed and postmaster in killed, killed
        within(10, lambda: not any(alive(p) for p in killed), "killed node gone")
        within(90, lambda: health.pg_in_recovery(spec.node_ports(new).postgresql) is False, f"{new} promoted")
    finally:
        lab.start(f"patroni-{old}")  # whatever happened, the next test finds the node running
    within(120, lambda: health.http_status(health.lab_url(spec.node_ports(old).patroni, "/sync")) == 200, f"{old} back as sync standby")
    within(60, lambda: lab.status().healthy, "lab healthy again")


def test_down_stops_every_recorded_pid_and_up_restarts_on_the_kept_data(lab):
    pids = {name: lab.pid(name) for name in lab.components()}
    assert all(pids.values()), pids
    report = lab.down()
    assert report.left_running == ()
    assert [name for name, pid in pids.items() if alive(pid)] == []
    assert processes_under(lab.dir) == []
    assert run("lab", "status", "--dir", str(lab.dir), "--json").code == 2
    report = lab.up()
    assert report.fresh is False and report.status.healthy
    assert health.pg_query(lab.spec.haproxy_write_port, "SELECT 1", dbname=lab.spec.database) == (1,)


# --------------------------------------------------------------------------- start failures


@pytest.fixture()
def scratch_lab():
    """A second, separate lab directory (its own base port) for start-failure tests."""
    from prontuario_cli.lab import Lab
    from tests.conftest import lab_prerequisites_missing

    reason = lab_prerequisites_missing()
    if reason:  # the lab is part of what is tested: never skip it silently
        pytest.fail(f"the lab cannot run here: {reason}")
    from tests.conftest import LAB_BASE_PORT

    base_port = LAB_BASE_PORT + 200  # next to the session lab's ports, never inside them
    path = f"/tmp/prontuario-test-lab-{base_port}"
    shutil.rmtree(path, ignore_errors=True)
    labs = []

    def make(**kw):
        instance = Lab(path, base_port=base_port, say=lambda text: None, **kw)
        labs.append(instance)
        return instance

    yield make
    for instance in labs:
        instance.down(purge=True)
    shutil.rmtree(path, ignore_errors=True)
    assert processes_under_path(path) == []


def processes_under_path(path):
    from pathlib import Path

    return processes_under(Path(path)) if Path(path).exists() else []


def test_a_bad_binary_is_named_with_its_log(scratch_lab):
    import dataclasses

    from prontuario_cli.lab.spec import Binaries

    bad = scratch_lab(binaries=dataclasses.replace(Binaries.default(), etcd="/nonexistent/etcd"))
    with pytest.raises(ProntuarioError) as caught:
        bad.up()
    message = caught.value.one_line()
    assert "etcd-mac-studio-1" in message and str(bad.spec.log_dir / "etcd-mac-studio-1.log") in message


def test_an_occupied_port_is_named_with_the_component_and_its_log(scratch_lab):
    instance = scratch_lab()
    port = instance.spec.node_ports("mac-studio-1").etcd_client
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen(1)
        with pytest.raises(ProntuarioError) as caught:
            instance.up()
    message = caught.value.one_line()
    assert "etcd-mac-studio-1" in message
    assert str(instance.spec.log_dir / "etcd-mac-studio-1.log") in message
    assert int(caught.value.exit_code) in (20, 69)


# --------------------------------------------------------------------------- settled


def test_up_returns_only_when_replication_check_says_ok(scratch_lab):
    """`lab up && prontuario replication check` must not warn: a fresh seed lab (the brief's
    5 s checks), then again after HAProxy lost its read servers (they must rise again)."""
    from prontuario_cli import replication
    from prontuario_cli.connect.haproxy import runtime_command
    from prontuario_cli.inventory import load_inventory
    from prontuario_cli.report import Status

    instance = scratch_lab(profile="seed")
    instance.up()
    inventory = load_inventory(str(instance.inventory_path))
    report = replication.check(inventory)
    assert report.status == Status.OK, [p.message for p in report.problems]

    sock = str(instance.spec.haproxy_socket)
    for node in ("mac-studio-1", "mac-studio-2"):
        runtime_command(sock, f"set server read/{node} health down", time.monotonic() + 5)
    assert not [s for s in health.haproxy_servers(instance.spec.haproxy_socket) if s.proxy == "read" and s.up]
    instance.up()  # idempotent: starts nothing, but waits until the read servers are UP again
    report = replication.check(inventory)
    assert report.status == Status.OK, [p.message for p in report.problems]


def test_up_puts_back_a_safety_setting_the_cluster_lost(lab):
    """bootstrap.dcs only applies at initialisation: a lab whose failsafe_mode is off (made
    before it was rendered, or switched off by hand) gets it back from the next 'lab up'."""
    leader = next(node for node in ("mac-studio-1", "mac-studio-2") if health.http_status(health.patroni_url(lab.spec, node, "/primary")) == 200)
    assert health.patch_config(lab.spec, leader, {"failsafe_mode": False}) is None
    within(10, lambda: health.http_json(health.patroni_url(lab.spec, leader, "/config")).get("failsafe_mode") is False, "failsafe_mode off")
    lab.up()
    assert health.http_json(health.patroni_url(lab.spec, leader, "/config")).get("failsafe_mode") is True
