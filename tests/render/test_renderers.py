"""Each renderer's output, production and lab, checked by the installed tools where they
have a check mode (haproxy -c, patroni --validate-config), otherwise parsed and compared
with what the installed etcd and Redis document."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from prontuario_cli.lab.spec import Binaries
from prontuario_cli.render import etcd, haproxy, patroni, redis
from prontuario_cli.render.node import render_node
from prontuario_cli.render.units import node_services, service_text
from prontuario_cli.services import check_plist
from tests.render.renderings import lab, lab_spec, production

NODES = ("mac-studio-1", "mac-studio-2", "witness")
PG_BIN = "/usr/lib/postgresql/15/bin"
PATRONI = Binaries.default().patroni  # the venv's, as the lab runs it


def tool(path_or_name: str) -> str:
    """The installed tool, or a failed test naming what to install: never a skip."""
    found = shutil.which(path_or_name) or (path_or_name if os.path.exists(path_or_name) else None)
    if not found:
        pytest.fail(f"{path_or_name} is not installed: run ./install.sh")
    return found


def documented(path: str, pattern: str) -> set[str]:
    """Directive names a shipped example config documents (commented or not)."""
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: install redis-server and redis-sentinel (./install.sh)")
    with open(path, encoding="utf-8") as fh:
        return {m.group(1) for m in re.finditer(pattern, fh.read(), re.MULTILINE)}


REDIS_LINE = r"^#? ?([a-z][a-z0-9-]+) "
SENTINEL_LINE = r"^#? ?(sentinel [a-z][a-z0-9-]+) "


def directives(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        words = line.split()
        out.append(" ".join(words[:2]) if words[0] == "sentinel" else words[0])
    return out


@pytest.mark.parametrize("node", NODES)
def test_every_node_gets_its_files_and_the_witness_only_etcd_and_a_sentinel(node):
    files = render_node(production(node))
    services = {f.service for f in files}
    if node == "witness":
        assert services == {"etcd", "sentinel"}
        assert all(f.path.startswith(("/etc/", "/var/lib/prontuario/")) for f in files)
        assert sum(f.path.endswith(".service") for f in files) == 2  # Debian: systemd units
    else:
        assert services == {"etcd", "redis", "sentinel", "patroni", "haproxy"}
        assert sum(f.path.startswith("/Library/LaunchDaemons/") for f in files) == 5  # macOS: launchd jobs
    assert len({f.path for f in files}) == len(files)
    assert all(os.path.isabs(f.path) for f in files)


@pytest.mark.parametrize("which", ["production", "lab-seed", "lab-fast"])
def test_haproxy_cfg_passes_haproxy_check(tmp_path, which):
    binary = tool("/usr/sbin/haproxy")
    ns = production("mac-studio-1", with_fallback=True) if which == "production" else lab("mac-studio-1", lab_spec(str(tmp_path), which[4:]))
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy.haproxy_cfg(ns))
    result = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    text = cfg.read_text()
    for mac in ns.macs:
        assert f"server {mac.name} {mac.address}:{mac.postgresql} check port {mac.patroni}" in text
    assert f"backup check port {ns.cloud_backup.check_port}" in text


def test_haproxy_without_a_fallback_check_port_has_no_backup_server():
    text = haproxy.haproxy_cfg(production("mac-studio-2"))
    assert " backup " not in text
    assert "bind 10.40.0.12:5000" in text and "stats socket /run/haproxy/admin.sock" in text


@pytest.mark.parametrize("node", ["mac-studio-1", "mac-studio-2"])
def test_production_patroni_yml_passes_patroni_validate_config(tmp_path, node):
    binary = tool(PATRONI)
    tool(f"{PG_BIN}/postgres")
    cfg = patroni.patroni_config(production(node, with_fallback=True))
    # This machine is no Mac: the only thing that cannot exist here is Homebrew's bin_dir.
    assert cfg["postgresql"]["bin_dir"].startswith("/opt/homebrew/")
    cfg["postgresql"]["bin_dir"] = PG_BIN
    path = tmp_path / "patroni.yml"
    path.write_text(yaml.safe_dump(cfg))
    # The listen addresses are the Macs' (not on this machine): check their form, not a bind.
    result = subprocess.run([binary, "--validate-config", "--ignore-listen-port", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert cfg["bootstrap"]["dcs"]["synchronous_mode"] is True and cfg["bootstrap"]["dcs"]["failsafe_mode"] is True
    assert "no-sync" not in cfg["bootstrap"]["initdb"]
    assert all(line.endswith("scram-sha-256") for line in cfg["postgresql"]["pg_hba"])
    assert "host replication all 10.60.0.5/32 scram-sha-256" in cfg["postgresql"]["pg_hba"]


def test_lab_patroni_yml_parses_with_the_keys_patroni_needs():
    # patroni --validate-config refuses 127.0.0.1 connect addresses (yet runs with them):
    # the lab's file is checked by keys here and by the live lab tests.
    ns = lab("mac-studio-2")
    cfg = yaml.safe_load(patroni.patroni_yaml(ns))
    assert {"scope", "name", "restapi", "etcd3", "bootstrap", "postgresql"} <= set(cfg)
    assert cfg["etcd3"]["hosts"] == [f"127.0.0.1:{m.client_port}" for m in ns.etcd] and len(ns.etcd) == 3
    assert cfg["postgresql"]["bin_dir"] == PG_BIN
    assert cfg["postgresql"]["pg_hba"] == ["local all all trust", "host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust"]


@pytest.mark.parametrize("which", ["production", "lab"])
def test_etcd_config_keys_are_flags_of_the_installed_etcd(which):
    binary = tool("/usr/bin/etcd")
    result = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30, check=False)
    flags = set(re.findall(r"^\s+--([a-z0-9-]+)", result.stdout + result.stderr, re.MULTILINE))
    assert "initial-cluster-token" in flags, "etcd --help lists no flags"
    # A real flag that etcd 3.4's --help does not list; the live lab tests prove it is read
    # (without it Patroni finds no etcd: the /v3 HTTP API answers 404).
    flags.add("enable-grpc-gateway")
    for node in NODES:
        ns = production(node) if which == "production" else lab(node)
        cfg = yaml.safe_load(etcd.etcd_yaml(ns))
        assert set(cfg) <= flags, set(cfg) - flags
        assert cfg["initial-cluster"].count("=http://") == 3
        assert etcd.etcd_argv(ns) == [ns.binaries.etcd, "--config-file", ns.layout.etcd_config]
        assert cfg["enable-grpc-gateway"] is True


@pytest.mark.parametrize("which", ["production", "lab"])
def test_redis_and_sentinel_directives_are_documented_by_the_installed_redis(which):
    known = documented("/etc/redis/redis.conf", REDIS_LINE)
    known_sentinel = known | documented("/etc/redis/sentinel.conf", SENTINEL_LINE)
    for node in NODES:
        ns = production(node) if which == "production" else lab(node)
        if node != "witness":
            text = redis.redis_conf(ns)
            assert set(directives(text)) <= known, set(directives(text)) - known
            assert ("replicaof" in text) == (node == "mac-studio-2")
        text = redis.sentinel_conf(ns)
        assert set(directives(text)) <= known_sentinel, set(directives(text)) - known_sentinel
        primary = ns.redis_primary
        assert f"sentinel monitor prontuario {primary.address} {primary.redis} 2" in text


def test_production_redis_persists_and_the_lab_does_not():
    assert "appendonly yes" in redis.redis_conf(production("mac-studio-1"))
    assert "appendonly no" in redis.redis_conf(lab("mac-studio-1"))


@pytest.mark.parametrize("node", NODES)
def test_service_definitions_render_for_launchd_and_systemd(node):
    ns = production(node)
    for service in node_services(ns):
        job = check_plist(service_text(service, "launchd"))
        assert job["ProgramArguments"][0].startswith("/") and job["KeepAlive"] is True
        unit = service_text(service, "systemd")
        assert "\n[Service]\n" in unit and f"ExecStart={service.argv[0]}" in unit
    users = {s.name: s.user for s in node_services(ns)}
    assert users.get("patroni", "postgres") == "postgres"
    assert all(user == "prontuario" for name, user in users.items() if name != "patroni")


def test_node_files_is_render_node_from_the_inventory():
    from prontuario_cli.render import node_files
    from tests.render.renderings import example_inventory

    inv = example_inventory()
    for node in NODES:
        assert node_files(inv, node) == render_node(production(node))
    assert [f.service for f in node_files(inv, "witness", services=False)] == ["etcd", "sentinel"]


def test_a_data_node_without_its_ports_is_a_config_error():
    import dataclasses

    from prontuario_cli.errors import ConfigError
    from prontuario_cli.render.spec import from_inventory
    from tests.render.renderings import example_inventory

    inv = example_inventory()
    mac = inv.nodes[1]
    broken = dataclasses.replace(inv, nodes=(inv.nodes[0], dataclasses.replace(mac, ports=dataclasses.replace(mac.ports, patroni=None)), inv.nodes[2]))
    with pytest.raises(ConfigError, match="mac-studio-2: ports.postgresql and ports.patroni are required"):
        from_inventory(broken, "witness")
