"""Every file one node needs, rendered: :func:`render_node`.

What bootstrap writes on a node and what the lab writes for each of its nodes; the
caller decides how to write (atomically, as which owner), this module only says what.
"""

from __future__ import annotations

from dataclasses import dataclass

from prontuario_cli.render.etcd import etcd_yaml
from prontuario_cli.render.haproxy import haproxy_cfg
from prontuario_cli.render.patroni import patroni_yaml
from prontuario_cli.render.redis import redis_conf, sentinel_conf
from prontuario_cli.render.spec import NodeSpec
from prontuario_cli.render.units import node_services, runs, service_path, service_text


@dataclass(frozen=True)
class RenderedFile:
    path: str
    content: str
    mode: int
    service: str  # the service it belongs to: patroni, etcd, redis, sentinel, haproxy
    owner: str | None = None  # the user that must own it (None: whoever writes it)
    # Written only when absent: the service rewrites it with what it learns (Sentinel
    # rewrites its file and, on a failover, Redis's).
    initial_only: bool = False


def config_files(ns: NodeSpec) -> list[RenderedFile]:
    """The services' own configuration files."""
    files = []
    for name in runs(ns):
        if name == "etcd":
            files.append(RenderedFile(ns.layout.etcd_config, etcd_yaml(ns), 0o644, "etcd"))
        elif name == "redis":
            files.append(RenderedFile(ns.layout.redis_config, redis_conf(ns), 0o644, "redis", ns.policy.service_user, initial_only=True))
        elif name == "sentinel":
            files.append(RenderedFile(ns.layout.sentinel_config, sentinel_conf(ns), 0o644, "sentinel", ns.policy.service_user, initial_only=True))
        elif name == "patroni":
            files.append(RenderedFile(ns.layout.patroni_config, patroni_yaml(ns), 0o600, "patroni", ns.policy.postgres_user))
        elif name == "haproxy":
            files.append(RenderedFile(ns.layout.haproxy_config, haproxy_cfg(ns), 0o600, "haproxy", ns.policy.service_user))
    return files


def service_files(ns: NodeSpec, init: str | None = None) -> list[RenderedFile]:
    """The launchd jobs (macOS) or systemd units (Debian) that keep the services running."""
    init = init or ns.init
    return [RenderedFile(service_path(s, init), service_text(s, init), 0o644, s.name) for s in node_services(ns)]


def render_node(ns: NodeSpec, services: bool = True) -> list[RenderedFile]:
    """Every file ``ns`` needs: its services' configs and (unless ``services`` is False,
    as in the lab, which runs the processes itself) their launchd jobs or systemd units."""
    return config_files(ns) + (service_files(ns) if services else [])
