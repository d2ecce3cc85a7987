"""Production and the lab render the same files: only addresses, ports, paths and
timings differ, plus the lab's policy (:func:`prontuario_cli.lab.config.lab_policy`),
whose difference from production's is pinned field by field below.

Both renderings are normalised (every address to ADDR, port to PORT, path to PATH, timing
to T) and then compared exactly, file by file and service by service.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from prontuario_cli.lab import config as lab_config
from prontuario_cli.render import etcd, haproxy, patroni, redis
from prontuario_cli.render.node import config_files, render_node
from prontuario_cli.render.spec import NodeSpec, Policy
from prontuario_cli.render.units import node_services
from tests.render.renderings import lab, lab_spec, production

NODES = ("mac-studio-1", "mac-studio-2", "witness")

# Timings, at the only places they appear in the text configs.
TEXT_TIMINGS = [
    (re.compile(r" (fastinter|downinter) \S+"), ""),  # absent: HAProxy uses inter
    (re.compile(r"\b(inter|fall|rise) \S+"), r"\1 T"),
    (re.compile(r"timeout check \S+"), "timeout check T"),
    (re.compile(r"(down-after-milliseconds|failover-timeout) (\S+) \d+"), r"\1 \2 T"),
]
YAML_TIMINGS = {("bootstrap", "dcs", "ttl"), ("bootstrap", "dcs", "loop_wait"), ("bootstrap", "dcs", "retry_timeout")}


class Normaliser:
    """Replaces the values two NodeSpecs may legitimately differ in with placeholders."""

    def __init__(self, *specs: NodeSpec):
        paths: set[str] = set()
        addresses: set[str] = set()
        ports: set[int] = set()
        for ns in specs:
            paths |= {str(v) for v in dataclasses.asdict(ns.layout).values()}
            paths |= {str(v) for v in dataclasses.asdict(ns.binaries).values()}
            addresses |= {ns.address, *(m.address for m in ns.macs), *(m.address for m in ns.etcd)}
            ports |= {v for v in dataclasses.asdict(ns.ports).values() if v is not None}
            ports |= {p for m in ns.macs for p in (m.postgresql, m.patroni, m.redis) if p}
            ports |= {p for m in ns.etcd for p in (m.client_port, m.peer_port)}
            if ns.haproxy:
                ports |= {p for p in (ns.haproxy.write_port, ns.haproxy.read_port, ns.haproxy.stats_port) if p}
                paths.add(ns.haproxy.socket)
            if ns.cloud_backup:
                addresses.add(ns.cloud_backup.address)
                ports |= {ns.cloud_backup.port, ns.cloud_backup.check_port}
        self.paths = sorted((p for p in paths if p), key=len, reverse=True)
        self.addresses = re.compile(r"(?<![\d.])(" + "|".join(re.escape(a) for a in sorted(addresses, key=len, reverse=True)) + r")(?![\d.])")
        self.ports = re.compile(r"(?<![\d.])(" + "|".join(str(p) for p in sorted(ports, reverse=True)) + r")(?![\d.])")

    def value(self, text: str) -> str:
        for path in self.paths:
            text = text.replace(path, "PATH")
        text = self.addresses.sub("ADDR", text)
        return self.ports.sub("PORT", text)

    def text(self, text: str) -> str:
        for pattern, repl in TEXT_TIMINGS:
            text = pattern.sub(repl, text)
        return self.value(text)

    def tree(self, data, keys=()):
        if keys in YAML_TIMINGS:
            return "T"
        if isinstance(data, dict):
            return {k: self.tree(v, (*keys, k)) for k, v in data.items()}
        if isinstance(data, list):
            items = [self.tree(v, keys) for v in data]
            if keys == ("postgresql", "pg_hba"):  # one line per distinct host: the lab's are all 127.0.0.1
                items = list(dict.fromkeys(items))
            return items
        return self.value(data) if isinstance(data, str) else data

    def yaml(self, text: str):
        return self.tree(yaml.safe_load(text))


def renderings(ns: NodeSpec) -> dict[str, object]:
    """Every config file of a node, by service, parsed where the format allows."""
    out: dict[str, object] = {}
    for f in config_files(ns):
        out[f.service] = ("yaml", f.content) if f.service in ("patroni", "etcd") else ("text", f.content)
    return out


def normalised(ns: NodeSpec, norm: Normaliser) -> dict[str, object]:
    return {name: norm.yaml(content) if kind == "yaml" else norm.text(content) for name, (kind, content) in renderings(ns).items()}


def services(ns: NodeSpec, norm: Normaliser) -> list[dict]:
    return [
        {k: (norm.value(v) if isinstance(v, str) else [norm.value(a) for a in v] if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(s).items()}
        for s in node_services(ns)
    ]


@pytest.mark.parametrize("node", NODES)
def test_production_and_lab_differ_only_in_addresses_ports_paths_and_timings(node):
    prod = production(node, with_fallback=True)
    # The lab under production's policy: what is left to differ must be addresses, ports,
    # paths and timings only.
    lab_ns = lab(node, policy_of=prod)
    # Production runs an HAProxy on each Mac; the lab runs one (all its nodes share
    # 127.0.0.1, so its inventory lists the ports once, on mac-studio-1): mac-studio-2's
    # is compared with that one.
    lab_haproxy = lab("mac-studio-1", policy_of=prod)
    norm = Normaliser(prod, lab_ns, lab_haproxy)
    prod_files, lab_files = normalised(prod, norm), normalised(lab_ns, norm)
    if node == "mac-studio-2":
        assert "haproxy" not in lab_files
        lab_files["haproxy"] = norm.text(haproxy.haproxy_cfg(lab_haproxy))
    assert sorted(prod_files) == sorted(lab_files)
    for name in prod_files:
        assert prod_files[name] == lab_files[name], f"{node} {name}: production and lab differ beyond addresses/ports/paths/timings"
    prod_services, lab_services = services(prod, norm), services(lab_ns, norm)
    if node == "mac-studio-2":
        prod_services = [s for s in prod_services if s["name"] != "haproxy"]
    assert prod_services == lab_services


def test_the_normalisation_would_catch_a_real_difference():
    prod = production("mac-studio-1", with_fallback=True)
    lab_ns = lab("mac-studio-1", policy_of=prod)
    norm = Normaliser(prod, lab_ns)
    changed = dataclasses.replace(lab_ns, sentinel_quorum=3)
    assert norm.text(redis.sentinel_conf(changed)) != norm.text(redis.sentinel_conf(prod))
    no_backup = dataclasses.replace(lab_ns, cloud_backup=None)
    assert norm.text(haproxy.haproxy_cfg(no_backup)) != norm.text(haproxy.haproxy_cfg(prod))
    unsafe = dict(patroni.patroni_config(lab_ns))
    unsafe["bootstrap"] = {**unsafe["bootstrap"], "dcs": {**unsafe["bootstrap"]["dcs"], "failsafe_mode": False}}
    assert norm.tree(unsafe) != norm.yaml(patroni.patroni_yaml(prod))
    assert norm.yaml(etcd.etcd_yaml(lab("witness"))) != norm.yaml(etcd.etcd_yaml(production("witness")))  # the lab's own token


def test_the_labs_policy_differs_from_productions_only_in_the_named_fields():
    lab_policy = lab_config.lab_policy(lab_spec())
    diff = {f.name for f in dataclasses.fields(Policy) if getattr(lab_policy, f.name) != getattr(Policy(), f.name)}
    assert diff == {"pg_auth_method", "initdb_no_sync", "redis_persistence", "etcd_token", "service_user"}
    assert production("mac-studio-1").policy == production("witness").policy == Policy()


def test_the_lab_renders_what_it_writes():
    """The lab's files are render_node's, for every node (HAProxy once, with mac-studio-1)."""
    spec = lab_spec()
    written = {f.path: f.content for f in lab_config.node_files(spec)}
    assert written[str(spec.sub("haproxy", "haproxy.cfg"))] == lab_config.haproxy_cfg(spec)
    for node in NODES:
        ns = lab_config.node_spec(spec, node)
        for f in render_node(ns, services=False):
            assert written[f.path] == f.content
