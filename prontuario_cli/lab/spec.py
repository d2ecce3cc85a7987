"""What a lab is: its directory, profile, ports and the components that make it up.

Every port is derived from one base port, so two labs on different base ports
coexist on 127.0.0.1. Port layout (``b`` = base port, ``i`` = node index 0, 1, 2
for mac-studio-1, mac-studio-2, witness)::

    b + 20*i + 0   PostgreSQL        (Macs)
    b + 20*i + 1   Patroni REST API  (Macs)
    b + 20*i + 2   etcd client       (all three)
    b + 20*i + 3   etcd peer         (all three)
    b + 20*i + 4   Redis             (Macs)
    b + 20*i + 5   Sentinel          (all three)
    b + 20*i + 6 / 7 / 8   inference servers llm / stt / face  (Macs, ``--with-serve`` only)
    b + 60 / 61 / 62   HAProxy write / read / stats (one HAProxy, listed on mac-studio-1)
    b + 63         cloud stand-in PostgreSQL (the Cloud SQL replica)
    b + 64         cloud stand-in Admin API (also the HAProxy backup server's check port)

Profiles (the numbers are also written to the lab's cluster.yaml ``health_checks``):

``seed``
    The brief's HAProxy checks for a healthy server: inter 5 s, timeout 2 s, fall 3.
    HAProxy's own checks for a server changing state: fastinter 1 s (the 2nd and 3rd
    failures are confirmed 1 s apart), downinter 1 s and rise 1 (a new primary is UP
    within about a second of Patroni promoting it; /primary answers 200 only to the
    holder of the leader key, so one good check is enough). Patroni ttl 20, loop_wait 2,
    retry_timeout 4 (Patroni's defaults ttl 30 / loop_wait 10 miss the 30 s target).
    Measured RTO (benchmarks/failover): kill -9 of a node about 19-21 s, SIGSTOP about
    22.5 s, graceful stop and switchover 3.4-5 s. Sentinel down-after-milliseconds 5000.
``fast``
    The lowest safe RTO: Patroni 4.1.5 floors ttl at 20 s, so ttl 20, loop_wait 1,
    retry_timeout 4 (loop_wait + 2 x retry_timeout = 9 <= ttl). HAProxy inter 1 s,
    fastinter 500 ms, downinter 1 s, timeout 1 s, fall 2, rise 1 (a Patroni /primary
    answers 200 only while holding the leader key, so one good check is enough).
    Sentinel down-after-milliseconds 2000. Measured node-loss RTO is about ttl + 1 s.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from prontuario_cli.errors import ConfigError

DEFAULT_BASE_PORT = 15000
NODE_NAMES = ("mac-studio-1", "mac-studio-2", "witness")
MACS = NODE_NAMES[:2]
SPEC_FILE = "lab.json"
PG_BIN = "/usr/lib/postgresql/15/bin"


@dataclass(frozen=True)
class Profile:
    """Failover timing knobs: HAProxy checks, Patroni DCS timings, Sentinel detection.

    What each one costs or buys in RTO is tabled in the README ("Failover timings").
    """

    name: str
    inter_s: float
    timeout_s: float
    fall: int
    rise: int
    fastinter_s: float | None
    downinter_s: float | None
    ttl: int
    loop_wait: int
    retry_timeout: int
    sentinel_down_after_ms: int


PROFILES = {
    "seed": Profile("seed", 5.0, 2.0, 3, 1, 1.0, 1.0, ttl=20, loop_wait=2, retry_timeout=4, sentinel_down_after_ms=5000),
    "fast": Profile("fast", 1.0, 1.0, 2, 1, 0.5, 1.0, ttl=20, loop_wait=1, retry_timeout=4, sentinel_down_after_ms=2000),
}


@dataclass(frozen=True)
class Binaries:
    """Executables the lab runs; tests swap one for a bad path to see a start failure named."""

    pg_bin: str = PG_BIN
    patroni: str = ""
    patronictl: str = ""
    python: str = ""
    etcd: str = "/usr/bin/etcd"
    haproxy: str = "/usr/sbin/haproxy"
    redis_server: str = "/usr/bin/redis-server"
    redis_sentinel: str = "/usr/bin/redis-sentinel"

    @classmethod
    def default(cls) -> "Binaries":
        here = Path(sys.executable).parent
        patroni = here / "patroni"
        patronictl = here / "patronictl"
        return cls(
            patroni=str(patroni) if patroni.exists() else (shutil.which("patroni") or str(patroni)),
            patronictl=str(patronictl) if patronictl.exists() else (shutil.which("patronictl") or str(patronictl)),
            python=sys.executable,
        )


# The inference servers a Mac runs with ``--with-serve``: kind -> (model name, the
# inventory's ports field). The names are the inventory's ``serve:`` defaults.
SERVE_KINDS = {"llm": ("medgemma-4b", "medgemma"), "stt": ("whisper-large-v3", "whisper"), "face": ("facenet", "facenet")}


class ServePorts(NamedTuple):
    medgemma: int
    whisper: int
    facenet: int


@dataclass(frozen=True)
class NodePorts:
    postgresql: int | None
    patroni: int | None
    etcd_client: int
    etcd_peer: int
    redis: int | None
    sentinel: int


def audit_log_beside(directory: Path) -> Path:
    """``/var/lib/prontuario/lab`` → ``/var/lib/prontuario/lab-audit.jsonl``."""
    directory = Path(directory)
    return directory.with_name(f"{directory.name}-audit.jsonl")


@dataclass(frozen=True)
class LabSpec:
    """Everything needed to render the lab's files and run it; saved as ``DIR/lab.json``."""

    dir: str
    profile: str = "seed"
    base_port: int = DEFAULT_BASE_PORT
    scope: str = "prontuario"
    redis_master: str = "prontuario"
    database: str = "prontuario"
    project: str = "prontuario-lab"
    region: str = "southamerica-east1"
    sql_instance: str = "prontuario-lab-replica"
    drill_instance: str = "prontuario-lab-drill"
    with_serve: bool = False  # also the inference servers on each Mac, on tiny models built here
    binaries: Binaries = Binaries()

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown lab profile {self.profile!r}", hint=f"choose one of: {', '.join(PROFILES)}")
        if not 1024 <= self.base_port <= 65535 - 100:
            raise ConfigError(f"lab base port {self.base_port} is out of range 1024-65435")

    # ------------------------------------------------------------------ paths

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def timings(self) -> Profile:
        return PROFILES[self.profile]

    def sub(self, *parts: str) -> Path:
        return self.path.joinpath(*parts)

    @property
    def run_dir(self) -> Path:
        return self.sub("run")

    @property
    def log_dir(self) -> Path:
        return self.sub("logs")

    @property
    def inventory_path(self) -> Path:
        return self.sub("cluster.yaml")

    @property
    def audit_log_path(self) -> Path:
        """The lab's own audit log (the lab inventory's ``paths.audit_log``).

        Beside the lab directory, not in it: ``lab down --purge`` deletes the directory,
        and the record of who brought the lab up and down must outlive it.
        """
        return audit_log_beside(Path(self.dir))

    @property
    def haproxy_socket(self) -> Path:
        return self.sub("haproxy.sock")

    @property
    def models_src_dir(self) -> Path:
        """Where the tiny models are built (what ``models pull`` copies from)."""
        return self.sub("models-src")

    @property
    def manifests_dir(self) -> Path:
        return self.sub("model-manifests")

    def store_dir(self, node: str) -> Path:
        """A Mac's model store (its ``models_dir`` in the lab inventory)."""
        return self.sub("models", node)

    @property
    def prontuario(self) -> str:
        """The ``prontuario`` command of the Python the lab runs with."""
        return str(Path(self.binaries.python or sys.executable).parent / "prontuario")

    def pg_data(self, node: str) -> Path:
        return self.sub("pg", node, "data")

    def pg_socket_dir(self, node: str) -> Path:
        return self.sub("pg", node, "socket")

    @property
    def standin_data(self) -> Path:
        return self.sub("cloudsql", "data")

    @property
    def standin_socket_dir(self) -> Path:
        return self.sub("cloudsql", "socket")

    # ------------------------------------------------------------------ ports

    def node_ports(self, node: str) -> NodePorts:
        i = NODE_NAMES.index(node)
        b = self.base_port + 20 * i
        mac = node in MACS
        return NodePorts(
            postgresql=b if mac else None,
            patroni=b + 1 if mac else None,
            etcd_client=b + 2,
            etcd_peer=b + 3,
            redis=b + 4 if mac else None,
            sentinel=b + 5,
        )

    def serve_ports(self, node: str) -> ServePorts | None:
        """The inference servers' ports on a Mac; None on the witness or without serve."""
        if not self.with_serve or node not in MACS:
            return None
        b = self.base_port + 20 * NODE_NAMES.index(node)
        return ServePorts(medgemma=b + 6, whisper=b + 7, facenet=b + 8)

    def serve_port(self, node: str, kind: str) -> int | None:
        ports = self.serve_ports(node)
        return getattr(ports, SERVE_KINDS[kind][1]) if ports else None

    @property
    def haproxy_write_port(self) -> int:
        return self.base_port + 60

    @property
    def haproxy_read_port(self) -> int:
        return self.base_port + 61

    @property
    def haproxy_stats_port(self) -> int:
        return self.base_port + 62

    @property
    def standin_pg_port(self) -> int:
        return self.base_port + 63

    @property
    def standin_api_port(self) -> int:
        return self.base_port + 64

    @property
    def etcd_hosts(self) -> list[str]:
        return [f"127.0.0.1:{self.node_ports(n).etcd_client}" for n in NODE_NAMES]

    # ------------------------------------------------------------------ persistence

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "LabSpec":
        data = json.loads(text)
        binaries = Binaries(**data.pop("binaries", {}))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(binaries=binaries, **{k: v for k, v in data.items() if k in known})

    def save(self) -> None:
        from prontuario_cli.files import write_atomically

        write_atomically(self.sub(SPEC_FILE), self.to_json())


def load_spec(directory: str | os.PathLike) -> LabSpec | None:
    """The spec saved in ``directory``, or None when no lab was ever brought up there."""
    path = Path(directory) / SPEC_FILE
    try:
        return LabSpec.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable lab spec: {exc}", hint="run 'prontuario lab down --purge' and bring the lab up again") from None


def default_dir() -> Path:
    from prontuario_cli.paths import state_dir

    return state_dir() / "lab"
