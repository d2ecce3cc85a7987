"""What to render for one node: :class:`NodeSpec`, built from an inventory and a :class:`Site`.

The inventory holds what every command needs (addresses, ports, roles, the etcd
members, the witness, HAProxy's health checks, the cloud fallback). A :class:`Site`
holds what only the machines need: where files and programs live (:class:`Layout`,
:class:`Binaries`), how fast Patroni and Sentinel react (:class:`SiteTimings`) and a
short, named list of local policy (:class:`Policy`). :func:`from_inventory` resolves
both into one flat, frozen :class:`NodeSpec`; every renderer reads only that, so a
production Mac and the loopback lab go through the same code with different numbers.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from pathlib import PurePosixPath

from prontuario_cli.errors import ConfigError
from prontuario_cli.inventory import Inventory, Ports

REPLICATION_USER = "replicator"


@dataclass(frozen=True)
class Layout:
    """Every path one node's services read or write (absolute, as strings)."""

    patroni_config: str
    pg_data: str
    pg_socket_dir: str
    pgpass: str
    etcd_config: str
    etcd_data: str
    redis_config: str
    redis_dir: str
    sentinel_config: str
    sentinel_dir: str
    haproxy_config: str
    haproxy_socket: str
    log_dir: str

    @classmethod
    def under(cls, config_dir: str, data_dir: str, log_dir: str) -> Layout:
        """The production layout: read-only configs in ``config_dir``, state in ``data_dir``.

        Redis and Sentinel rewrite their own files (a failover changes ``replicaof`` and
        the monitored master), so those two live with their data, not with the configs.
        """
        c, d = PurePosixPath(config_dir), PurePosixPath(data_dir)
        return cls(
            patroni_config=str(c / "patroni.yml"),
            pg_data=str(d / "postgresql" / "data"),
            pg_socket_dir=str(d / "postgresql" / "socket"),
            pgpass=str(d / "postgresql" / "pgpass"),
            etcd_config=str(c / "etcd.yml"),
            etcd_data=str(d / "etcd"),
            redis_config=str(d / "redis" / "redis.conf"),
            redis_dir=str(d / "redis"),
            sentinel_config=str(d / "sentinel" / "sentinel.conf"),
            sentinel_dir=str(d / "sentinel"),
            haproxy_config=str(c / "haproxy.cfg"),
            haproxy_socket=str(d / "haproxy.sock"),
            log_dir=log_dir,
        )


@dataclass(frozen=True)
class Binaries:
    """The programs the services run."""

    pg_bin: str
    patroni: str
    etcd: str
    haproxy: str
    redis_server: str
    redis_sentinel: str


@dataclass(frozen=True)
class SiteTimings:
    """How fast Patroni and Sentinel react (HAProxy's checks are the inventory's ``health_checks``)."""

    ttl: int = 20
    loop_wait: int = 2
    retry_timeout: int = 4
    sentinel_down_after_ms: int = 5000
    sentinel_failover_timeout_ms: int = 30000


@dataclass(frozen=True)
class Policy:
    """The only settings allowed to differ between the lab and production apart from
    addresses, ports, paths and timings (``tests/render`` pins that)."""

    pg_auth_method: str = "scram-sha-256"  # the lab: trust on loopback, no secrets
    initdb_no_sync: bool = False  # skip initdb's fsync: only where a lost bootstrap costs nothing
    redis_persistence: bool = True  # a Redis restarted empty must not wipe its replica by resyncing
    etcd_token: str | None = None  # etcd's initial-cluster-token; None: derived from the cluster name
    postgres_user: str | None = "postgres"  # the user Patroni (and PostgreSQL) runs as
    service_user: str | None = "prontuario"  # the user etcd, Redis, Sentinel and HAProxy run as
    init: str | None = None  # launchd or systemd; None: by the node's os


@dataclass(frozen=True)
class Site:
    """What the inventory does not say about one node."""

    layout: Layout
    binaries: Binaries
    timings: SiteTimings = SiteTimings()
    policy: Policy = Policy()


PRODUCTION_TIMINGS = SiteTimings()

MACOS_BINARIES = Binaries(
    pg_bin="/opt/homebrew/opt/postgresql@15/bin",
    patroni="/opt/prontuario/venv/bin/patroni",
    etcd="/opt/homebrew/opt/etcd/bin/etcd",
    haproxy="/opt/homebrew/opt/haproxy/bin/haproxy",
    redis_server="/opt/homebrew/opt/redis/bin/redis-server",
    redis_sentinel="/opt/homebrew/opt/redis/bin/redis-sentinel",
)
DEBIAN_BINARIES = Binaries(
    pg_bin="/usr/lib/postgresql/15/bin",
    patroni="/opt/prontuario/venv/bin/patroni",
    etcd="/usr/bin/etcd",
    haproxy="/usr/sbin/haproxy",
    redis_server="/usr/bin/redis-server",
    redis_sentinel="/usr/bin/redis-sentinel",
)


def production_site(os_name: str) -> Site:
    """The default site of a production node: Homebrew on the Macs, Debian packages on the witness."""
    if os_name == "macos":
        layout = Layout.under("/opt/prontuario/etc", "/opt/prontuario/data", "/opt/prontuario/log")
        return Site(layout=layout, binaries=MACOS_BINARIES, timings=PRODUCTION_TIMINGS)
    if os_name == "debian":
        layout = Layout.under("/etc/prontuario", "/var/lib/prontuario", "/var/log/prontuario")
        return Site(layout=layout, binaries=DEBIAN_BINARIES, timings=PRODUCTION_TIMINGS)
    raise ConfigError(f"no production site for os {os_name!r}", hint="os is macos or debian")


# --------------------------------------------------------------------------- the neutral input


@dataclass(frozen=True)
class DataNode:
    """A Mac as its peers see it."""

    name: str
    address: str
    postgresql: int
    patroni: int
    redis: int | None


@dataclass(frozen=True)
class EtcdMember:
    name: str
    address: str
    client_port: int
    peer_port: int

    @property
    def client_url(self) -> str:
        return f"http://{self.address}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.address}:{self.peer_port}"


@dataclass(frozen=True)
class Checks:
    """HAProxy's health checks (the inventory's ``health_checks``)."""

    inter_s: float
    timeout_s: float
    fall: int
    rise: int
    fastinter_s: float | None = None
    downinter_s: float | None = None


@dataclass(frozen=True)
class HAProxyFront:
    write_port: int
    read_port: int
    stats_port: int | None
    socket: str  # a unix socket path, or HOST:PORT
    write_backend: str
    read_backend: str


@dataclass(frozen=True)
class CloudBackup:
    """The Cloud SQL fallback as HAProxy's ``backup`` write server."""

    server: str
    address: str
    port: int
    check_port: int


@dataclass(frozen=True)
class NodeSpec:
    """Everything the renderers need for one node, resolved."""

    name: str
    role: str
    os: str
    address: str
    ports: Ports
    scope: str
    redis_master: str
    postgres_user: str
    macs: tuple[DataNode, ...]
    redis_primary: DataNode | None  # where Redis starts as primary: the inventory's primary
    etcd: tuple[EtcdMember, ...]
    sentinel_quorum: int
    checks: Checks
    haproxy: HAProxyFront | None
    cloud_backup: CloudBackup | None
    pg_hba_hosts: tuple[str, ...]
    layout: Layout
    binaries: Binaries
    timings: SiteTimings
    policy: Policy
    database: str = "prontuario"  # the application database (the cloud subscription's)
    # The cloud subscription's logical slot, kept by Patroni on both Macs; None without a cloud.
    cloud_slot: str | None = None

    @property
    def is_mac(self) -> bool:
        return self.role != "witness"

    @property
    def init(self) -> str:
        return self.policy.init or ("launchd" if self.os == "macos" else "systemd")

    @property
    def etcd_token(self) -> str:
        return self.policy.etcd_token or f"prontuario-{self.scope}"

    def etcd_member(self) -> EtcdMember | None:
        return next((m for m in self.etcd if m.name == self.name), None)


def _hba_host(address: str) -> str:
    """An address as a pg_hba host field: one IP as /32 or /128, a hostname as is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return f"{ip}/{ip.max_prefixlen}"


def _unique(items) -> tuple:
    return tuple(dict.fromkeys(items))


def from_inventory(inventory: Inventory, node_name: str, site: Site | None = None) -> NodeSpec:
    """Resolve one node of ``inventory`` (with ``site``, or the production default for its os)."""
    node = inventory.node(node_name)
    site = site or production_site(node.os)
    problems = []
    macs = []
    for mac in inventory.macs:
        if mac.ports.postgresql is None or mac.ports.patroni is None:
            problems.append(f"{mac.name}: ports.postgresql and ports.patroni are required on a data node")
            continue
        macs.append(DataNode(mac.name, mac.address, mac.ports.postgresql, mac.ports.patroni, mac.ports.redis))
    etcd = []
    for member in inventory.nodes:
        if member.ports.etcd_client is not None:
            if member.ports.etcd_peer is None:
                problems.append(f"{member.name}: ports.etcd_peer is required with ports.etcd_client")
                continue
            etcd.append(EtcdMember(member.name, member.address, member.ports.etcd_client, member.ports.etcd_peer))
    if problems:
        raise ConfigError(f"{inventory.source}: cannot render {node_name}: " + "; ".join(problems))
    primary = inventory.primary
    redis_primary = next((m for m in macs if m.name == primary.name and m.redis is not None), None)
    sentinels = [n for n in inventory.nodes if n.ports.sentinel is not None]
    hc = inventory.health_checks
    checks = Checks(hc.interval_s, hc.timeout_s, hc.fall, hc.rise, hc.fastinter_s, hc.downinter_s)
    haproxy = None
    if node.ports.haproxy_write is not None and node.ports.haproxy_read is not None:
        haproxy = HAProxyFront(
            write_port=node.ports.haproxy_write,
            read_port=node.ports.haproxy_read,
            stats_port=node.ports.haproxy_stats,
            socket=inventory.haproxy.socket or site.layout.haproxy_socket,
            write_backend=inventory.haproxy.write_backend,
            read_backend=inventory.haproxy.read_backend,
        )
    cloud = inventory.cloud
    backup = None
    # The fallback is a write server only with a check port: what answers there must say 200
    # only once the cloud replica has really been promoted (a healthy backup that is still a
    # replica takes writes during a Mac failover: split brain).
    if cloud is not None and cloud.data is not None and cloud.haproxy_backup_port is not None:
        backup = CloudBackup(cloud.haproxy_server, cloud.data.host, cloud.data.port, cloud.haproxy_backup_port)
    hba = [m.address for m in macs] + ([backup.address] if backup else [])
    return NodeSpec(
        name=node.name,
        role=node.role,
        os=node.os,
        address=node.address,
        ports=node.ports,
        scope=inventory.cluster.patroni_scope,
        redis_master=inventory.cluster.redis_master,
        postgres_user=inventory.cluster.postgres_user,
        macs=tuple(macs),
        redis_primary=redis_primary,
        etcd=tuple(etcd),
        sentinel_quorum=len(sentinels) // 2 + 1,
        checks=checks,
        haproxy=haproxy,
        cloud_backup=backup,
        pg_hba_hosts=_unique(_hba_host(a) for a in hba),
        layout=site.layout,
        binaries=site.binaries,
        timings=site.timings,
        policy=site.policy,
        database=inventory.cluster.database,
        cloud_slot=cloud.replication.slot if cloud is not None else None,
    )


def with_policy(site: Site, **changes) -> Site:
    """``site`` with some policy fields changed."""
    return dataclasses.replace(site, policy=dataclasses.replace(site.policy, **changes))
