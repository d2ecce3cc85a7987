"""``lab down``: stop every process the lab started, by PID, in a fast order.

Order: the inference servers first (a lab made ``--with-serve``), pause Patroni (so stopping a sync standby does not wait for the primary to
release it, and Patroni does not react to what follows), then HAProxy and the cloud
stand-in, then both Patronis, then both PostgreSQLs (fast shutdown, SIGINT), then
Redis and the Sentinels, etcd last. Each step signals a group together, polls
/proc until the PIDs are gone, and escalates to SIGKILL after a bounded wait. At
the end, /proc is searched for anything still running from the lab directory.
"""

from __future__ import annotations

import shutil
import signal
import time
from typing import Callable

from prontuario_cli.errors import OperationFailed, ProntuarioError
from prontuario_cli.lab import health
from prontuario_cli.lab.components import components
from prontuario_cli.lab.procs import alive, postmaster_pid, processes_under, read_pidfile, running_pid, stop_pids
from prontuario_cli.lab.spec import MACS, LabSpec
from prontuario_cli.poll import Progress, reported

Say = Callable[[str], None]
PAUSE_TIMEOUT = 10
STOP_TIMEOUT = 15


def pause_patroni(spec: LabSpec, say: Say, progress: Progress | None = None) -> bool:
    """PATCH /config {"pause": true} and wait (bounded) until every live member reports it."""
    from prontuario_cli.poll import wait_for

    live = [n for n in MACS if health.http_json(health.patroni_url(spec, n, "/patroni")) is not None]
    if not live:
        return False
    if not any(health.patch_pause(spec, node, True) is None for node in live):
        say("lab: could not pause Patroni (no DCS?); stopping anyway")
        return False

    def all_paused() -> bool:
        for node in live:
            data = health.http_json(health.patroni_url(spec, node, "/patroni"))
            if data is not None and not data.get("pause"):
                return False
        return True

    try:
        with reported(progress, "patroni: pause (so stopping a standby does not block the primary)", PAUSE_TIMEOUT):
            wait_for("Patroni paused", all_paused, PAUSE_TIMEOUT)
    except ProntuarioError:
        say("lab: Patroni did not report the pause in time; stopping anyway")
        return False
    say("lab: Patroni paused")
    return True


def plan(spec: LabSpec) -> list[tuple[str, int | None]]:
    """(component, pid or None) in stop order: what ``down`` would stop."""
    comps = components(spec)
    order = [n for n, c in comps.items() if c.kind == "serve"]
    order += ["haproxy", "cloudsql-api", "cloudsql-replica", *(f"patroni-{n}" for n in MACS), *(f"postgres-{n}" for n in MACS)]
    order += [n for n, c in comps.items() if c.kind in ("redis", "sentinel")]
    order += [n for n, c in comps.items() if c.kind == "etcd"]
    out = []
    for name in order:
        comp = comps[name]
        pid = postmaster_pid(spec.pg_data(comp.node)) if comp.kind == "postgres" else running_pid(comp.proc)
        out.append((name, pid))
    return out


def bring_down(spec: LabSpec, say: Say, purge: bool = False, progress: Progress | None = None) -> dict:
    """Stop everything; with ``purge`` also delete the lab directory. Returns what was stopped.

    Each pause and stop is reported as a ``progress`` step (a live line on a terminal).
    """
    t0 = time.monotonic()
    comps = components(spec)
    stopped: list[str] = []

    def group(names: list[str], pids: dict[str, int | None] | None = None) -> None:
        targets, these = [], []
        for name in names:
            comp = comps[name]
            pid = (pids or {}).get(name) if pids is not None else running_pid(comp.proc)
            if not pid or not alive(pid):
                continue
            sig = signal.SIGINT if comp.kind in ("postgres", "cloudsql-replica") else (comp.proc.stop_signal if comp.proc else signal.SIGTERM)
            targets.append((pid, sig))
            stopped.append(name)
            these.append(name)
            say(f"lab: stopping {name} (pid {pid})")
        if not targets:
            return
        with reported(progress, f"stop {', '.join(these)}", STOP_TIMEOUT + 5):
            survivors = stop_pids(targets, timeout_s=STOP_TIMEOUT)
        if survivors:
            raise OperationFailed(f"lab down: processes survived SIGKILL: {survivors}")

    group([n for n, c in comps.items() if c.kind == "serve"])
    if any(running_pid(comps[f"patroni-{n}"].proc) for n in MACS):
        pause_patroni(spec, say, progress)
    # Read PostgreSQL PIDs now: once Patroni is gone nothing else knows them.
    pg_pids = {n: postmaster_pid(spec.pg_data(n)) for n in MACS}
    group(["haproxy", "cloudsql-api", "cloudsql-replica"])
    group([f"patroni-{n}" for n in MACS])
    # A PostgreSQL Patroni restarted meanwhile has a new PID: read it again.
    group([f"postgres-{n}" for n in MACS], {f"postgres-{n}": postmaster_pid(spec.pg_data(n)) or pg_pids[n] for n in MACS})
    group([n for n, c in comps.items() if c.kind in ("redis", "sentinel")])
    # etcd: the leader first. A leader stopped together with its followers spends
    # seconds trying to hand leadership to a peer that is going away.
    members = [n for n, c in comps.items() if c.kind == "etcd"]
    while members:
        leader = next((n for n in members if running_pid(comps[n].proc) and health.etcd_is_leader(comps[n].port)), None)
        if leader is None:
            group(members)
            break
        group([leader])
        members.remove(leader)

    leftovers = processes_under(spec.path)
    if leftovers:
        say(f"lab: stopping leftovers started from {spec.path}: {leftovers}")
        survivors = stop_pids([(pid, signal.SIGTERM) for pid in leftovers], timeout_s=5)
        if survivors:
            raise OperationFailed(f"lab down: processes survived SIGKILL: {survivors}")
    for comp in comps.values():
        if comp.proc is not None and not alive(read_pidfile(comp.proc.pidfile)):
            comp.proc.pidfile.unlink(missing_ok=True)
    if purge:
        say(f"lab: deleting {spec.path}")
        shutil.rmtree(spec.path, ignore_errors=True)
    return {"stopped": stopped, "purged": purge, "seconds": round(time.monotonic() - t0, 2)}
