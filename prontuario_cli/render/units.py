"""The services one node runs, as :class:`~prontuario_cli.services.Service` descriptions,
and their launchd jobs or systemd units (rendered by :mod:`prontuario_cli.services`)."""

from __future__ import annotations

from prontuario_cli.render.etcd import etcd_argv
from prontuario_cli.render.haproxy import haproxy_argv
from prontuario_cli.render.patroni import patroni_argv
from prontuario_cli.render.redis import redis_argv, sentinel_argv
from prontuario_cli.render.spec import NodeSpec
from prontuario_cli.services import Service, plist_text, systemd_unit

LAUNCHD_DIR = "/Library/LaunchDaemons"
SYSTEMD_DIR = "/etc/systemd/system"

# Stopping Patroni can take more than 10 s (a sync standby waits for the primary to
# release it; a primary hands over first): give it a minute before SIGKILL.
PATRONI_STOP_TIMEOUT_S = 60


def runs(ns: NodeSpec) -> list[str]:
    """The services this node runs, in start order (the witness: etcd and a Sentinel)."""
    me = next((m for m in ns.macs if m.name == ns.name), None)
    names = []
    if ns.etcd_member() is not None:
        names.append("etcd")
    if me is not None and me.redis is not None:
        names.append("redis")
    if ns.ports.sentinel is not None:
        names.append("sentinel")
    if me is not None:
        names.append("patroni")
    if ns.haproxy is not None:
        names.append("haproxy")
    return names


def node_services(ns: NodeSpec) -> list[Service]:
    """One :class:`Service` per service this node runs."""
    log_dir = ns.layout.log_dir.rstrip("/")
    user = ns.policy.service_user
    make = {
        "etcd": lambda: Service("etcd", f"etcd member {ns.name} (Patroni's DCS)", tuple(etcd_argv(ns)), f"{log_dir}/etcd.log", user=user),
        "redis": lambda: Service("redis", f"Redis on {ns.name}", tuple(redis_argv(ns)), f"{log_dir}/redis.log", user=user),
        "sentinel": lambda: Service("sentinel", f"Redis Sentinel on {ns.name}", tuple(sentinel_argv(ns)), f"{log_dir}/sentinel.log", user=user),
        "patroni": lambda: Service(
            "patroni",
            f"Patroni and PostgreSQL on {ns.name}",
            tuple(patroni_argv(ns)),
            f"{log_dir}/patroni.log",
            user=ns.policy.postgres_user,
            stop_timeout_s=PATRONI_STOP_TIMEOUT_S,
        ),
        "haproxy": lambda: Service("haproxy", f"HAProxy on {ns.name}", tuple(haproxy_argv(ns)), f"{log_dir}/haproxy.log", user=user),
    }
    return [make[name]() for name in runs(ns)]


def service_path(service: Service, init: str) -> str:
    if init == "launchd":
        return f"{LAUNCHD_DIR}/{service.plist_name}"
    if init == "systemd":
        return f"{SYSTEMD_DIR}/{service.unit_name}"
    raise ValueError(f"unknown init system {init!r} (launchd or systemd)")


def service_text(service: Service, init: str) -> str:
    if init == "launchd":
        return plist_text(service)
    if init == "systemd":
        return systemd_unit(service)
    raise ValueError(f"unknown init system {init!r} (launchd or systemd)")
