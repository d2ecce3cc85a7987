"""Watching the HA engines during a drill: who Patroni says leads, which members stream
or are sync standby, and which servers HAProxy's write backend has UP.

A background thread polls every ``interval_s`` (each poll bounded), and records an
event each time something changes, timed on the same clock as the probes. The drill
reads detection, promotion, rejoin and sync times from these events.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from prontuario_cli.connect.fanout import run_all
from prontuario_cli.inventory import Inventory


@dataclass(frozen=True)
class Snapshot:
    leader: str | None
    members: tuple[tuple[str, str, str], ...]  # (name, role, state)
    write_up: tuple[str, ...]  # servers UP in HAProxy's write backend
    read_up: tuple[str, ...]


@dataclass
class Event:
    t: float  # seconds since the watcher's clock start
    what: str  # e.g. "haproxy write down: mac-studio-1", "leader: mac-studio-2"


@dataclass
class Watcher:
    inventory: Inventory
    started_mono: float
    interval_s: float = 0.1
    max_duration_s: float = 600.0
    events: list[Event] = field(default_factory=list)
    last: Snapshot | None = None
    on_event: Callable[[Event], None] | None = None  # called (in the watcher's thread) for each new event
    on_tick: Callable[[], None] | None = None  # called after each poll (live counters)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-watch", daemon=True)

    def start(self) -> "Watcher":
        self._thread.start()
        return self

    def stop(self) -> list[Event]:
        self._stop.set()
        self._thread.join(5)
        return self.events

    def first(self, prefix: str, after: float = 0.0) -> float | None:
        """Time of the first event starting with ``prefix`` at or after ``after``."""
        return next((e.t for e in self.events if e.what.startswith(prefix) and e.t >= after), None)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_duration_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            snap = snapshot(self.inventory, timeout_s=min(1.0, self.inventory.health_checks.timeout_s))
            seen = len(self.events)
            self._record(snap, started - self.started_mono)
            self._tell(self.events[seen:])
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def _tell(self, new: list[Event]) -> None:
        """Hand new events and the tick to the callbacks; a failing callback never stops the watch."""
        for callback, args in [(self.on_event, (e,)) for e in new] + [(self.on_tick, ())]:
            if callback is not None:
                try:
                    callback(*args)
                except Exception:  # display only: the events list stays the truth
                    pass

    def _record(self, snap: Snapshot, t: float) -> None:
        before = self.last
        t = round(t, 3)
        if before is None or snap.leader != before.leader:
            self.events.append(Event(t, f"leader: {snap.leader or 'none'}"))
        old_members = {m[0]: m for m in before.members} if before else {}
        for name, role, state in snap.members:
            if old_members.get(name) != (name, role, state):
                self.events.append(Event(t, f"member {name}: {role} {state}"))
        for name in set(old_members) - {m[0] for m in snap.members}:
            self.events.append(Event(t, f"member {name}: gone"))
        for backend, now, was in (("write", snap.write_up, before.write_up if before else None), ("read", snap.read_up, before.read_up if before else None)):
            if was is None:
                self.events.append(Event(t, f"haproxy {backend} up: {','.join(now) or 'none'}"))
                continue
            for server in sorted(set(was) - set(now)):
                self.events.append(Event(t, f"haproxy {backend} down: {server}"))
            for server in sorted(set(now) - set(was)):
                self.events.append(Event(t, f"haproxy {backend} up: {server}"))
        self.last = snap


def snapshot(inventory: Inventory, timeout_s: float = 1.0) -> Snapshot:
    """One bounded look at Patroni (every Mac's /cluster) and HAProxy (runtime API)."""
    from prontuario_cli.cluster.haproxy import haproxy_socket
    from prontuario_cli.cluster.patroni import cluster_probe
    from prontuario_cli.connect.haproxy import show_stat

    probes = {}
    for node in inventory.macs:
        if node.ports.patroni:
            probes[f"patroni:{node.name}"] = cluster_probe(node)
    sock = haproxy_socket(inventory)
    if sock:
        probes["haproxy"] = lambda deadline: show_stat(sock, deadline)
    outcomes = run_all(probes, time.monotonic() + timeout_s)

    leader, members = None, ()
    for name, outcome in outcomes.items():
        if name.startswith("patroni:") and outcome.ok:
            cluster = outcome.value
            leader = cluster.leader
            members = tuple(sorted((m.name, m.role, m.state) for m in cluster.members))
            break
    write_up: tuple[str, ...] = ()
    read_up: tuple[str, ...] = ()
    haproxy = outcomes.get("haproxy")
    if haproxy is not None and haproxy.ok:
        write_up = tuple(sorted(s.server for s in haproxy.value if s.proxy == inventory.haproxy.write_backend and s.up))
        read_up = tuple(sorted(s.server for s in haproxy.value if s.proxy == inventory.haproxy.read_backend and s.up))
    return Snapshot(leader, members, write_up, read_up)

