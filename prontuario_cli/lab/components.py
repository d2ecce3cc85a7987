"""The lab's components: name, kind, node, port and the process that runs each.

Names are stable (tests, drills and shell completion use them)::

    etcd-mac-studio-1  etcd-mac-studio-2  etcd-witness
    patroni-mac-studio-1  patroni-mac-studio-2
    postgres-mac-studio-1  postgres-mac-studio-2   (started by Patroni; PID from postmaster.pid)
    redis-mac-studio-1  redis-mac-studio-2
    sentinel-mac-studio-1  sentinel-mac-studio-2  sentinel-witness
    haproxy  cloudsql-replica  cloudsql-api
    serve-llm-mac-studio-1  serve-stt-mac-studio-1  serve-face-mac-studio-1   (and mac-studio-2;
                                                    only in a lab made with --with-serve)
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from prontuario_cli.lab import config
from prontuario_cli.lab.procs import Proc
from prontuario_cli.lab.spec import MACS, NODE_NAMES, SERVE_KINDS, LabSpec


@dataclass(frozen=True)
class Component:
    name: str
    kind: str  # etcd, patroni, postgres, redis, sentinel, haproxy, cloudsql-replica, cloudsql-api, serve
    node: str | None
    port: int | None
    proc: Proc | None  # None for PostgreSQL under Patroni: Patroni starts it


def components(spec: LabSpec) -> dict[str, Component]:
    """Every component of the lab, in start order."""
    out: dict[str, Component] = {}

    def proc(name: str, argv: list[str], *markers: str, **kw) -> Proc:
        return Proc(
            name=name,
            argv=tuple(argv),
            pidfile=spec.run_dir / f"{name}.pid",
            log=spec.log_dir / f"{name}.log",
            markers=markers,
            **kw,
        )

    for node in NODE_NAMES:
        name = f"etcd-{node}"
        data = str(spec.sub("etcd", node))
        out[name] = Component(name, "etcd", node, spec.node_ports(node).etcd_client, proc(name, config.etcd_argv(spec, node), data))
    for node in MACS:
        name = f"redis-{node}"
        port = spec.node_ports(node).redis
        out[name] = Component(name, "redis", node, port, proc(name, config.redis_argv(spec, node), f"127.0.0.1:{port}", str(spec.sub("redis", node))))
    for node in NODE_NAMES:
        name = f"sentinel-{node}"
        port = spec.node_ports(node).sentinel
        out[name] = Component(name, "sentinel", node, port, proc(name, config.sentinel_argv(spec, node), f"127.0.0.1:{port}", str(spec.sub("sentinel", node))))
    for node in MACS:
        name = f"patroni-{node}"
        cfg = str(spec.sub("patroni", f"{node}.yml"))
        out[name] = Component(
            name, "patroni", node, spec.node_ports(node).patroni, proc(name, config.patroni_argv(spec, node), cfg, as_postgres=True)
        )
        pg = f"postgres-{node}"
        out[pg] = Component(pg, "postgres", node, spec.node_ports(node).postgresql, None)
    out["haproxy"] = Component(
        "haproxy", "haproxy", None, spec.haproxy_write_port, proc("haproxy", config.haproxy_argv(spec), str(spec.sub("haproxy")))
    )
    out["cloudsql-api"] = Component(
        "cloudsql-api",
        "cloudsql-api",
        None,
        spec.standin_api_port,
        proc("cloudsql-api", config.standin_api_argv(spec), str(spec.sub("cloudsql", "standin.json"))),
    )
    out["cloudsql-replica"] = Component(
        "cloudsql-replica",
        "cloudsql-replica",
        None,
        spec.standin_pg_port,
        proc(
            "cloudsql-replica",
            config.standin_pg_argv(spec),
            str(spec.standin_data),
            as_postgres=True,
            stop_signal=signal.SIGINT,
        ),
    )
    if spec.with_serve:
        for node in MACS:
            for kind in SERVE_KINDS:
                name = f"serve-{kind}-{node}"
                out[name] = Component(name, "serve", node, spec.serve_port(node, kind),
                                      proc(name, config.serve_argv(spec, node, kind), str(spec.store_dir(node))))
    return out


def serve_components(spec: LabSpec) -> list[Component]:
    """The inference servers (none unless the lab was made with ``--with-serve``)."""
    return [c for c in components(spec).values() if c.kind == "serve"]


def component_names(spec: LabSpec | None = None) -> list[str]:
    """All component names (the spec only changes ports, never names)."""
    from prontuario_cli.lab.spec import LabSpec as _Spec

    return list(components(spec or _Spec(dir="/nonexistent")).keys())


def log_of(spec: LabSpec, name: str):
    """The log file of a component; PostgreSQL under Patroni logs into Patroni's log."""
    comps = components(spec)
    comp = comps[name]
    if comp.kind == "postgres":
        return comps[f"patroni-{comp.node}"].proc.log
    return comp.proc.log
