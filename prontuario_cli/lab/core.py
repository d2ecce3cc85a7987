"""The lab's Python API, used by the CLI, the tests and the drills.

Example::

    from prontuario_cli.lab import Lab

    lab = Lab("/var/lib/prontuario/lab-test", base_port=16000, profile="fast")
    lab.up()                                    # idempotent; waits until healthy
    lab.kill_node("mac-studio-1", signal.SIGKILL)   # Patroni + PostgreSQL of one Mac
    lab.start("patroni-mac-studio-1")           # bring it back
    lab.down()
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from pathlib import Path
from typing import Callable

from prontuario_cli.errors import ConfigError, UsageError
from prontuario_cli.lab import down as _down
from prontuario_cli.lab import up as _up
from prontuario_cli.lab.components import Component, components
from prontuario_cli.lab.procs import (
    alive,
    children,
    postmaster_pid,
    processes_under,
    running_pid,
    signal_pid,
    stop_pids,
)
from prontuario_cli.lab.spec import (
    DEFAULT_BASE_PORT,
    MACS,
    Binaries,
    LabSpec,
    default_dir,
    load_spec,
)
from prontuario_cli.lab.status import (
    LabDownReport,
    LabPlan,
    LabStatus,
    LabUpReport,
    lab_status,
)


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Lab:
    """One lab directory. The spec saved there wins over the arguments once it exists,
    except when the lab holds no data yet (then profile/base port may change)."""

    def __init__(
        self,
        directory: str | os.PathLike | None = None,
        *,
        profile: str | None = None,
        base_port: int | None = None,
        binaries: Binaries | None = None,
        with_serve: bool | None = None,
        say: Callable[[str], None] | None = None,
        progress: Callable[[dict], None] | None = None,
    ):
        path = Path(directory or default_dir()).expanduser().absolute()
        self.say = say or _stderr
        self.progress = progress  # structured steps for a live view (see poll.reported)
        saved = load_spec(path)
        requested = LabSpec(
            dir=str(path),
            profile=profile or (saved.profile if saved else "seed"),
            base_port=base_port or (saved.base_port if saved else DEFAULT_BASE_PORT),
            binaries=binaries or (saved.binaries if saved else Binaries.default()),
            # Remembered: once made --with-serve, every later up/down/status keeps the servers.
            with_serve=bool(with_serve or (saved.with_serve if saved else False)),
        )
        if saved and not _up.is_fresh(saved) and (requested.profile, requested.base_port) != (saved.profile, saved.base_port):
            raise ConfigError(
                f"the lab in {path} was made with profile {saved.profile}, base port {saved.base_port}",
                hint="use those, or 'prontuario lab down --purge' first",
            )
        self.spec = requested

    # ------------------------------------------------------------------ whole lab

    @property
    def dir(self) -> Path:
        return self.spec.path

    @property
    def inventory_path(self) -> Path:
        return self.spec.inventory_path

    def components(self) -> dict[str, Component]:
        return components(self.spec)

    def up(self) -> LabUpReport:
        """Bring the lab up (idempotent); return once ``replication check`` would say OK."""
        result = _up.bring_up(self.spec, self.say, self.progress)
        return LabUpReport(result["fresh"], tuple(result["started"]), result["seconds"], str(self.inventory_path), self.status())

    def down(self, purge: bool = False) -> LabDownReport:
        """Stop every lab process by PID (fast order); keep the data unless ``purge``."""
        result = _down.bring_down(self.spec, self.say, purge=purge, progress=self.progress)
        left = tuple(processes_under(self.dir)) if self.dir.exists() else ()
        return LabDownReport(str(self.dir), tuple(result["stopped"]), purge, result["seconds"], left)

    def status(self) -> LabStatus:
        return lab_status(self.spec)

    def plan_up(self) -> LabPlan:
        fresh = _up.is_fresh(self.spec)
        comps = self.components()
        steps = [f"{'create' if fresh else 'reuse'} {self.dir} (profile {self.spec.profile}, base port {self.spec.base_port})"]
        if self.spec.with_serve:
            steps.append(f"build the tiny models in {self.spec.models_src_dir} (once); lock them into {self.spec.manifests_dir}; pull them into each Mac's store")
        if fresh:
            steps.append("wipe stale etcd, Redis, Sentinel and stand-in state")
        steps.append(f"render configs and write {self.inventory_path}")
        for name, comp in comps.items():
            if comp.proc is None:
                continue
            pid = running_pid(comp.proc)
            steps.append(f"{name}: already running (pid {pid}), leave it" if pid else f"{name}: start (port {comp.port}, log {comp.proc.log})")
        steps += [
            f"create database {self.spec.database} on the leader",
            "wait: etcd healthy, Patroni leader + sync standby, HAProxy writable, stand-in streaming, Sentinel quorum",
            "wait: settled as 'replication check' sees it (HAProxy read servers UP and backup DOWN, Sentinels agree, ...)",
        ]
        if self.spec.with_serve:
            steps.append("wait: every inference server's /ready answers 200")
        return LabPlan(str(self.dir), "up", tuple(steps))

    def plan_down(self, purge: bool = False) -> LabPlan:
        steps = []
        for name, pid in _down.plan(self.spec):
            if name == "haproxy":
                steps.append("pause Patroni (PATCH /config pause: true)")
            steps.append(f"stop {name} (pid {pid})" if pid else f"{name}: not running")
        steps.append(f"delete {self.dir}" if purge else f"keep the data in {self.dir}")
        return LabPlan(str(self.dir), "down", tuple(steps))

    # ------------------------------------------------------------------ one component

    def _component(self, name: str) -> Component:
        comps = self.components()
        if name not in comps:
            raise UsageError(f"no lab component named {name!r}", hint=f"choose one of: {', '.join(comps)}")
        return comps[name]

    def pid(self, name: str) -> int | None:
        """PID of a running component (PostgreSQL under Patroni: its postmaster), else None."""
        comp = self._component(name)
        if comp.kind == "postgres":
            return postmaster_pid(self.spec.pg_data(comp.node))
        return running_pid(comp.proc)

    def alive(self, name: str) -> bool:
        return alive(self.pid(name))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int | None:
        """Send ``sig`` to one component; returns the PID signalled (None if not running)."""
        pid = self.pid(name)
        if pid and signal_pid(pid, sig):
            return pid
        return None

    def kill_node(self, node: str, sig: int = signal.SIGKILL) -> list[int]:
        """Signal every PostgreSQL process of a Mac at once — Patroni, the postmaster and each
        backend — as a lost (SIGKILL) or frozen (SIGSTOP) machine would. Signalling only
        the parents leaves the backends serving writes for seconds (a false RTO)."""
        if node not in MACS:
            raise UsageError(f"{node!r} is not a data node", hint=f"choose one of: {', '.join(MACS)}")
        patroni, postmaster = self.pid(f"patroni-{node}"), self.pid(f"postgres-{node}")
        pids = [pid for pid in (patroni, postmaster) if pid] + (children(postmaster) if postmaster else [])
        return [pid for pid in pids if signal_pid(pid, sig)]

    def stop(self, name: str, timeout_s: float = 15.0) -> None:
        """Stop one component gracefully (SIGINT for PostgreSQL), SIGKILL after ``timeout_s``."""
        comp = self._component(name)
        pid = self.pid(name)
        sig = signal.SIGINT if comp.kind in ("postgres", "cloudsql-replica") else comp.proc.stop_signal
        if pid:
            stop_pids([(pid, sig)], timeout_s=timeout_s)

    def start(self, name: str) -> int:
        """Start one stopped component again; ``postgres-NODE`` starts that node's Patroni."""
        self._component(name)
        return _up.start_one(self.spec, name, self.say)

    def resume(self, node: str) -> list[int]:
        """SIGCONT a node SIGSTOPped by :meth:`kill_node`."""
        return self.kill_node(node, signal.SIGCONT)

    def log(self, name: str) -> Path:
        from prontuario_cli.lab.components import log_of

        self._component(name)
        return log_of(self.spec, name)

    def rebuild_standin(self) -> None:
        """Throw away the (maybe promoted) stand-in and make it a subscriber of the cluster
        again; returns once its subscription replicates."""
        import shutil

        self.stop("cloudsql-replica")
        shutil.rmtree(self.spec.standin_data, ignore_errors=True)
        comps = self.components()
        _up.build_standin(self.spec, comps["cloudsql-replica"], self.say)
        pid = self.start("cloudsql-replica")
        _up.subscribe_standin(self.spec, comps["cloudsql-replica"], pid, self.say)

    def with_binaries(self, **changes) -> "Lab":
        """A copy of this lab with some executables swapped (tests: a bad path)."""
        clone = object.__new__(Lab)
        clone.say = self.say
        clone.spec = dataclasses.replace(self.spec, binaries=dataclasses.replace(self.spec.binaries, **changes))
        return clone
