"""HAProxy: writes to Patroni's ``/primary``, reads to ``/replica`` (falling back to any node
answering ``/read-only``), the cloud fallback as a guarded ``backup`` write server.

The backup's check port must answer 200 only once the cloud replica has really been
promoted: a healthy backup that is still a replica takes writes during a Mac failover
(split brain, seen in the lab).
"""

from __future__ import annotations

from prontuario_cli.render.common import HEADER, seconds
from prontuario_cli.render.spec import NodeSpec


def _stats_socket(socket: str) -> str:
    if socket.startswith("/"):
        return f"    stats socket {socket} mode 600 level admin"
    return f"    stats socket ipv4@{socket} level admin"


def haproxy_cfg(ns: NodeSpec) -> str:
    front = ns.haproxy
    if front is None:
        raise ValueError(f"{ns.name} runs no HAProxy (no ports.haproxy_write / haproxy_read)")
    c = ns.checks
    default_server = [f"inter {seconds(c.inter_s)}"]
    if c.fastinter_s:
        default_server.append(f"fastinter {seconds(c.fastinter_s)}")
    if c.downinter_s:
        default_server.append(f"downinter {seconds(c.downinter_s)}")
    default_server += [
        f"fall {c.fall}",
        f"rise {c.rise}",
        "on-marked-down shutdown-sessions",
        "on-marked-up shutdown-backup-sessions",
    ]
    # A read session may outlive its server's check (a replica is still a valid copy): only
    # the write backend must cut sessions the moment a server is marked down.
    read_server = [option for option in default_server if option != "on-marked-down shutdown-sessions"]
    servers = [f"    server {m.name} {m.address}:{m.postgresql} check port {m.patroni}" for m in ns.macs]
    servers_write = list(servers)
    b = ns.cloud_backup
    if b is not None:
        servers_write.append(f"    server {b.server} {b.address}:{b.port} backup check port {b.check_port}")
    read_any = f"{front.read_backend}_any"
    stats = []
    if front.stats_port is not None:
        stats = [
            "listen stats",
            "    mode http",
            f"    bind {ns.address}:{front.stats_port}",
            "    stats enable",
            "    stats uri /",
            "    stats refresh 5s",
            "",
        ]
    lines = [
        HEADER,
        "global",
        "    maxconn 512",
        _stats_socket(front.socket),
        "",
        "defaults",
        "    mode tcp",
        "    retries 2",
        "    option redispatch 1",
        "    timeout connect 2s",
        "    timeout client 30m",
        "    timeout server 30m",
        f"    timeout check {seconds(c.timeout_s)}",
        "",
        *stats,
        f"listen {front.write_backend}",
        f"    bind {ns.address}:{front.write_port}",
        "    option httpchk",
        "    http-check send meth GET uri /primary",
        "    http-check expect status 200",
        f"    default-server {' '.join(default_server)}",
        *servers_write,
        "",
        # Reads go to the replicas; when none is healthy (one replica down, or its check
        # failed on purpose by the daily health drill) they fall back to any node that
        # takes read-only queries, the primary included: a lost replica costs no reads.
        f"frontend {front.read_backend}_in",
        f"    bind {ns.address}:{front.read_port}",
        f"    use_backend {front.read_backend} if {{ nbsrv({front.read_backend}) gt 0 }}",
        f"    default_backend {read_any}",
        "",
        f"backend {front.read_backend}",
        "    balance roundrobin",
        "    option httpchk",
        "    http-check send meth GET uri /replica",
        "    http-check expect status 200",
        f"    default-server {' '.join(read_server)}",
        *servers,
        "",
        f"backend {read_any}",
        "    balance roundrobin",
        "    option httpchk",
        "    http-check send meth GET uri /read-only",
        "    http-check expect status 200",
        f"    default-server {' '.join(read_server)}",
        *servers,
        "",
    ]
    return "\n".join(lines)


def haproxy_argv(ns: NodeSpec, check_only: bool = False) -> list[str]:
    """Foreground (``-db``): launchd, systemd and the lab each watch HAProxy's own PID;
    ``-c`` only validates the file."""
    cfg = ns.layout.haproxy_config
    return [ns.binaries.haproxy, "-c", "-f", cfg] if check_only else [ns.binaries.haproxy, "-db", "-f", cfg]
