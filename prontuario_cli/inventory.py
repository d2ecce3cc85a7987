"""The inventory: ``cluster.yaml`` loaded into typed, frozen dataclasses.

The YAML is parsed with PyYAML's safe loader into a node tree (so every key keeps
its line number) and converted against the dataclasses below, which are the
schema. Every problem names ``file:line: key.path: what is wrong``; all problems
are collected and reported at once; nothing here raises anything but
:class:`~prontuario_cli.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from prontuario_cli.errors import ConfigError
from prontuario_cli.schema import Converter, code_point, compose, raise_problems, shown

Role = Literal["primary", "secondary", "witness"]
OS = Literal["macos", "debian"]


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives: an environment variable or a file (mode 0600). Never the value."""

    env: str | None = None
    file: str | None = None


@dataclass(frozen=True)
class SSH:
    port: int = 22
    user: str = "prontuario"
    key: str | None = None  # private key path; None = the SSH agent / default keys
    known_hosts: str = "~/.ssh/known_hosts"
    connect_timeout_s: float = 5.0


@dataclass(frozen=True)
class Ports:
    """Service ports on one node; a service a node does not run is left out."""

    postgresql: int | None = None
    patroni: int | None = None
    etcd_client: int | None = None
    etcd_peer: int | None = None
    redis: int | None = None
    sentinel: int | None = None
    haproxy_write: int | None = None
    haproxy_read: int | None = None
    haproxy_stats: int | None = None
    medgemma: int | None = None
    whisper: int | None = None
    facenet: int | None = None


@dataclass(frozen=True)
class Node:
    name: str
    role: Role
    address: str
    os: OS = "macos"
    ssh: SSH = SSH()
    ports: Ports = Ports()
    models_dir: str | None = None  # this node's model store, when not models.store
    docs_dir: str | None = None  # this node's document directory, when not docs.dir


@dataclass(frozen=True)
class Cluster:
    name: str = "prontuario"
    patroni_scope: str = "prontuario"  # Patroni's cluster name (scope)
    redis_master: str = "prontuario"  # the name Sentinel monitors
    database: str = "prontuario"
    postgres_user: str = "postgres"


@dataclass(frozen=True)
class HealthChecks:
    """HAProxy-style health checks (brief: every 5 s, timeout 2 s, 3 failures)."""

    interval_s: float = 5.0
    timeout_s: float = 2.0
    fall: int = 3
    rise: int = 2
    fastinter_s: float | None = None  # HAProxy fastinter: checks while a server is changing state
    downinter_s: float | None = None  # HAProxy downinter: checks while a server is down


@dataclass(frozen=True)
class ScenarioTarget:
    rto_s: float
    rpo_s: float


@dataclass(frozen=True)
class ReplicationLagTargets:
    sync_target_ms: float = 100.0  # brief: synchronous, max replica lag 100 ms
    alert_s: float = 10.0  # brief: DatabaseReplicationLag > 10 s
    alert_bytes: int = 16 * 1024 * 1024  # lag in bytes that also counts (idle primaries)


@dataclass(frozen=True)
class Targets:
    """RTO/RPO per failure scenario, from the brief."""

    primary_lost: ScenarioTarget = ScenarioTarget(rto_s=30, rpo_s=0)
    secondary_lost: ScenarioTarget = ScenarioTarget(rto_s=0, rpo_s=0)
    both_lost: ScenarioTarget = ScenarioTarget(rto_s=300, rpo_s=60)
    site_lost: ScenarioTarget = ScenarioTarget(rto_s=7200, rpo_s=300)
    replication_lag: ReplicationLagTargets = ReplicationLagTargets()


@dataclass(frozen=True)
class CloudData:
    """Direct data path to the cloud replica (the lab, or a private-IP DSN)."""

    host: str
    port: int = 5432
    user: str = "postgres"
    database: str = "prontuario"
    password: SecretRef | None = None


@dataclass(frozen=True)
class CloudReplication:
    """How the Cloud SQL replica follows the Macs: logical decoding with pglogical.

    Cloud SQL replicates from an external server through a *source representation
    instance* (the external server's host and port, held in Cloud SQL) and a pglogical
    subscription. ``source``: the host:port it points at, the address that follows the
    Patroni leader (HAProxy's write frontend). ``slot``: the subscription's logical slot on
    the Macs (pglogical names it ``pgl_<subscriber database>_<provider node>_<subscription>``);
    Patroni keeps it as a permanent slot on both Macs so the subscription survives a
    failover. ``provider_node`` and ``subscription``: the pglogical names on each side.
    """

    source: str | None = None
    slot: str = "pgl_prontuario_onprem_cloudsql"
    provider_node: str = "onprem"
    subscription: str = "cloudsql"


@dataclass(frozen=True)
class Cloud:
    """The emergency-only Cloud SQL fallback."""

    project: str
    region: str
    sql_instance: str
    drill_instance: str | None = None  # a clone or dedicated replica for drills
    api_base_url: str = "https://sqladmin.googleapis.com"
    credentials_file: str | None = None  # service-account JSON; None = default credentials
    data: CloudData | None = None
    haproxy_backup_port: int | None = None  # the fallback's HAProxy check port
    # How ``gcp`` commands reach the database: "dsn" (cloud.data's host and port, psycopg)
    # or "connector" (Cloud SQL Python Connector, private IP); None = dsn for a lab, else connector.
    data_via: Literal["dsn", "connector"] | None = None
    haproxy_server: str = "cloudsql"  # the fallback's (backup) server name in the write and read backends
    api_timeout_s: float = 30.0  # one Admin API request
    operation_timeout_s: float = 900.0  # waiting for a promoteReplica operation to finish
    # Run (without a shell) on promote and failback, the event as JSON on stdin: an argv
    # list, or a command string split like a shell would.
    notify_command: tuple[str, ...] | str | None = None
    replication: CloudReplication = CloudReplication()


@dataclass(frozen=True)
class Secrets:
    postgres_password: SecretRef | None = None
    replication_password: SecretRef | None = None
    redis_password: SecretRef | None = None
    patroni_api_password: SecretRef | None = None


@dataclass(frozen=True)
class Paths:
    """Where prontuario keeps its own files; empty means the built-in default."""

    audit_log: str | None = None
    audit_key: str | None = None  # the audit log's HMAC key (0600); None: beside the log, <log>.key
    state_dir: str | None = None
    reports_dir: str | None = None
    metrics_textfile: str | None = None


@dataclass(frozen=True)
class HAProxy:
    """Where HAProxy's runtime API answers, and the names of its write and read proxies.

    ``socket`` is a unix socket path (``stats socket PATH``) or ``HOST:PORT`` for a TCP
    runtime API. Left out: ``<lab.dir>/haproxy.sock`` for a lab inventory, otherwise
    each node's stats page (``ports.haproxy_stats``, CSV export) is read instead.
    """

    socket: str | None = None
    write_backend: str = "write"
    read_backend: str = "read"


@dataclass(frozen=True)
class PeerSSH:
    """How one Mac reaches the other for model bytes (paths on the Macs themselves)."""

    key: str = "/var/lib/prontuario/.ssh/id_ed25519"
    known_hosts: str = "/var/lib/prontuario/.ssh/known_hosts"
    user: str | None = None  # default: the target node's ssh.user


@dataclass(frozen=True)
class Models:
    """Where the model manifests and each node's model store are, and the tools on the nodes.

    ``manifests``: a directory of ``NAME.yaml`` (default: ``models/`` beside the inventory).
    ``store``: the store root on every node (a node's ``models_dir`` overrides it).
    ``prontuario`` and ``rsync``: the programs run on the nodes (rsync ≥ 3.1 from Homebrew
    on the Macs: macOS's own /usr/bin/rsync is openrsync and is refused).
    """

    manifests: str | None = None
    store: str = "/opt/prontuario/models"
    prontuario: str = "prontuario"
    rsync: str = "rsync"
    peer_ssh: PeerSSH = PeerSSH()
    timeout_s: float = 3600.0  # one node-side step (a verify or a transfer)


@dataclass(frozen=True)
class Docs:
    """Document storage: the leader Mac's directory pushed to the other Mac with rsync (the primary wins).

    ``dir``: the document directory on every Mac (a node's ``docs_dir`` overrides it).
    ``interval_s``: how often each Mac's job runs ``docs sync --once`` (the brief: 5 s).
    ``timeout_s``: one whole rsync run, killed after it; ``io_timeout_s``: rsync's own
    ``--timeout`` (no data moving for that long ends the run). ``max_delete``: rsync's
    ``--max-delete``, a brake on what one run may delete on the other Mac.
    ``keep_replaced``: what a push deletes or overwrites on the other Mac is moved into
    ``.prontuario-replaced/<UTC time>/`` there instead of being lost (the documents a
    failed primary held in its last seconds survive the new leader's first push).
    ``stale_warning_s`` / ``stale_critical_s``: the age of the last successful sync at
    which ``docs status`` warns / is critical. ``rsync`` and ``peer_ssh`` default to
    ``models.rsync`` and ``models.peer_ssh`` (the same key and known_hosts between the Macs).
    """

    dir: str = "/var/lib/prontuario/documents"
    interval_s: float = 5.0
    timeout_s: float = 300.0
    io_timeout_s: int = 30
    max_delete: int = 1000
    keep_replaced: bool = True
    stale_warning_s: float = 30.0
    stale_critical_s: float = 300.0
    rsync: str | None = None
    peer_ssh: PeerSSH | None = None


@dataclass(frozen=True)
class Serve:
    """Which model each inference server loads and how the servers run on the Macs.

    ``host``: where they listen (127.0.0.1: HAProxy on the same Mac in front; another
    address only on purpose). ``match_threshold``: the FaceNet distance (L2 between unit
    embeddings) under which two faces are the same person.
    """

    llm: str = "medgemma-4b"
    stt: str = "whisper-large-v3"
    face: str = "facenet"
    host: str = "127.0.0.1"
    match_threshold: float = 1.0
    log_dir: str = "/var/log/prontuario"
    user: str | None = None


@dataclass(frozen=True)
class Lab:
    """Present when the inventory describes a loopback lab made by ``lab up``."""

    dir: str


@dataclass(frozen=True)
class Inventory:
    nodes: tuple[Node, ...]
    version: int = 1
    cluster: Cluster = Cluster()
    health_checks: HealthChecks = HealthChecks()
    targets: Targets = Targets()
    cloud: Cloud | None = None
    secrets: Secrets = Secrets()
    paths: Paths = Paths()
    haproxy: HAProxy = HAProxy()
    models: Models = Models()
    docs: Docs = Docs()
    serve: Serve = Serve()
    lab: Lab | None = None
    # Not part of the file: filled in by the loader.
    source: str = field(default="", metadata={"schema": False})
    warnings: tuple[str, ...] = field(default=(), metadata={"schema": False})

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes)
        raise ConfigError(f"no node named {name!r} in {self.source} (nodes: {known})")

    @property
    def macs(self) -> tuple[Node, ...]:
        """The data nodes (primary and secondary), in inventory order."""
        return tuple(n for n in self.nodes if n.role != "witness")

    @property
    def primary(self) -> Node:
        return next(n for n in self.nodes if n.role == "primary")


# --------------------------------------------------------------------------- lookup

ENV_VAR = "PRONTUARIO_INVENTORY"


def candidate_paths(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Where the inventory is looked for, in order."""
    if explicit:
        return [Path(explicit).expanduser()]
    if os.environ.get(ENV_VAR):
        return [Path(os.environ[ENV_VAR]).expanduser()]
    return [Path("cluster.yaml"), Path("~/.config/prontuario/cluster.yaml").expanduser()]


def find_inventory(explicit: str | os.PathLike | None = None) -> Path:
    paths = candidate_paths(explicit)
    for path in paths:
        if path.is_file():
            return path
    if explicit or os.environ.get(ENV_VAR):
        if paths[0].is_dir():
            raise ConfigError(f"the inventory {paths[0]} is a directory, not a file", hint="give the path of cluster.yaml itself")
        if paths[0].exists():
            raise ConfigError(f"the inventory {paths[0]} is not a regular file (a device, pipe or socket)")
        raise ConfigError(f"inventory not found: {paths[0]}", hint="check the path given by --inventory or $PRONTUARIO_INVENTORY")
    looked = ", ".join(str(p) for p in paths)
    raise ConfigError(f"no inventory found (looked in {looked})", hint="pass --inventory PATH or set $PRONTUARIO_INVENTORY")


def load_inventory(explicit: str | os.PathLike | None = None) -> Inventory:
    """Find, parse and validate the inventory; raise ConfigError listing every problem."""
    from prontuario_cli.schema import read_document

    path = find_inventory(explicit)
    return parse_inventory(read_document(path, "inventory"), str(path))


SECRETS_REFUSED = {SecretRef: "secrets are never written in cluster.yaml: use {env: VARIABLE} or {file: /path/mode-0600}"}


def _converter(source: str, lenient: bool = False) -> Converter:
    return Converter(source, lenient=lenient, scalar_refused=SECRETS_REFUSED)


def parse_inventory(text: str, source: str = "cluster.yaml") -> Inventory:
    root = compose(text, source, "inventory")
    conv = _converter(source)
    data = conv.convert(root, Inventory, "")
    warnings: list[str] = []
    if data is None:
        # Still check what did convert, so every problem is listed at once.
        partial = _partial_inventory(root, source)
        problems = conv.problems + (_validate(partial, conv, warnings, partial=True) if partial else [])
        _raise(source, problems)
    problems = _validate(data, conv, warnings)
    if problems:
        _raise(source, problems)
    return dataclasses.replace(data, source=source, warnings=tuple(warnings))


def _partial_inventory(root, source: str) -> Inventory | None:
    """The parts of a broken inventory that convert cleanly (defaults elsewhere)."""
    import yaml

    if not isinstance(root, yaml.MappingNode):
        return None
    hints = typing.get_type_hints(Inventory)
    values: dict[str, object] = {"nodes": ()}
    for key_node, value_node in root.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        key = key_node.value
        if key not in hints or key in ("source", "warnings"):
            continue
        if key == "nodes" and isinstance(value_node, yaml.SequenceNode):
            items = [_converter(source, lenient=True).convert(item, Node, "") for item in value_node.value]
            if None in items:  # indexes would no longer match the file: skip node checks
                continue
            values["nodes"] = tuple(items)
            continue
        value = _converter(source, lenient=True).convert(value_node, hints[key], key)
        if value is not None:
            values[key] = value
    return Inventory(**values)


def _raise(source: str, problems: list[str]) -> typing.NoReturn:
    raise_problems(source, problems, "inventory")


# --------------------------------------------------------------------------- validation


def _validate(inv: Inventory, conv: Converter, warnings: list[str], partial: bool = False) -> list[str]:
    """Checks across keys; with ``partial`` only those that cannot be fooled by missing parts."""
    problems: list[str] = []
    src = conv.source

    def add(keypath: str, message: str) -> None:
        problems.append(f"{src}:{conv.line_of(keypath)}: {keypath}: {message}")

    if inv.version != 1:
        add("version", f"unsupported inventory version {inv.version} (this prontuario reads version 1)")
    if not inv.nodes and not partial:
        add("nodes", "at least one node is required")

    seen_names: dict[str, int] = {}
    for i, node in enumerate(inv.nodes):
        if node.name in seen_names:
            add(f"nodes[{i}].name", f"duplicate node name {node.name!r} (also nodes[{seen_names[node.name]}])")
        else:
            seen_names[node.name] = i
        if not node.name or any(c.isspace() for c in node.name):
            add(f"nodes[{i}].name", f"node name {shown(node.name)} must be non-empty and without spaces")
        elif not node.name.isprintable():
            bad = next(c for c in node.name if not c.isprintable())
            add(f"nodes[{i}].name", f"character {node.name.index(bad) + 1} of the node name is {code_point(bad)}: names must be printable")
        if not node.address:
            add(f"nodes[{i}].address", "address must not be empty")
        elif problem := address_problem(node.address):
            add(f"nodes[{i}].address", problem)

    primaries = [i for i, n in enumerate(inv.nodes) if n.role == "primary"]
    if len(primaries) > 1:
        names = ", ".join(inv.nodes[i].name for i in primaries)
        add(f"nodes[{primaries[1]}].role", f"two primaries ({names}): exactly one node may be the primary")
    elif inv.nodes and not primaries and not partial:
        add("nodes", "no node has role: primary")
    if inv.nodes and not any(n.role == "witness" for n in inv.nodes):
        warnings.append(
            f"{src}: no witness node: with two voters, losing one Mac loses quorum and failover "
            "cannot be automatic or safe (add a small always-on witness running etcd and a Sentinel)"
        )

    used: dict[tuple[str, int], str] = {}
    for i, node in enumerate(inv.nodes):
        for f in dataclasses.fields(Ports):
            port = getattr(node.ports, f.name)
            if port is None:
                continue
            keypath = f"nodes[{i}].ports.{f.name}"
            if not 1 <= port <= 65535:
                continue  # said by number_problem
            owner = used.get((node.address, port))
            if owner:
                add(keypath, f"port clash: {node.address}:{port} is also {owner}")
            else:
                used[(node.address, port)] = keypath

    for keypath, value in numbers(inv):
        problem = number_problem(keypath, value)
        if problem:
            add(keypath, problem)

    hc = inv.health_checks
    if 0 < hc.interval_s < hc.timeout_s:
        add("health_checks.timeout_s", f"timeout {hc.timeout_s:g} s is longer than the interval {hc.interval_s:g} s")

    for keypath, ref in secret_refs(inv):
        if (ref.env is None) == (ref.file is None):
            add(keypath, "give exactly one of env: or file:")
        elif ref.env is not None and not ref.env.strip():
            add(keypath, "env: names no variable (give the name of the environment variable that holds it)")
        elif ref.file is not None and not ref.file.strip():
            add(keypath, "file: names no file (give the path of the 0600 file that holds it)")

    cloud = inv.cloud
    if cloud is not None:
        if cloud.drill_instance and cloud.drill_instance == cloud.sql_instance:
            add("cloud.drill_instance", "the drill target must not be the live replica (cloud.sql_instance)")
        if not cloud.api_base_url.startswith(("https://", "http://")):
            add("cloud.api_base_url", f"{cloud.api_base_url!r} is not an http(s) URL")
        if cloud.notify_command is not None and not (
            cloud.notify_command.strip() if isinstance(cloud.notify_command, str) else cloud.notify_command
        ):
            add("cloud.notify_command", "must not be empty (leave it out for no notification)")
        if cloud.data is not None and (problem := address_problem(cloud.data.host)):
            add("cloud.data.host", problem)
    if problem := address_problem(inv.serve.host):
        add("serve.host", problem)
    _validate_docs(inv, add)
    return problems


def _validate_docs(inv: Inventory, add) -> None:
    """The ``docs:`` section and the nodes' ``docs_dir``: positive times, absolute directories
    (never ``/``: the push deletes on the other Mac what the leader does not hold)."""
    docs = inv.docs
    if 0 < docs.stale_warning_s < docs.interval_s:
        add("docs.stale_warning_s", f"{docs.stale_warning_s:g} s is shorter than the interval {docs.interval_s:g} s: it would always warn")
    if docs.stale_critical_s < docs.stale_warning_s:
        add("docs.stale_critical_s", f"{docs.stale_critical_s:g} s is shorter than stale_warning_s {docs.stale_warning_s:g} s")
    dirs = [("docs.dir", docs.dir)] + [(f"nodes[{i}].docs_dir", n.docs_dir) for i, n in enumerate(inv.nodes) if n.docs_dir is not None]
    for keypath, directory in dirs:
        if not directory.startswith("/"):
            add(keypath, f"{directory!r} must be an absolute path")
        elif directory.rstrip("/") == "":
            add(keypath, "must not be / (a sync deletes on the other Mac whatever the leader's directory lacks)")


def secret_refs(inv: Inventory):
    """(key path, SecretRef) for every secret the inventory names."""
    for f in dataclasses.fields(Secrets):
        ref = getattr(inv.secrets, f.name)
        if ref is not None:
            yield f"secrets.{f.name}", ref
    if inv.cloud and inv.cloud.data and inv.cloud.data.password:
        yield "cloud.data.password", inv.cloud.data.password


# --------------------------------------------------------------------------- numbers and addresses

DAY_S = 86400


def numbers(value, keypath: str = ""):
    """(key path, value) for every int and float in the inventory, nested ones included."""
    if isinstance(value, tuple):
        for i, item in enumerate(value):
            yield from numbers(item, f"{keypath}[{i}]")
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            if f.metadata.get("schema", True):
                yield from numbers(getattr(value, f.name), f"{keypath}.{f.name}" if keypath else f.name)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield keypath, value


def number_range(keypath: str) -> tuple[float, bool, float, str] | None:
    """The sane range of a number by its key: (lowest, lowest excluded?, highest, unit).

    Every number is finite (the converter refuses .inf and .nan); here each kind gets its
    bounds: times and intervals more than 0 and at most a day, ports 1-65535, counts and
    bytes not negative and within what the programs that read them take. None: not a
    number this knows (``version`` has its own check; a test keeps every field covered).
    """
    name = keypath.rsplit(".", 1)[-1]
    if name == "version":
        return None
    if ".ports." in keypath or name == "port" or name.endswith("_port"):
        return (1, False, 65535, "port")
    if name in ("fall", "rise"):
        return (1, False, 1000, "checks")
    if name == "max_delete":
        return (0, False, 2**31 - 1, "files")
    if name == "alert_bytes":
        return (0, False, 2**63 - 1, "bytes")
    if name in ("rto_s", "rpo_s"):
        return (0, False, DAY_S, "s")
    if name.endswith("_s"):
        return (0, True, DAY_S, "s")
    if name.endswith("_ms"):
        return (0, True, DAY_S * 1000, "ms")
    if name == "match_threshold":
        return (0, True, 2, "")  # the distance between two unit vectors is at most 2
    return None


def number_problem(keypath: str, value: float) -> str | None:
    """What is wrong with a number of the inventory, or None."""
    bounds = number_range(keypath)
    if bounds is None:
        return None
    low, low_excluded, high, unit = bounds
    if unit == "port":
        return None if low <= value <= high else f"port {_number(value)} is out of range 1-65535"
    if value < low or (low_excluded and value == low):
        if low_excluded:
            return f"must be greater than {low:g}"
        return "must not be negative" if low == 0 else f"must be at least {low:g}"
    if value > high:
        if unit in ("s", "ms"):
            return f"{_number(value)} {unit} is more than a day (at most {high:g} {unit})"
        return f"{_number(value)} is more than the most allowed, {high:g}{f' {unit}' if unit else ''}"
    return None


def _number(value: float) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 24 else text[:20] + f"… ({len(text)} digits)"


_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def address_problem(text: str) -> str | None:
    """Why ``text`` is not an IPv4 or IPv6 address or an RFC 1123 host name, or None.

    An address ends up in SSH command lines, HAProxy and Patroni configs and URLs: a
    URL, a ``host:port`` or words with spaces and ``;`` would each break one of them.
    """
    import ipaddress

    try:
        ipaddress.ip_address(text)
        return None
    except ValueError:
        pass
    what = f"{shown(text)} is not an IPv4 or IPv6 address or a host name"
    if "://" in text:
        return f"{what}: it is a URL; give only the host"
    if text.startswith("[") and text.endswith("]"):
        return f"{what}: write an IPv6 address without brackets"
    host, colon, port = text.rpartition(":")
    if colon and port.isdigit() and ":" not in host:
        return f"{what}: give the host only ({shown(host)}); the ports go under ports:"
    labels = text[:-1].split(".") if text.endswith(".") else text.split(".")
    if len(text) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels):
        if labels[-1].isdigit():
            return f"{shown(text)} is not a valid IPv4 address"
        return None
    return f"{what} (RFC 1123: letters, digits and '-', in labels separated by dots)"
