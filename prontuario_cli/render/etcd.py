"""etcd's configuration file (``etcd --config-file FILE``) for one member.

A file rather than flags: the launchd job, the systemd unit and the lab all run the same
``etcd --config-file FILE`` line, and the file is what an operator reads and diffs.
(etcd ignores every other flag and ``ETCD_*`` variable once it has a config file.)

With a config file etcd 3.4 starts from different defaults than with flags: its gRPC
gateway (the HTTP/JSON API under ``/v3`` that Patroni's etcd3 client and prontuario's
``replication check`` use) is off unless the file turns it on.
"""

from __future__ import annotations

from prontuario_cli.render.common import HEADER, to_yaml
from prontuario_cli.render.spec import NodeSpec


def etcd_config(ns: NodeSpec) -> dict:
    """etcd 3.4's configuration for this node's member (v3 API, zap logger to stderr)."""
    me = ns.etcd_member()
    if me is None:
        raise ValueError(f"{ns.name} is not an etcd member (no ports.etcd_client)")
    return {
        "name": me.name,
        "data-dir": ns.layout.etcd_data,
        "listen-client-urls": me.client_url,
        "advertise-client-urls": me.client_url,
        "listen-peer-urls": me.peer_url,
        "initial-advertise-peer-urls": me.peer_url,
        "initial-cluster": ",".join(f"{m.name}={m.peer_url}" for m in ns.etcd),
        "initial-cluster-state": "new",
        "initial-cluster-token": ns.etcd_token,
        "enable-grpc-gateway": True,
        "logger": "zap",
        "log-outputs": ["stderr"],
    }


def etcd_yaml(ns: NodeSpec) -> str:
    return HEADER + "\n" + to_yaml(etcd_config(ns))


def etcd_argv(ns: NodeSpec) -> list[str]:
    return [ns.binaries.etcd, "--config-file", ns.layout.etcd_config]
