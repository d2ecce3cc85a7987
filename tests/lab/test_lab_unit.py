"""The lab's pure parts: ports, rendered configs, the lab inventory, /proc parsing, the stand-in's errors,
and the probes' "not ready yet" answers and the lab's wait error (no lab needed)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prontuario_cli.inventory import parse_inventory
from prontuario_cli.lab import config
from prontuario_cli.lab.components import component_names, components
from prontuario_cli.lab.spec import MACS, NODE_NAMES, PROFILES, LabSpec
from tests.helpers import poll


def all_ports(spec: LabSpec) -> list[int]:
    ports = []
    for node in NODE_NAMES:
        ports += [v for v in dataclasses.asdict(spec.node_ports(node)).values() if v is not None]
    ports += [spec.haproxy_write_port, spec.haproxy_read_port, spec.haproxy_stats_port, spec.standin_pg_port, spec.standin_api_port]
    return ports


def test_every_port_is_distinct_and_derived_from_the_base_port():
    a, b = LabSpec(dir="/x", base_port=15000), LabSpec(dir="/y", base_port=16000)
    assert len(set(all_ports(a))) == len(all_ports(a)) == 20
    assert not set(all_ports(a)) & set(all_ports(b)), "two labs on different base ports must not share a port"
    assert all(15000 <= p < 15100 for p in all_ports(a))


def test_unknown_profile_and_bad_base_port_are_config_errors():
    from prontuario_cli.errors import ConfigError

    with pytest.raises(ConfigError):
        LabSpec(dir="/x", profile="turbo")
    with pytest.raises(ConfigError):
        LabSpec(dir="/x", base_port=80)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_lab_inventory_validates_and_carries_the_profile(profile):
    spec = LabSpec(dir="/srv/lab", profile=profile, base_port=15500)
    inv = parse_inventory(config.cluster_yaml(spec), "lab/cluster.yaml")
    t = PROFILES[profile]
    assert [n.name for n in inv.nodes] == list(NODE_NAMES)
    assert inv.primary.name == "mac-studio-1" and not inv.warnings
    assert (inv.health_checks.interval_s, inv.health_checks.timeout_s, inv.health_checks.fall, inv.health_checks.rise) == (
        t.inter_s, t.timeout_s, t.fall, t.rise,
    )  # fmt: skip
    assert (inv.health_checks.fastinter_s, inv.health_checks.downinter_s) == (t.fastinter_s, t.downinter_s)
    assert inv.cloud.api_base_url == f"http://127.0.0.1:{spec.standin_api_port}"
    assert inv.cloud.haproxy_backup_port == spec.standin_api_port
    assert inv.cloud.data.port == spec.standin_pg_port
    assert inv.lab.dir == "/srv/lab"
    assert inv.paths.state_dir.startswith("/srv/lab/")
    assert inv.node("mac-studio-1").ports.haproxy_write == spec.haproxy_write_port


def test_lab_inventory_names_its_own_audit_log_beside_the_lab_dir(monkeypatch):
    """Resolved without $PRONTUARIO_AUDIT_LOG (it overrides the inventory, and conftest sets it)."""
    from pathlib import Path

    from prontuario_cli.paths import audit_log_path

    spec = LabSpec(dir="/srv/lab", base_port=15500)
    inv = parse_inventory(config.cluster_yaml(spec), "lab/cluster.yaml")
    # Beside the directory, not in it: lab down --purge deletes the directory.
    assert inv.paths.audit_log == "/srv/lab-audit.jsonl"
    monkeypatch.delenv("PRONTUARIO_AUDIT_LOG", raising=False)
    for state_env in ("/elsewhere/state", None):  # with and without a state dir override
        if state_env:
            monkeypatch.setenv("PRONTUARIO_STATE_DIR", state_env)
        else:
            monkeypatch.delenv("PRONTUARIO_STATE_DIR", raising=False)
        assert audit_log_path(inv) == Path("/srv/lab-audit.jsonl")
        assert audit_log_path(inv) != audit_log_path(None), "the lab must not share the default audit log"


@pytest.mark.parametrize("command", [("lab", "up", "--dry-run"), ("drill", "failover", "--mode", "kill", "--dry-run")])
def test_lab_commands_audit_into_the_lab_audit_log_not_the_default(tmp_path, monkeypatch, command):
    import json

    from prontuario_cli.paths import audit_log_path
    from tests.helpers import run

    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    spec = LabSpec(dir=str(lab_dir), base_port=15500)
    (lab_dir / "cluster.yaml").write_text(config.cluster_yaml(spec))
    # Let the inventory decide; the default (no inventory) then stays inside this test's
    # state dir, standing in for /var/log/prontuario/audit.jsonl.
    monkeypatch.delenv("PRONTUARIO_AUDIT_LOG", raising=False)
    default = audit_log_path(None)
    result = run("-i", str(lab_dir / "cluster.yaml"), *command, "--json")
    assert result.code == 0, result.err
    assert not default.exists(), f"a lab command wrote to the default audit log {default}"
    entries = [e for e in map(json.loads, (tmp_path / "lab-audit.jsonl").read_text().splitlines()) if "outcome" in e]
    assert [(e["command"], e["outcome"]) for e in entries] == [(" ".join(command[:2]), "dry-run")]


def test_lab_lifecycle_commands_without_an_inventory_audit_into_the_lab_log(tmp_path, monkeypatch):
    """lab up/down/install given only --dir (or nothing) must not fall back to the machine's log."""
    import json

    from prontuario_cli.paths import audit_log_path
    from tests.helpers import run

    monkeypatch.delenv("PRONTUARIO_AUDIT_LOG", raising=False)
    monkeypatch.delenv("PRONTUARIO_INVENTORY", raising=False)
    monkeypatch.setenv("PRONTUARIO_STATE_DIR", str(tmp_path / "state"))  # default lab dir: <state>/lab
    default = audit_log_path(None)
    lab_dir = tmp_path / "elsewhere" / "lab"
    for argv in (("lab", "up", "--dir", str(lab_dir), "--dry-run"), ("lab", "down", "--dir", str(lab_dir), "--dry-run")):
        result = run(*argv, "--json")
        assert result.code == 0, result.err
    result = run("lab", "install", "--dry-run", "--json")
    assert result.code == 0, result.err
    assert not default.exists(), f"a lab command wrote to the default audit log {default}"
    beside = [json.loads(line)["command"] for line in (tmp_path / "elsewhere" / "lab-audit.jsonl").read_text().splitlines() if '"outcome"' in line]
    assert beside == ["lab up", "lab down"]
    default_lab = [json.loads(line)["command"] for line in (tmp_path / "state" / "lab-audit.jsonl").read_text().splitlines() if '"outcome"' in line]
    assert default_lab == ["lab install"]
    # $PRONTUARIO_AUDIT_LOG still wins over the lab's own log.
    monkeypatch.setenv("PRONTUARIO_AUDIT_LOG", str(tmp_path / "forced.jsonl"))
    assert run("lab", "up", "--dir", str(lab_dir), "--dry-run", "--json").code == 0
    assert [json.loads(line)["command"] for line in (tmp_path / "forced.jsonl").read_text().splitlines() if '"outcome"' in line] == ["lab up"]


def test_seed_profile_meets_the_brief_and_patroni_rule():
    seed = PROFILES["seed"]
    # The brief's checks for a healthy server: every 5 s, timeout 2 s, 3 failures.
    assert (seed.inter_s, seed.timeout_s, seed.fall) == (5.0, 2.0, 3)
    # HAProxy's own faster checks only while a server changes state or is down.
    assert seed.fastinter_s is not None and seed.fastinter_s < seed.inter_s
    assert seed.downinter_s is not None and seed.downinter_s < seed.inter_s
    for profile in PROFILES.values():
        assert profile.ttl >= 20, "Patroni 4.1.5 raises ttl below 20 s anyway"
        assert profile.loop_wait + 2 * profile.retry_timeout <= profile.ttl


def test_patroni_config_has_the_safety_settings():
    spec = LabSpec(dir="/srv/lab")
    cfg = config.patroni_config(spec, "mac-studio-2")
    dcs = cfg["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True
    # An etcd quorum loss must not demote a healthy primary (the same setting bootstrap renders).
    assert dcs["failsafe_mode"] is True
    assert dcs["postgresql"]["use_pg_rewind"] and dcs["postgresql"]["use_slots"]
    assert dcs["postgresql"]["parameters"]["wal_log_hints"] == "on"
    assert cfg["restapi"]["listen"].startswith("127.0.0.1:")
    assert cfg["postgresql"]["parameters"]["unix_socket_directories"] == str(spec.pg_socket_dir("mac-studio-2"))
    assert cfg["etcd3"]["hosts"] == spec.etcd_hosts
    yaml.safe_load(config.patroni_yaml(spec, "mac-studio-2"))


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_haproxy_config_is_valid_and_routes_by_patroni(tmp_path, profile):
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(haproxy):  # validating the real config is the point: never skip it
        pytest.fail(f"{haproxy} is not installed: run ./install.sh (or apt-get install --no-install-recommends haproxy)")
    spec = LabSpec(dir=str(tmp_path), profile=profile)
    text = config.haproxy_cfg(spec)
    for needle in (
        "option httpchk",
        "http-check send meth GET uri /primary",
        "http-check send meth GET uri /replica",
        "on-marked-down shutdown-sessions",
        "on-marked-up shutdown-backup-sessions",
        "option redispatch",
        f"stats socket {spec.haproxy_socket} mode 600 level admin",
        f"backup check port {spec.standin_api_port}",
    ):
        assert needle in text
    for node in MACS:
        assert f"check port {spec.node_ports(node).patroni}" in text
    t = PROFILES[profile]
    from prontuario_cli.render.common import seconds

    assert f"default-server inter {seconds(t.inter_s)} fastinter {seconds(t.fastinter_s)} downinter {seconds(t.downinter_s)} fall {t.fall} rise {t.rise}" in text
    assert f"timeout check {seconds(t.timeout_s)}" in text
    if profile == "seed":
        assert "inter 5s " in text and "fall 3" in text and "timeout check 2s" in text
    (tmp_path / "haproxy").mkdir()
    (tmp_path / "haproxy" / "haproxy.cfg").write_text(text)
    result = subprocess.run(config.haproxy_argv(spec, check_only=True), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_redis_and_sentinel_configs():
    spec = LabSpec(dir="/srv/lab", profile="fast")
    primary = spec.node_ports("mac-studio-1").redis
    assert "replicaof" not in config.redis_conf(spec, "mac-studio-1")
    assert f"replicaof 127.0.0.1 {primary}" in config.redis_conf(spec, "mac-studio-2")
    assert "repl-diskless-sync-delay 0" in config.redis_conf(spec, "mac-studio-2")
    sentinel = config.sentinel_conf(spec, "witness")
    assert f"sentinel monitor prontuario 127.0.0.1 {primary} 2" in sentinel
    assert "down-after-milliseconds prontuario 2000" in sentinel


def test_standin_follows_through_the_haproxy_write_port():
    spec = LabSpec(dir="/srv/lab")
    conf = config.standin_pg_conf(spec)
    # A plain PostgreSQL: it follows through its pglogical subscription, not as a standby.
    assert "primary_conninfo" not in conf and "recovery_target_timeline" not in conf
    assert f"port = {spec.standin_pg_port}" in conf
    assert f"port={spec.haproxy_write_port}" in config.standin_provider_dsn(spec)


def test_component_names_are_stable_and_complete():
    names = component_names()
    assert names[:3] == ["etcd-mac-studio-1", "etcd-mac-studio-2", "etcd-witness"]
    for name in ("patroni-mac-studio-1", "postgres-mac-studio-2", "haproxy", "cloudsql-replica", "cloudsql-api", "sentinel-witness"):
        assert name in names
    spec = LabSpec(dir="/srv/lab")
    for comp in components(spec).values():
        if comp.proc is not None:
            assert comp.proc.log.parent == spec.log_dir and comp.proc.pidfile.parent == spec.run_dir
            assert comp.proc.markers, comp.name


def test_spec_round_trips_through_json(tmp_path):
    from prontuario_cli.lab.spec import load_spec

    spec = LabSpec(dir=str(tmp_path), profile="fast", base_port=18000)
    spec.save()
    assert load_spec(tmp_path) == spec
    assert load_spec(tmp_path / "nothing") is None


def test_proc_state_treats_zombies_and_missing_pids_as_dead():
    from prontuario_cli.lab.procs import alive, proc_state

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # Wait (bounded) for the child to exit without reaping it: it is then a zombie.
    poll(lambda: proc_state(child.pid) == "Z", 10, "the child a zombie", every=0.02)
    assert proc_state(child.pid) == "Z"
    assert not alive(child.pid)
    assert proc_state(os.getpid()) in ("R", "S")
    assert not alive(2**22 + 12345)
    child.wait()


def test_stop_pids_escalates_to_sigkill():
    from prontuario_cli.lab.procs import alive, stop_pids

    stubborn = subprocess.Popen([sys.executable, "-c", "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    assert stubborn.stdout.readline().strip() == b"ready"
    left = stop_pids([(stubborn.pid, signal.SIGTERM)], timeout_s=0.5, kill_timeout_s=5)
    assert left == [] and not alive(stubborn.pid)
    stubborn.wait(timeout=5)  # already reaped by alive(); returns at once


def test_google_error_shape():
    from prontuario_cli.lab.cloudsql_standin import google_error

    body = google_error(404, "nope")
    assert body["error"]["code"] == 404 and body["error"]["status"] == "NOT_FOUND"
    assert body["error"]["errors"][0]["message"] == "nope"


def test_install_reads_the_package_list_from_install_sh():
    from prontuario_cli.lab.install import apt_packages, install_script

    packages = apt_packages(install_script())
    for name in ("postgresql-15", "etcd-server", "haproxy", "redis-sentinel", "prometheus"):
        assert name in packages


# --------------------------------------------------------------------------- probes and waits


def _free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_probes_answer_not_ready_rather_than_raise_when_nothing_listens(tmp_path):
    from prontuario_cli.lab import health

    port = _free_port()
    assert health.http_status(health.lab_url(port, "/health")) == 0
    assert health.http_json(health.lab_url(port, "/patroni")) is None
    assert health.etcd_healthy(port) is False and health.etcd_is_leader(port) is False
    assert health.pg_query(port, "SELECT 1") is None
    assert health.pg_in_recovery(port) is None and health.standin_replicating(port, "prontuario", "cloudsql") is False
    assert health.redis_role(port) is None
    assert health.sentinel_master(port, "prontuario") is None and health.sentinel_ready(port, "prontuario") is False
    assert health.describe_sentinel(None) == "no answer"
    assert health.haproxy_servers(tmp_path / "no.sock") == () and health.write_servers_up(tmp_path / "no.sock") == []


def test_servers_up_reads_the_one_show_stat_parser():
    from prontuario_cli.connect.haproxy import parse_haproxy_stat
    from prontuario_cli.lab.health import servers_up

    text = (
        "# pxname,svname,status,check_status,bck\n"
        "write,FRONTEND,OPEN,,0\n"
        "write,mac-studio-1,UP,L7OK,0\n"
        "write,mac-studio-2,DOWN,L7STS,0\n"
        "write,cloudsql,UP 1/2,L7OK,1\n"
        "read,mac-studio-2,UP,L7OK,0\n"
        "write,BACKEND,UP,,0\n"
    )
    assert servers_up(parse_haproxy_stat(text)) == ["mac-studio-1", "cloudsql"]
    assert servers_up(parse_haproxy_stat(text), "read") == ["mac-studio-2"]


def test_wait_for_names_the_component_what_was_seen_last_and_the_log(tmp_path):
    from prontuario_cli.errors import ExitCode, UnavailableError
    from prontuario_cli.lab.health import wait_for

    log = tmp_path / "etcd-witness.log"
    with pytest.raises(UnavailableError) as caught:
        wait_for("healthy", lambda: False, 0.3, component="etcd-witness", log=log, interval_s=0.05, last_state=lambda: "no /health")
    error = caught.value
    assert error.message == f"etcd-witness: healthy not reached within 0.3 s; last seen: no /health (log: {log})"
    assert error.hint == "read it with: prontuario lab logs etcd-witness"
    assert error.exit_code == ExitCode.UNAVAILABLE
    answers = iter([None, 0, "ready"])
    assert wait_for("ready", lambda: next(answers), 5, component="x", interval_s=0.01) == "ready"


def test_wait_for_ends_at_once_when_a_probe_gives_up():
    from prontuario_cli.errors import OperationFailed
    from prontuario_cli.lab.health import StopWaiting, wait_for

    calls = []

    def died():
        calls.append(1)
        raise StopWaiting(OperationFailed("etcd-witness exited during start-up"))

    with pytest.raises(OperationFailed, match="exited during start-up"):
        wait_for("healthy", died, 30, component="etcd-witness")
    assert calls == [1], "a probe that gives up is not polled again"


def test_redis_reply_shapes_the_probes_read():
    from prontuario_cli.connect.redis import ReplyError, info_fields, reply_pairs

    info = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_link_status:up\r\n\r\n"
    assert info_fields(info) == {"role": "slave", "master_host": "127.0.0.1", "master_link_status": "up"}
    assert info_fields(b"role:master\n") == {"role": "master"}
    assert info_fields(ReplyError("LOADING", "LOADING")) == {} and info_fields(None) == {}
    assert reply_pairs(["name", "prontuario", "ip", "127.0.0.1", "port", 25004]) == {"name": "prontuario", "ip": "127.0.0.1", "port": "25004"}
    assert reply_pairs(ReplyError("ERR No such master with that name", "ERR")) == {} and reply_pairs(None) == {}


def test_settled_names_every_component_when_nothing_answers(tmp_path):
    """What 'lab up' waits for last: each thing 'replication check' reads, named, never an exception."""
    import socket

    from prontuario_cli.lab import ready

    def listening(port: int) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    base = None
    for candidate in range(64000, 65400, 100):  # a range where no lab listens right now
        if not any(listening(p) for p in all_ports(LabSpec(dir=str(tmp_path), base_port=candidate))):
            base = candidate
            break
    assert base is not None, "no free port range for the test"
    found = ready.gaps(LabSpec(dir=str(tmp_path), base_port=base))
    components = {gap.component for gap in found}
    for name in ("patroni-mac-studio-1", "patroni-mac-studio-2", "cloudsql-replica", "redis-mac-studio-1", "sentinel-witness", "haproxy"):
        assert name in components, (name, found)
    assert ready.describe(found).startswith("patroni-mac-studio-1: REST API not answering")
    assert ready.describe([]) == "settled"


def test_wait_settled_names_what_is_still_settling_with_its_log(tmp_path, monkeypatch):
    from prontuario_cli.errors import OperationFailed, UnavailableError
    from prontuario_cli.lab import ready, up

    spec = LabSpec(dir=str(tmp_path))
    still = [ready.Gap("haproxy", "no read server UP (mac-studio-1 DOWN, mac-studio-2 DOWN)"), ready.Gap("sentinel-witness", "no quorum yet")]
    monkeypatch.setattr(ready, "gaps", lambda spec: still)
    with pytest.raises(UnavailableError) as caught:
        up.wait_settled(spec, components(spec), {}, 0.3)
    message = caught.value.message
    assert message.startswith("haproxy: not settled within 0.3 s ('replication check' would not say OK)")
    assert "no read server UP" in message and "sentinel-witness: no quorum yet" in message
    assert f"(log: {spec.log_dir / 'haproxy.log'})" in message

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with pytest.raises(OperationFailed, match="haproxy exited during start-up"):
        up.wait_settled(spec, components(spec), {"haproxy": gone.pid}, 30)  # at once, not after 30 s

    monkeypatch.setattr(ready, "gaps", lambda spec: [])
    up.wait_settled(spec, components(spec), {}, 0.3)


def test_patroni_dcs_refuses_timings_patroni_would_reject():
    from prontuario_cli.engines import patroni_dcs

    assert patroni_dcs(20, 2, 4, {})["failsafe_mode"] is True
    with pytest.raises(ValueError, match="loop_wait"):
        patroni_dcs(20, 10, 6, {})


@pytest.mark.parametrize("with_serve", [True, False])
def test_lab_inventory_has_the_servers_ports_and_stores_only_with_serve(with_serve):
    spec = LabSpec(dir="/srv/lab", base_port=15500, with_serve=with_serve)
    inv = parse_inventory(config.cluster_yaml(spec), "lab/cluster.yaml")
    assert not inv.warnings
    macs = {n.name: n for n in inv.nodes if n.name in MACS}
    served = [(n.models_dir, n.ports.medgemma, n.ports.whisper, n.ports.facenet) for n in macs.values()]
    if with_serve:
        assert served == [(f"/srv/lab/models/{name}", *spec.serve_ports(name)) for name in MACS]
        ports = all_ports(spec) + [p for name in MACS for p in spec.serve_ports(name)]
        assert len(set(ports)) == len(ports) == 26 and all(15500 <= p < 15600 for p in ports)
        serve_names = [n for n, c in components(spec).items() if c.kind == "serve"]
        assert serve_names == [f"serve-{kind}-{node}" for node in MACS for kind in ("llm", "stt", "face")]
        argv = components(spec)["serve-stt-mac-studio-2"].proc.argv
        assert argv[1:] == ("serve", "stt", "--store", "/srv/lab/models/mac-studio-2", "--model", inv.serve.stt,
                            "--port", str(macs["mac-studio-2"].ports.whisper), "--log", "/srv/lab/logs/serve-stt-mac-studio-2.log")
    else:
        assert served == [(None, None, None, None)] * 2
        assert not [c for c in components(spec).values() if c.kind == "serve"]
    assert inv.node("witness").models_dir is None and inv.node("witness").ports.medgemma is None
    assert inv.models.manifests == "/srv/lab/model-manifests"
    assert inv.models.prontuario == str(Path(spec.binaries.python or sys.executable).parent / "prontuario")
    assert inv.serve.log_dir == "/srv/lab/logs"


def test_with_serve_is_remembered_in_the_saved_spec(tmp_path):
    from prontuario_cli.lab import Lab

    LabSpec(dir=str(tmp_path), with_serve=True).save()
    assert Lab(tmp_path, say=lambda text: None).spec.with_serve
    assert not Lab(tmp_path / "other", say=lambda text: None).spec.with_serve


def test_the_lab_creates_the_probe_table_before_the_subscription():
    """pglogical replicates no DDL: the lab creates prontuario's probe table (the drills'
    writes, the cloud replica's marker rows) before the subscription, in a replicated
    schema, with a primary key (so its updates and deletes can be replicated too)."""
    from prontuario_cli import engines
    from prontuario_cli.lab import logical

    assert engines.PROBE_TABLE_DDL in logical.LAB_SCHEMA
    assert logical.LAB_SCHEMA.index(engines.PROBE_TABLE_DDL) > 0  # after its schema
    assert engines.PROBE_SCHEMA in logical.REPLICATED_SCHEMAS
    assert all("PRIMARY KEY" in s for s in logical.LAB_SCHEMA if "TABLE" in s)


def test_the_stand_in_subscribes_through_the_source_representation_instance(tmp_path):
    import json

    from prontuario_cli.lab import config
    from prontuario_cli.lab.spec import LabSpec

    spec = LabSpec(dir=str(tmp_path / "lab"), base_port=27000)
    inventory = config.lab_inventory(spec)
    replication = inventory.cloud.replication
    assert replication.source == f"127.0.0.1:{spec.haproxy_write_port}"
    # pglogical names the slot pgl_<subscriber database>_<provider node>_<subscription>.
    assert replication.slot == f"pgl_{spec.database}_{replication.provider_node}_{replication.subscription}"
    dcs = config.patroni_config(spec, "mac-studio-1")["bootstrap"]["dcs"]
    assert dcs["slots"] == {replication.slot: {"type": "logical", "database": spec.database, "plugin": "pglogical_output"}}
    parameters = dcs["postgresql"]["parameters"]
    assert parameters["wal_level"] == "logical" and parameters["shared_preload_libraries"] == "pglogical"
    # A subscriber gone for long loses its slot rather than filling the Macs' disks.
    assert parameters["max_slot_wal_keep_size"] == "16GB"
    conf = config.standin_pg_conf(spec)
    assert "shared_preload_libraries = 'pglogical'" in conf and "primary_conninfo" not in conf
    api = json.loads(config.standin_api_config(spec))
    assert api["source_host_port"] == replication.source and api["subscription"] == replication.subscription
    assert f"port={spec.haproxy_write_port}" in config.standin_provider_dsn(spec) and "connect_timeout=" in config.standin_provider_dsn(spec)
