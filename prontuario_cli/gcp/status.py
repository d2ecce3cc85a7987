"""``gcp status``: the fallback at a glance — replica state and lag, emergency flag, Macs, HAProxy.

Every part is asked independently and bounded; a part that fails is reported as
such (``error``) instead of hiding the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from prontuario_cli.errors import ExitCode, ProntuarioError
from prontuario_cli.inventory import Inventory
from prontuario_cli.report import Table


@dataclass(frozen=True)
class GcpStatus:
    instance: str
    drill: bool
    credential: str
    data_via: str
    instance_state: str | None
    instance_type: str | None
    master: str | None
    replica: bool | None
    in_recovery: bool | None
    lag_s: float | None
    replay_behind_bytes: int | None
    receiver_status: str | None
    slot: dict[str, Any] | None  # the subscription's logical slot on the Mac primary (None: not read)
    fallback_active: bool
    fallback: dict[str, Any]
    promotion: dict[str, Any] | None  # the run in the state dir, if any
    failback: dict[str, Any] | None
    macs: tuple[dict[str, str], ...]
    write_servers: tuple[str, ...]
    haproxy: tuple[dict[str, Any], ...]
    errors: tuple[str, ...] = field(default=())
    logical: bool = False  # follows through a pglogical subscription (as Cloud SQL does from an external server)

    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def tables(self) -> list[Table]:
        lag = "-" if self.lag_s is None else f"{self.lag_s:.1f} s since last replayed commit"
        rows = (
            ("instance", self.instance + (" (drill)" if self.drill else "")),
            ("API state", f"{self.instance_state or '?'}, {self.instance_type or '?'}" + (f" of {self.master}" if self.master else "")),
            ("database", "unreachable" if self.in_recovery is None else ("replica (in recovery)" if self.in_recovery else "PRIMARY (read-write)")),
            ("lag", lag + (f"; {self.replay_behind_bytes} B received not replayed" if self.replay_behind_bytes else "")),
            ("following by", ("pglogical subscription " if self.logical else "WAL receiver ") + (self.receiver_status or "-")),
            ("slot on the Macs", _slot_line(self.slot)),
            ("emergency mode", ("ACTIVE since " + str(self.fallback.get("since"))) if self.fallback_active else "off"),
            ("promotion", _run_line(self.promotion)),
            ("failback", _run_line(self.failback)),
            ("writes go to", ", ".join(self.write_servers) or "nothing"),
            ("credentials", f"{self.credential} via {self.data_via}"),
        )
        out = [Table("cloud fallback", ("key", "value"), rows)]
        if self.macs:
            out.append(Table("Macs", ("node", "state", "patroni", "postgres"), tuple((d["node"], d["state"], d["patroni"], d["postgres"]) for d in self.macs)))
        if self.haproxy:
            out.append(Table("HAProxy", ("proxy", "server", "status", "backup", "check"), tuple((r["proxy"], r["server"], r["status"], r["backup"], r["check"]) for r in self.haproxy)))
        if self.errors:
            out.append(Table("could not check", ("what",), tuple((e,) for e in self.errors)))
        return out


def _slot_line(slot: dict[str, Any] | None) -> str:
    if not slot:
        return "-"
    if not slot.get("present"):
        return f"{slot['name']} MISSING on the primary: the cloud replica cannot follow it"
    behind = slot.get("behind_bytes")
    text = f"{slot['name']}, {'active' if slot.get('active') else 'INACTIVE (no subscriber connected)'}"
    text += f", {behind} B behind the primary" if behind is not None else ""
    return text + (f", WAL {slot['wal_status']}" if slot.get("wal_status") not in (None, "reserved") else "")


def _run_line(run: dict[str, Any] | None) -> str:
    if not run:
        return "none"
    if run.get("completed_at"):
        return f"run {run.get('run_id')} completed {run.get('completed_at')}"
    steps = run.get("steps") or {}
    done = [name for name, s in steps.items() if s.get("status") == "done"]
    failed = [name for name, s in steps.items() if s.get("status") == "failed"]
    text = f"run {run.get('run_id')} INCOMPLETE: {len(done)} step(s) done"
    if failed:
        text += f", failed at {failed[-1]}: {steps[failed[-1]].get('details', {}).get('error', '')}"
    return text + " — continue with --resume"


def _slot(inventory: Inventory, errors: list[str]) -> dict[str, Any] | None:
    """The subscription's slot on the Mac primary, through HAProxy's write frontend: how far
    behind the cloud replica is, from the position it confirmed."""
    from prontuario_cli.cluster.logical import read_slot

    name = inventory.cloud.replication.slot
    try:
        found = read_slot(inventory, name, time.monotonic() + max(2.0, inventory.health_checks.timeout_s * 2), application_name="prontuario-gcp")
    except ProntuarioError as exc:
        errors.append(f"slot {name} on the Macs: {exc.one_line()}")
        return None
    if found is None:
        return {"name": name, "present": False}
    return {"name": name, "present": True, "active": found.active, "wal_status": found.wal_status,
            "confirmed_flush_lsn": found.confirmed_flush_lsn, "behind_bytes": found.behind_bytes}


def status(inventory: Inventory, instance: str | None = None) -> GcpStatus:
    from prontuario_cli.cluster.fallback import read_fallback
    from prontuario_cli.gcp import macs as m
    from prontuario_cli.gcp.client import admin_client, choose_instance
    from prontuario_cli.gcp.data import data_via, open_session, read_lag
    from prontuario_cli.gcp.state import FAILBACK, PROMOTE, journal_path
    from prontuario_cli.paths import state_dir
    from prontuario_cli.runbook.state import RunState

    name, drill = choose_instance(inventory, instance)
    errors: list[str] = []
    credential = "-"
    info = None
    try:
        client = admin_client(inventory)
        credential = client.credential
        info = client.get_instance(name)
    except ProntuarioError as exc:
        if getattr(exc, "status", None) in (401, 403, 404) or exc.exit_code in (ExitCode.CONFIG, ExitCode.PERMISSION):
            raise  # misconfiguration: say it plainly, with its own exit code
        errors.append(f"instances.get: {exc.one_line()}")
    lag = None
    try:
        with open_session(inventory, name, time.monotonic() + max(2.0, inventory.health_checks.timeout_s * 2), private_ip=info.private_ip if info else None) as session:
            lag = read_lag(session)
    except ProntuarioError as exc:
        errors.append(f"database: {exc.one_line()}")
    slot = None
    if lag is None or lag.in_recovery:  # a promoted replica follows nothing: no slot to look at
        slot = _slot(inventory, errors)
    try:
        health = m.mac_health(inventory)
    except ProntuarioError as exc:
        health = []
        errors.append(f"Macs: {exc.one_line()}")
    from prontuario_cli.cluster.haproxy import HAProxy

    haproxy = HAProxy(inventory)
    routes, writers = [], []
    if haproxy.available:
        try:
            routes = haproxy.routes()
            writers = haproxy.writer()
        except ProntuarioError as exc:
            errors.append(f"HAProxy: {exc.one_line()}")
    sdir = state_dir(inventory)
    promotion = RunState.load(journal_path(sdir, PROMOTE, name))
    failback = RunState.load(journal_path(sdir, FAILBACK, name))
    fallback = read_fallback(sdir)
    return GcpStatus(
        instance=name,
        drill=drill,
        credential=credential,
        data_via=data_via(inventory),
        instance_state=info.state if info else None,
        instance_type=info.instance_type if info else None,
        master=info.master if info else None,
        replica=info.is_replica if info else None,
        in_recovery=lag.in_recovery if lag else None,
        lag_s=round(lag.lag_s, 3) if lag and lag.lag_s is not None and lag.in_recovery else None,
        replay_behind_bytes=lag.replay_behind_bytes if lag else None,
        receiver_status=lag.receiver_status if lag else None,
        slot=slot,
        logical=bool(lag and lag.logical),
        fallback_active=fallback.get("active") in (True, 1),
        fallback=fallback,
        promotion=promotion.data if promotion else None,
        failback=failback.data if failback else None,
        macs=tuple({"node": h.node, "state": h.state, "patroni": h.patroni, "postgres": h.postgres} for h in health),
        write_servers=tuple(writers),
        haproxy=tuple({"proxy": r.proxy, "server": r.server, "status": r.status, "backup": r.backup, "check": r.check_status} for r in routes),
        errors=tuple(errors),
    )
