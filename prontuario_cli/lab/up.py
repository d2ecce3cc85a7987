"""``lab up``: prepare the directory, start what is not running, wait until all is healthy.

Idempotent by construction: a component whose pidfile names a live process running
its command is left alone; every wait is a bounded poll that returns at once when
the thing is already true, so a second ``up`` on a healthy lab takes about a second.

A *fresh* lab (no PostgreSQL data yet) starts from wiped etcd, Redis and stand-in
state (old etcd data carries old cluster state and a paused flag). A lab whose data
was kept by ``lab down`` restarts from its data and resumes Patroni, which ``down``
paused.

A lab made ``--with-serve`` also builds its tiny models, installs them in each Mac's
store (:mod:`.serving`) and, once the database side has settled, starts the inference
servers and waits until each answers ``/ready`` 200.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

from prontuario_cli.errors import OperationFailed, PermissionProblem, UnavailableError
from prontuario_cli.files import write_atomically
from prontuario_cli.lab import config, health
from prontuario_cli.lab.components import Component, components
from prontuario_cli.lab.procs import alive, as_postgres_argv, log_tail, running_pid, start
from prontuario_cli.lab.spec import MACS, NODE_NAMES, LabSpec
from prontuario_cli.poll import Progress, reported

Say = Callable[[str], None]

# Bounds for each wait (seconds). Generous: a loaded 2-core machine is slower than a laptop.
ETCD_TIMEOUT = 30
LEADER_TIMEOUT = 90
SYNC_TIMEOUT = 120
HAPROXY_TIMEOUT = 60
STANDIN_TIMEOUT = 120
REDIS_TIMEOUT = 30
SENTINEL_TIMEOUT = 60
# Last wait: until 'replication check' would say OK. HAProxy may need rise checks at
# its slowest interval for a server that failed its first check, then some slack.
SETTLED_TIMEOUT = 60
# An inference server loads its model (mlx, onnxruntime) before /ready says 200; six of
# them start together on the lab's cores.
SERVE_TIMEOUT = 180


def is_fresh(spec: LabSpec) -> bool:
    return not any((spec.pg_data(node) / "PG_VERSION").exists() for node in MACS)


# --------------------------------------------------------------------------- preparing files


def _postgres_ids() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def _own(path: Path, mode: int | None = None) -> None:
    ids = _postgres_ids()
    if ids:
        os.chown(path, *ids)
    if mode is not None:
        os.chmod(path, mode)


def _write(path: Path, text: str, mode: int = 0o644, postgres: bool = False) -> None:
    write_atomically(path, text, mode)
    if postgres:
        _own(path)


def check_traversable(directory: Path) -> None:
    """PostgreSQL and Patroni run as ``postgres``: every parent of the lab must let it in."""
    if os.geteuid() != 0:
        return
    result = subprocess.run(
        as_postgres_argv(["test", "-x", str(directory), "-a", "-r", str(directory)]),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=10,
    )
    if result.returncode != 0:
        raise PermissionProblem(
            f"the postgres user cannot enter the lab directory {directory}",
            hint="choose a --dir whose parents are world-searchable (e.g. /var/lib/prontuario/lab, not under /root or a 0700 tmp dir)",
        )


def prepare(spec: LabSpec, fresh: bool, say: Say) -> None:
    """Create directories, wipe stale state on a fresh lab, render every config file."""
    root = spec.path
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    check_traversable(root)
    if fresh:
        comps = components(spec)
        if any(c.proc is not None and running_pid(c.proc) for c in comps.values()):
            # An earlier bring-up stopped half-way: its processes must not see their data wiped.
            from prontuario_cli.lab.down import bring_down

            say("lab: stopping what an incomplete earlier 'lab up' left running")
            bring_down(spec, say)
        for part in ("etcd", "redis", "sentinel", "cloudsql", "pg", "run"):
            target = spec.sub(part)
            if target.exists():
                say(f"lab: fresh lab: wiping {target}")
                shutil.rmtree(target)
    for part in ("run", "logs", "haproxy", "patroni", "state", "reports", "metrics", "cloudsql"):
        spec.sub(part).mkdir(parents=True, exist_ok=True, mode=0o755)
    for node in NODE_NAMES:
        (spec.sub("etcd", node)).mkdir(parents=True, exist_ok=True, mode=0o700)
        spec.sub("sentinel", node).mkdir(parents=True, exist_ok=True)
    for node in MACS:
        spec.sub("redis", node).mkdir(parents=True, exist_ok=True)
        pg_dir = spec.sub("pg", node)
        pg_dir.mkdir(parents=True, exist_ok=True)
        _own(pg_dir, 0o755)
        for sub, mode in (("data", 0o700), ("socket", 0o755)):
            path = pg_dir / sub
            path.mkdir(exist_ok=True)
            _own(path, mode)
    # The same files bootstrap writes on the Macs and the witness (prontuario_cli.render).
    for rendered in config.node_files(spec):
        path = Path(rendered.path)
        if rendered.initial_only and path.exists():  # Sentinel rewrites it with what it learns: keep it on restart
            continue
        _write(path, rendered.content, rendered.mode, postgres=rendered.owner == "postgres")
    _write(spec.sub("cloudsql", "standin.json"), config.standin_api_config(spec), 0o600)
    _write(spec.sub("cloudsql", "postgresql.conf"), config.standin_pg_conf(spec), 0o644)
    _write(spec.sub("cloudsql", "pg_hba.conf"), config.standin_pg_hba(spec), 0o644)
    _write(spec.sub("cloudsql", "pg_ident.conf"), "", 0o644)
    _write(spec.inventory_path, config.cluster_yaml(spec), 0o644)
    spec.save()


# --------------------------------------------------------------------------- starting


def ensure_running(comp: Component, say: Say) -> tuple[int, bool]:
    """(pid, started_now): start ``comp`` unless it already runs."""
    pid = running_pid(comp.proc)
    if pid:
        return pid, False
    say(f"lab: starting {comp.name}")
    return start(comp.proc), True


def _exited(comp: Component, pid: int) -> OperationFailed:
    tail = log_tail(comp.proc.log, 3).replace("\n", " | ")
    return OperationFailed(
        f"{comp.name} exited during start-up (log: {comp.proc.log})" + (f"; last lines: {tail}" if tail else ""),
        hint=f"read it with: prontuario lab logs {comp.name}",
    )


def wait_component(comp: Component, pid: int, what: str, probe: Callable, timeout_s: float, progress: Progress | None = None, **kw):
    """Wait for ``probe`` while checking ``pid`` stays alive (a dead process fails at once)."""

    def checked():
        if not alive(pid):
            raise health.StopWaiting(_exited(comp, pid))
        return probe()

    with reported(progress, f"{comp.name}: {what}", timeout_s):
        return health.wait_for(what, checked, timeout_s, component=comp.name, log=comp.proc.log, **kw)


def leader_node(spec: LabSpec) -> str | None:
    for node in MACS:
        if health.http_status(health.patroni_url(spec, node, "/primary")) == 200:
            return node
    return None


def sync_node(spec: LabSpec) -> str | None:
    for node in MACS:
        if health.http_status(health.patroni_url(spec, node, "/sync")) == 200:
            return node
    return None


def resume_patroni(spec: LabSpec, say: Say) -> None:
    """Clear the pause flag ``lab down`` left in etcd (Patroni starts nothing while paused)."""
    for node in MACS:
        cfg = health.http_json(health.patroni_url(spec, node, "/config"))
        if cfg is None:
            continue
        if cfg.get("pause"):
            say("lab: resuming Patroni (paused by the last 'lab down')")
            problem = health.patch_pause(spec, node, False)
            if problem:
                raise OperationFailed(f"patroni-{node}: could not resume the cluster ({problem})")
        return


def ensure_safety_settings(spec: LabSpec, node: str, say: Say) -> None:
    """A lab made before a safety setting was rendered (``failsafe_mode``) gets it now:
    ``bootstrap.dcs`` only applies when the cluster is first initialised."""
    from prontuario_cli.engines import SAFETY

    cfg = health.http_json(health.patroni_url(spec, node, "/config"))
    if cfg is None:
        return
    missing = {key: value for key, value in SAFETY.items() if cfg.get(key) != value}
    if missing:
        say(f"lab: setting Patroni's {', '.join(f'{k}={v}' for k, v in missing.items())} (this lab predates it)")
        problem = health.patch_config(spec, node, missing)
        if problem:
            raise OperationFailed(f"patroni-{node}: could not set {', '.join(missing)} ({problem})")


def database_exists(spec: LabSpec) -> bool:
    """One step towards the application database on the current leader; True once it exists.

    Polled (the leader may change or restart during a lab's first seconds): reads
    the catalog, creates the database when it is missing, confirms on the next call.
    """
    leader = leader_node(spec)
    if leader is None:
        return False
    port = spec.node_ports(leader).postgresql
    row = health.pg_query(port, "SELECT count(*) FROM pg_database WHERE datname = %s", (spec.database,), timeout_s=5)
    if not row:
        return False
    if row[0]:
        return True
    health.pg_query(port, f'CREATE DATABASE "{spec.database}"', read_only=False, timeout_s=30)
    return False


def haproxy_writable(spec: LabSpec) -> bool:
    """Exactly one Mac write server UP, and a connection through the write port is read-write."""
    up = [s for s in health.write_servers_up(spec.haproxy_socket) if s in MACS]
    if len(up) != 1:
        return False
    return health.pg_in_recovery(spec.haproxy_write_port, timeout_s=2) is False


def validate_haproxy(spec: LabSpec, comp: Component) -> None:
    try:
        result = subprocess.run(config.haproxy_argv(spec, check_only=True), capture_output=True, text=True, timeout=20)
    except OSError as exc:
        raise OperationFailed(f"haproxy: cannot run {spec.binaries.haproxy}: {exc.strerror}", hint=f"see {comp.proc.log}") from None
    if result.returncode != 0:
        comp.proc.log.parent.mkdir(parents=True, exist_ok=True)
        with open(comp.proc.log, "a", encoding="utf-8") as log:
            log.write(result.stdout + result.stderr)
        raise OperationFailed(f"haproxy: {spec.sub('haproxy', 'haproxy.cfg')} is invalid (log: {comp.proc.log})")


def build_standin(spec: LabSpec, comp: Component, say: Say) -> None:
    """Make the stand-in's PostgreSQL: a plain, empty cluster (initdb). It gets its data
    from the Macs through its pglogical subscription (:func:`subscribe_standin`)."""
    data = spec.standin_data
    if (data / "PG_VERSION").exists():
        return
    say("lab: creating the cloud stand-in's PostgreSQL (initdb; it subscribes to the cluster with pglogical)")
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True, mode=0o700)
    _own(data, 0o700)
    spec.standin_socket_dir.mkdir(parents=True, exist_ok=True)
    _own(spec.standin_socket_dir, 0o755)
    argv = [
        f"{spec.binaries.pg_bin}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres",
        "--encoding", "UTF8", "--locale", "C.UTF-8", "--no-sync",
    ]  # fmt: skip
    comp.proc.log.parent.mkdir(parents=True, exist_ok=True)
    with open(comp.proc.log, "ab") as log:
        try:
            result = subprocess.run(as_postgres_argv(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=STANDIN_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise UnavailableError(f"cloudsql-replica: initdb did not finish within {STANDIN_TIMEOUT} s (log: {comp.proc.log})") from None
    if result.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise OperationFailed(f"cloudsql-replica: initdb failed (log: {comp.proc.log})")


def _attempt(step: Callable[[], object], last: list[str]) -> bool:
    """One try of a step that may meet a cluster still settling: True when it ran."""
    import psycopg

    try:
        step()
    except psycopg.Error as exc:
        last[:] = [str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__]
        return False
    return True


def subscribe_standin(spec: LabSpec, comp: Component, pid: int, say: Say, progress: Progress | None = None) -> None:
    """Set up pglogical on both sides, then wait until the subscription replicates.

    The provider side goes through HAProxy's write frontend (whichever Mac leads); the
    subscription's DSN is the source representation instance's ``hostPort``, the same
    frontend, so a failover never needs it re-pointed.
    """
    from prontuario_cli.lab import logical

    replication = config.lab_inventory(spec).cloud.replication
    provider_dsn = config.standin_provider_dsn(spec, replication.source)
    last: list[str] = []

    def answering() -> bool:
        return _attempt(lambda: logical.ensure_database(spec.standin_pg_port, spec.database), last)

    def provider() -> bool:
        return _attempt(
            lambda: logical.prepare_provider(spec.haproxy_write_port, spec.database, replication.provider_node, provider_dsn), last
        )

    def subscriber() -> bool:
        return _attempt(lambda: logical.subscribe(spec.standin_pg_port, spec.database, replication.subscription, provider_dsn), last)

    def state() -> str:
        return last[0] if last else ""

    wait_component(comp, pid, f"accepting connections, database {spec.database!r}", answering, STANDIN_TIMEOUT, progress, last_state=state)
    wait_component(comp, pid, "pglogical provider on the cluster (through HAProxy)", provider, STANDIN_TIMEOUT, progress, last_state=state)
    wait_component(comp, pid, f"pglogical subscription {replication.subscription!r}", subscriber, STANDIN_TIMEOUT, progress, last_state=state)

    def status() -> str:
        return f"subscription {health.standin_subscription(spec.standin_pg_port, spec.database, replication.subscription) or 'missing'}"

    wait_component(
        comp, pid, "subscription replicating",
        lambda: health.standin_replicating(spec.standin_pg_port, spec.database, replication.subscription),
        STANDIN_TIMEOUT, progress, last_state=status,
    )  # fmt: skip


# --------------------------------------------------------------------------- bring-up


def bring_up(spec: LabSpec, say: Say, progress: Progress | None = None) -> dict:
    """Bring the lab up (or complete it) and wait until every component is healthy.

    Each wait is reported as a ``progress`` step (a live line on a terminal).
    Returns ``{"fresh": bool, "started": [names], "seconds": float}``.
    """
    import functools

    wait = functools.partial(wait_component, progress=progress)
    t0 = time.monotonic()
    fresh = is_fresh(spec)
    prepare(spec, fresh, say)
    if spec.with_serve:
        from prontuario_cli.lab.serving import install_models

        install_models(spec, say, progress)
    comps = components(spec)
    started: list[str] = []
    pids: dict[str, int] = {}

    def run(name: str) -> int:
        pid, now = ensure_running(comps[name], say)
        pids[name] = pid
        if now:
            started.append(name)
        return pid

    for name, comp in comps.items():
        if comp.kind in ("etcd", "redis", "sentinel"):
            run(name)
    for node in NODE_NAMES:
        comp = comps[f"etcd-{node}"]
        port = spec.node_ports(node).etcd_client
        wait(comp, pids[comp.name], "healthy", lambda p=port: health.etcd_healthy(p), ETCD_TIMEOUT)
    say("lab: etcd healthy (3 members)")

    first, second = MACS
    run(f"patroni-{first}")
    if fresh:
        comp = comps[f"patroni-{first}"]
        wait(comp, pids[comp.name], "leader (/primary 200)", lambda: leader_node(spec) == first, LEADER_TIMEOUT)
    run(f"patroni-{second}")
    if not fresh:
        comp = comps[f"patroni-{first}"]
        wait(comp, pids[comp.name], "REST API", lambda: health.http_json(health.patroni_url(spec, first, "/config")) is not None
                       or health.http_json(health.patroni_url(spec, second, "/config")) is not None, LEADER_TIMEOUT)
        resume_patroni(spec, say)
        wait(comp, pids[comp.name], "a leader (/primary 200)", lambda: leader_node(spec), LEADER_TIMEOUT)
    leader = leader_node(spec) or first
    say(f"lab: Patroni leader is {leader}")
    ensure_safety_settings(spec, leader, say)

    validate_haproxy(spec, comps["haproxy"])
    run("haproxy")
    run("cloudsql-api")

    replica = second if leader == first else first

    def pair_ready():
        """A leader and a different node answering /sync 200 (either Patroni dying fails at once)."""
        other = comps[f"patroni-{leader}"]
        if not alive(pids[other.name]):
            raise health.StopWaiting(_exited(other, pids[other.name]))
        sync, now_leader = sync_node(spec), leader_node(spec)
        return sync is not None and now_leader is not None and sync != now_leader

    comp = comps[f"patroni-{replica}"]
    wait(comp, pids[comp.name], "synchronous standby (/sync 200)", pair_ready, SYNC_TIMEOUT)
    leader = leader_node(spec) or leader
    say(f"lab: {sync_node(spec)} is the synchronous standby")
    comp = comps[f"patroni-{leader}"]
    wait(comp, pids[comp.name], f"database {spec.database!r} created on the leader", lambda: database_exists(spec), LEADER_TIMEOUT)

    comp = comps["haproxy"]
    wait(comp, pids["haproxy"], "exactly one write server UP and writable", lambda: haproxy_writable(spec), HAPROXY_TIMEOUT)
    say("lab: HAProxy routes writes to the primary")

    comp = comps["cloudsql-replica"]
    if not running_pid(comp.proc):
        with reported(progress, "cloudsql-replica: initdb", STANDIN_TIMEOUT):
            build_standin(spec, comp, say)
    run("cloudsql-replica")
    subscribe_standin(spec, comp, pids[comp.name], say, progress)
    api = comps["cloudsql-api"]
    url = health.lab_url(spec.standin_api_port, f"/v1/projects/{spec.project}/instances/{spec.sql_instance}")
    wait(api, pids[api.name], "instances.get answering", lambda: health.http_status(url) == 200, 30)
    say("lab: cloud stand-in replicating (pglogical subscription)")

    for node in MACS:
        comp = comps[f"redis-{node}"]
        port = spec.node_ports(node).redis
        wait(comp, pids[comp.name], "answering", lambda p=port: health.redis_role(p) in ("primary", "replica"), REDIS_TIMEOUT)
    for node in NODE_NAMES:
        comp = comps[f"sentinel-{node}"]
        port = spec.node_ports(node).sentinel
        wait(
            comp,
            pids[comp.name],
            "quorum (2 other sentinels, 1 replica, CKQUORUM OK)",
            lambda p=port: health.sentinel_ready(p, spec.redis_master),
            SENTINEL_TIMEOUT,
            last_state=lambda p=port: health.describe_sentinel(health.sentinel_master(p, spec.redis_master)),
        )
    say("lab: Sentinel quorum reached")
    with reported(progress, "settle: what 'replication check' looks at", SETTLED_TIMEOUT):
        wait_settled(spec, comps, pids, SETTLED_TIMEOUT)
    say("lab: settled (what 'replication check' looks at is OK)")
    serving = [comp for comp in comps.values() if comp.kind == "serve"]
    for comp in serving:
        run(comp.name)
    for comp in serving:
        url = health.lab_url(comp.port, "/ready")
        wait(comp, pids[comp.name], "model loaded (/ready 200)", lambda u=url: health.http_status(u, timeout_s=2) == 200, SERVE_TIMEOUT)
    if serving:
        say(f"lab: {len(serving)} inference servers ready")
    return {"fresh": fresh, "started": started, "seconds": round(time.monotonic() - t0, 2)}


def wait_settled(spec: LabSpec, comps: dict[str, Component], pids: dict[str, int], timeout_s: float) -> None:
    """Wait until nothing ``replication check`` looks at is still settling (see :mod:`ready`).

    A process dying meanwhile ends the wait at once; a time-out names the first
    component still settling, with its log, and everything else still missing.
    """
    from prontuario_cli.lab import ready
    from prontuario_cli.lab.components import log_of
    from prontuario_cli.poll import wait_for

    last: list[ready.Gap] = []

    def settled() -> bool:
        for name, pid in pids.items():
            if not alive(pid):
                raise health.StopWaiting(_exited(comps[name], pid))
        last[:] = ready.gaps(spec)
        return not last

    def timed_out(_: str) -> UnavailableError:
        first = last[0].component if last else "haproxy"
        log = log_of(spec, first) if first in comps else None
        where = f" (log: {log})" if log else ""
        return UnavailableError(
            f"{first}: not settled within {timeout_s:g} s ('replication check' would not say OK); "
            f"last seen: {ready.describe(last)}{where}",
            hint=f"read it with: prontuario lab logs {first}; then: prontuario -i {spec.inventory_path} replication status",
        )

    try:
        wait_for("lab settled", settled, timeout_s, interval_s=0.25, on_timeout=timed_out)
    except health.StopWaiting as stop:
        raise stop.error from None


def start_one(spec: LabSpec, name: str, say: Say) -> int:
    """Start one stopped component again (drills bring a killed node back with this)."""
    comps = components(spec)
    comp = comps[name]
    if comp.kind == "postgres":
        comp = comps[f"patroni-{comp.node}"]  # Patroni starts its PostgreSQL
    if comp.kind == "haproxy":
        validate_haproxy(spec, comp)
    pid, _ = ensure_running(comp, say)
    return pid
