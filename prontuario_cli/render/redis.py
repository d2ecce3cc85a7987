"""Redis and Sentinel: the inventory's primary starts as Redis primary, the other Mac as
its replica, and every node with a Sentinel port watches them.

Both files are only a fresh node's starting point: Sentinel rewrites its own file with
what it learns and rewrites Redis's on a failover, so they are written only when absent.
"""

from __future__ import annotations

from prontuario_cli.render.common import HEADER_REWRITTEN
from prontuario_cli.render.spec import NodeSpec


def redis_conf(ns: NodeSpec) -> str:
    me = next((m for m in ns.macs if m.name == ns.name), None)
    if me is None or me.redis is None:
        raise ValueError(f"{ns.name} runs no Redis (no ports.redis on a data node)")
    lines = [
        HEADER_REWRITTEN.format(note="Sentinel may rewrite it"),
        f"bind {me.address}",
        f"port {me.redis}",
        "protected-mode no",
        "daemonize no",
        'logfile ""',
        f"dir {ns.layout.redis_dir}",
    ]
    if ns.policy.redis_persistence:
        # A primary restarted empty (by launchd or systemd) before Sentinel notices it would
        # hand its emptiness to the replica: it must come back with its data.
        lines += ['save ""', "appendonly yes", "appendfsync everysec"]
    else:
        lines += ['save ""', "appendonly no"]
    lines += ["repl-diskless-sync yes", "repl-diskless-sync-delay 0"]
    primary = ns.redis_primary
    if primary is not None and primary.name != ns.name:
        lines.append(f"replicaof {primary.address} {primary.redis}")
    return "\n".join(lines) + "\n"


def sentinel_conf(ns: NodeSpec) -> str:
    if ns.ports.sentinel is None:
        raise ValueError(f"{ns.name} runs no Sentinel (no ports.sentinel)")
    if ns.redis_primary is None:
        raise ValueError("no Redis primary to monitor: the inventory's primary has no ports.redis")
    name = ns.redis_master
    t = ns.timings
    lines = [
        HEADER_REWRITTEN.format(note="Sentinel rewrites it"),
        f"bind {ns.address}",
        f"port {ns.ports.sentinel}",
        "protected-mode no",
        "daemonize no",
        'logfile ""',
        f"dir {ns.layout.sentinel_dir}",
        f"sentinel monitor {name} {ns.redis_primary.address} {ns.redis_primary.redis} {ns.sentinel_quorum}",
        f"sentinel down-after-milliseconds {name} {t.sentinel_down_after_ms}",
        f"sentinel failover-timeout {name} {t.sentinel_failover_timeout_ms}",
        f"sentinel parallel-syncs {name} 1",
    ]
    return "\n".join(lines) + "\n"


def redis_argv(ns: NodeSpec) -> list[str]:
    return [ns.binaries.redis_server, ns.layout.redis_config]


def sentinel_argv(ns: NodeSpec) -> list[str]:
    return [ns.binaries.redis_sentinel, ns.layout.sentinel_config]
