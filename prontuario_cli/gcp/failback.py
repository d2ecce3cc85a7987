"""Back from emergency mode to the Macs, losing none of the writes made in the cloud.

The promoted Cloud SQL instance is the only copy of the emergency writes, and the Macs
hold an older history (plus, perhaps, a few commits from their last seconds that never
reached the cloud). So the cloud is the source of truth, the Macs' old database is kept
aside (never dropped), and writes go back only after the copy is verified::

    check             emergency mode recorded, the instance a primary, reachable by DSN
    freeze-cloud      HAProxy: the cloud server in maintenance; the database read-only
                      (ALTER DATABASE ... default_transaction_read_only) and its sessions
                      ended; row counts and the WAL position recorded (downtime begins)
    start-macs        start Patroni on both Macs (they stay in HAProxy maintenance);
                      wait for a leader
    copy-data         pg_dump of the cloud database (custom format, 0600, state dir) ->
                      pg_restore into <db>_failback on the Mac leader -> swap names: the
                      Macs' old database becomes <db>_before_failback_<run>
    verify-data       every table's row count on the Mac leader equals the cloud's, and
                      the promotion's check row is there
    route-writes-back HAProxy: the Macs out of maintenance; exactly one Mac takes writes;
                      a write through the write frontend lands on the Mac primary
    clear-flag        gcp-fallback.json inactive, gcp_fallback_active 0 (downtime ends)
    rebuild-replica   re-create the cloud replica (lab: the node-access seam clones the
                      stand-in again; Google: by hand, then --resume checks it is a
                      replica); its subscription must be replicating and a row written
                      on the Macs must arrive within the RPO target; only then the
                      cloud server leaves HAProxy maintenance — its check answers 503 again
    notify            emergency mode is off
    archive           journals moved aside; the dump file deleted

A runbook on :mod:`prontuario_cli.runbook.engine`: every step is printed, confirmed (the
``confirm`` callback), audited, and recorded in ``gcp-failback-<instance>.json``, so
``run(resume=True)`` continues where it stopped; the copy itself is resumable in three
parts (``dump``, ``restore``, ``swap``), and ``stop_after`` may name any step or part.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from prontuario_cli.clock import utc_now
from prontuario_cli.cluster.haproxy import check_period_s, check_rise_s
from prontuario_cli.cluster.nodes import is_lab, node_access
from prontuario_cli.errors import (
    ConfigError,
    ExitCode,
    OperationFailed,
    ProntuarioError,
    RefusedError,
)
from prontuario_cli.gcp import macs as m
from prontuario_cli.gcp.state import FAILBACK, PROMOTE, CloudRunbook, journal_path
from prontuario_cli.inventory import Inventory
from prontuario_cli.poll import wait_for
from prontuario_cli.report import Table
from prontuario_cli.runbook.engine import Step, StepResult, report_tables
from prontuario_cli.runbook.state import RunState

DUMP_TIMEOUT_S = 7200.0
LEADER_TIMEOUT_S = 120.0
COPY_PARTS = ("dump", "restore", "swap")


@dataclass(frozen=True)
class FailbackReport:
    instance: str
    run_id: str
    resumed: bool
    completed: bool
    steps: tuple[StepResult, ...]
    mac_leader: str | None
    kept_database: str | None
    downtime_s: float | None
    state_file: str
    notes: tuple[str, ...] = field(default=())

    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.completed else ExitCode.FAILED

    def tables(self) -> list[Table]:
        rows = (
            ("instance", self.instance),
            ("run", self.run_id + (" (resumed)" if self.resumed else "")),
            ("Mac primary", self.mac_leader or "-"),
            ("Macs' old database kept as", self.kept_database or "-"),
            ("write downtime", "-" if self.downtime_s is None else f"{self.downtime_s:.1f} s (freeze -> writes on the Macs)"),
            ("state file", self.state_file),
        )
        return report_tables("failback", self.completed, rows, self.steps, self.notes)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Failback(CloudRunbook):
    """The failback runbook for ``instance`` (default ``cloud.sql_instance``)."""

    title = "failback"
    command = "gcp failback"
    kind = FAILBACK

    def __init__(
        self,
        inventory: Inventory,
        instance: str | None = None,
        *,
        say: Callable[[str], None] | None = None,
        confirm: Callable[[str], None] | None = None,
        stop_after: str | None = None,
        client=None,
    ):
        from prontuario_cli.gcp.client import choose_instance

        self.instance, self.drill = choose_instance(inventory, instance)
        self._client = client
        self._notes: list[str] = []
        cloud = inventory.cloud
        self.database = cloud.data.database if cloud.data else inventory.cluster.database
        super().__init__(inventory, self.instance, say=say, confirm=confirm, stop_after=stop_after)

    # ------------------------------------------------------------------ the steps, in order

    def steps(self) -> tuple[Step, ...]:
        db = self.database
        cloud_server = f"{self.inv.haproxy.write_backend}/{self.inv.cloud.haproxy_server}"
        rebuild = (
            "re-create the cloud replica from the Macs (lab: rebuild the stand-in and subscribe it with pglogical)"
            if is_lab(self.inv)
            else f"re-create {self.instance} as a replica of the Macs (by hand; --resume checks it)"
        )
        return (
            Step("check", self._check, f"check: emergency mode recorded, {self.instance} is a primary, reachable by DSN"),
            Step("freeze-cloud", self._freeze_cloud,
                 f"FREEZE the cloud: HAProxy {cloud_server} in maintenance; {db} read-only; sessions ended (write downtime starts)", confirm=True),
            Step("start-macs", self._start_macs,
                 "start Patroni + PostgreSQL on " + ", ".join(n.name for n in self.inv.macs) + " (still in HAProxy maintenance); wait for a leader", confirm=True),
            Step("copy-data", self._copy_data,
                 f"pg_dump {db} from the cloud -> pg_restore into {db}_failback on the Mac leader -> rename: {db} -> {db}_before_failback_<run>, {db}_failback -> {db}",
                 confirm=True, parts=COPY_PARTS),
            Step("verify-data", self._verify_data, "row counts of every table equal on the Mac leader and the cloud; the promotion's check row present"),
            Step("route-writes-back", self._route_writes_back,
                 "HAProxy: the Macs out of maintenance; a write through the write frontend lands on the Mac primary", confirm=True),
            Step("clear-flag", self._clear_flag, "gcp_fallback_active 0 (state file + metrics textfile) (write downtime ends)"),
            Step("rebuild-replica", self._rebuild_replica, f"{rebuild}; a write on the Macs must reach it within {self.inv.targets.both_lost.rpo_s:g} s; then {cloud_server} leaves maintenance (its check answers 503)", confirm=True),
            Step("notify", self._notify, "notify: emergency mode is off"),
            Step("archive", self._archive, "archive the journals; delete the dump file"),
        )

    # ------------------------------------------------------------------ helpers

    def _cloud_session(self, timeout_s: float = 30.0):
        from prontuario_cli.gcp.data import open_session

        return open_session(self.inv, self.instance, time.monotonic() + timeout_s)

    def _mac_session(self, node_name: str, dbname: str, timeout_s: float = 60.0):
        from prontuario_cli.connect.cloudsql import DsnTarget, dsn_session
        from prontuario_cli.secrets import secret_or_none

        node = self.inv.node(node_name)
        target = DsnTarget(node.address, node.ports.postgresql, self.inv.cluster.postgres_user, dbname, secret_or_none(self.inv, "postgres_password"))
        return dsn_session(target, time.monotonic() + timeout_s, application_name="prontuario-failback")

    def _promotion(self) -> RunState | None:
        """The journal of the promotion this failback undoes (None once archived)."""
        return RunState.load(journal_path(self.state_dir, PROMOTE, self.instance))

    # ------------------------------------------------------------------ the engine's hooks

    def admit(self, state: RunState | None, resume: bool) -> None:
        super().admit(state, resume)
        if state is None:
            self._preflight()

    def _preflight(self) -> None:
        from prontuario_cli.cluster.fallback import read_fallback
        from prontuario_cli.gcp.data import data_via

        if data_via(self.inv) != "dsn":
            raise ConfigError(
                "failback copies the database with pg_dump, which needs a direct connection to the instance",
                hint="set cloud.data_via: dsn with the instance's private IP in cloud.data (or run cloud-sql-proxy and point cloud.data at it)",
            )
        promotion = self._promotion()
        if not read_fallback(self.state_dir).get("active") and not (promotion and promotion.complete):
            raise RefusedError(f"emergency mode is not recorded as active for {self.instance}: nothing to fail back", hint="see: prontuario gcp status")
        if promotion is not None and promotion.get("route_writes") is False:
            raise RefusedError(
                f"{self.instance} was promoted in a drill that never took the platform's writes: there is nothing to copy back to the Macs",
                hint="re-create the drill replica instead (lab: Lab.rebuild_standin())",
            )
        if promotion is not None and not promotion.complete:
            raise RefusedError("the promotion did not complete", hint="finish it first: prontuario gcp promote --resume")

    def new_run(self) -> dict[str, Any]:
        return {"instance": self.instance, "database": self.database, "inventory": self.inv.source}

    def audit_args(self, state: RunState | None) -> dict[str, Any]:
        return {"instance": self.instance, "run_id": state.get("run_id") if state is not None else None}

    def _part_done(self, state: RunState, part: str) -> None:
        """Record one part of copy-data; the stop-after hook may stop right after it."""
        state.set(copy={**(state.get("copy") or {}), part: utc_now()})
        self.checkpoint(part)

    # ------------------------------------------------------------------ the steps

    def _check(self, state: RunState) -> str:
        info = self.client.get_instance(self.instance)
        if state.done("freeze-cloud"):
            return f"{self.instance}: {info.state}, {info.instance_type}"
        if info.is_replica:
            raise RefusedError(f"{self.instance} is a read replica ({info.instance_type}): it was not promoted, nothing to fail back")
        from prontuario_cli.gcp.data import read_lag

        with self._cloud_session() as session:
            lag = read_lag(session)  # a logical subscriber is read-write: its subscription says "replica"
            row = session.execute("SELECT current_database() AS db")[0]
        if lag.in_recovery:
            raise RefusedError(f"{self.instance}'s database still follows the Macs ({lag.receiver_status or 'in recovery'}): it was not promoted")
        return f"{self.instance}: {info.state}, {info.instance_type}; database {row['db']} read-write"

    def _freeze_cloud(self, state: RunState) -> str:
        from prontuario_cli.gcp.data import row_counts

        haproxy = self._haproxy()
        parts = []
        if haproxy.available:
            server = self.inv.cloud.haproxy_server
            for backend in (haproxy.write_backend, haproxy.read_backend):
                if haproxy.has(backend, server):
                    parts.append(haproxy.maintenance(backend, server))
        else:
            self._notes.append("no HAProxy runtime API: stop the applications writing to the cloud by hand")
        with self._cloud_session() as session:
            session.execute(f"ALTER DATABASE {_quote(self.database)} SET default_transaction_read_only = on")
            ended = session.execute(
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )[0]["n"]
            lsn = session.execute("SELECT pg_current_wal_lsn()::text AS lsn")[0]["lsn"]
            counts = row_counts(session)
        state.set(frozen_epoch=time.time(), cloud_lsn=lsn, cloud_counts=counts)
        parts.append(f"{self.database} read-only, {ended} session(s) ended, WAL at {lsn}, {len(counts)} table(s), {sum(counts.values())} row(s)")
        return "; ".join(parts)

    def _start_macs(self, state: RunState) -> str:
        from prontuario_cli.cluster.patroni import cluster_view

        haproxy = self._haproxy()
        if haproxy.available:  # re-assert: the Macs must not take client writes before the copy
            for node in self.inv.macs:
                for backend in (haproxy.write_backend, haproxy.read_backend):
                    if haproxy.has(backend, node.name):
                        haproxy.maintenance(backend, node.name)
        started = []
        for node in self.inv.macs:
            started.append(f"{node.name}: {m.start_node(self.inv, node.name)}")

        def running_leader() -> str | None:
            view = cluster_view(self.inv)
            return view.leader if any(x.name == view.leader and x.state == "running" for x in view.members) else None

        leader, _ = wait_for(
            "a Patroni leader on the Macs", running_leader, LEADER_TIMEOUT_S, interval_s=1,
            on_timeout=lambda last: OperationFailed(
                f"no Patroni leader on the Macs within {LEADER_TIMEOUT_S:g} s" + (f" (last: {last})" if last else ""), hint="see the Patroni logs; --resume when a leader is up"
            ),
        )

        # The leader must accept writes (Patroni may still be finishing its promotion).
        def read_write() -> bool:
            with self._mac_session(leader, "postgres", 10) as session:
                return not session.execute("SELECT pg_is_in_recovery() AS r")[0]["r"]

        wait_for(
            f"the Mac leader {leader} read-write", read_write, 60, interval_s=0.5,
            on_timeout=lambda last: OperationFailed(f"the Mac leader {leader} is not read-write within 60 s ({last})", hint="--resume"),
        )
        state.set(mac_leader=leader)
        return "; ".join(started) + f"; leader {leader}"

    def _copy_data(self, state: RunState) -> str:
        leader = state.get("mac_leader")
        db = self.database
        new_db, old_db = f"{db}_failback", f"{db}_before_failback_{state.get('run_id').split('-')[0].lower()}"
        dump = self.state_dir / f"failback-{state.get('run_id')}.dump"
        done = state.get("copy") or {}
        if "dump" not in done:
            self._dump(dump)
            self._part_done(state, "dump")
        if "restore" not in done:
            with self._mac_session(leader, "postgres") as session:
                session.execute(f"DROP DATABASE IF EXISTS {_quote(new_db)} WITH (FORCE)")
                session.execute(f"CREATE DATABASE {_quote(new_db)}")
            self._restore(dump, leader, new_db)
            self._part_done(state, "restore")
        if "swap" not in done:
            with self._mac_session(leader, "postgres") as session:
                names = {r["datname"] for r in session.execute("SELECT datname FROM pg_database")}
                if new_db in names:
                    for name in (db, new_db):
                        session.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
                    if db in names and old_db in names:
                        raise OperationFailed(f"both {db} and {old_db} exist on {leader}: a swap cannot be finished safely", hint="rename one by hand, then --resume")
                    if db in names:
                        session.execute(f"ALTER DATABASE {_quote(db)} RENAME TO {_quote(old_db)}")
                    session.execute(f"ALTER DATABASE {_quote(new_db)} RENAME TO {_quote(db)}")
            state.set(kept_database=old_db)
            self._part_done(state, "swap")
        self._notes.append(
            f"the Macs' database before failback is kept as {old_db} on {leader}: it may hold commits from the Macs' last seconds "
            "that never reached the cloud (the RPO window); reconcile them, then drop it"
        )
        return f"{db} copied from the cloud to {leader} ({dump.stat().st_size if dump.exists() else 0} B dump); the Macs' old copy kept as {old_db}"

    def _dump(self, dump: Path) -> None:
        data = self.inv.cloud.data
        env = self._pg_env(data.password, "cloud.data.password")
        argv = [node_access(self.inv).pg_tool("pg_dump"), "-h", data.host, "-p", str(data.port), "-U", data.user, "-d", self.database,
                "-Fc", "--no-sync", "-f", str(dump) + ".part"]  # fmt: skip
        fd = os.open(str(dump) + ".part", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        self._run_tool(argv, env, "pg_dump of the cloud database")
        os.replace(str(dump) + ".part", dump)

    def _restore(self, dump: Path, leader: str, dbname: str) -> None:
        from prontuario_cli.secrets import secret_or_none

        node = self.inv.node(leader)
        env = self._pg_env(None, None)
        password = secret_or_none(self.inv, "postgres_password")
        if password is not None:
            env["PGPASSWORD"] = password
        argv = [node_access(self.inv).pg_tool("pg_restore"), "-h", node.address, "-p", str(node.ports.postgresql), "-U", self.inv.cluster.postgres_user,
                "-d", dbname, str(dump)]  # fmt: skip
        result = self._run_tool(argv, env, f"pg_restore into {dbname} on {leader}", check=False)
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if "error:" in line.lower()]
            harmless = errors and all("role" in line and "does not exist" in line for line in errors)
            if not harmless:
                raise OperationFailed(f"pg_restore into {dbname} on {leader} failed: {(errors or result.stderr.splitlines() or ['?'])[0][:300]}", hint="fix it, then --resume (the restore starts again)")
            self._notes.append(f"pg_restore: {len(errors)} grant(s) to roles missing on the Macs were skipped")

    def _pg_env(self, ref, name) -> dict[str, str]:
        from prontuario_cli.secrets import read_secret

        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGCONNECT_TIMEOUT"] = str(max(2, int(self.inv.health_checks.timeout_s * 5)))
        env["PGAPPNAME"] = "prontuario-failback"
        if ref is not None:
            env["PGPASSWORD"] = read_secret(ref, name)
        return env

    def _run_tool(self, argv: list[str], env: dict[str, str], what: str, check: bool = True):
        try:
            result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=DUMP_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise OperationFailed(f"{what} did not finish within {DUMP_TIMEOUT_S:g} s", hint="--resume starts this part again") from None
        except OSError as exc:
            raise OperationFailed(f"{what}: cannot run {argv[0]}: {exc.strerror or exc}") from None
        if check and result.returncode != 0:
            raise OperationFailed(f"{what} failed (exit {result.returncode}): {result.stderr.strip().splitlines()[-1:] or ['?']}", hint="fix it, then --resume")
        return result

    def _verify_data(self, state: RunState) -> str:
        from prontuario_cli.gcp.data import CHECK_TABLE, row_counts

        leader = state.get("mac_leader")
        expected = state.get("cloud_counts") or {}
        with self._mac_session(leader, self.database) as session:
            got = row_counts(session)
            promotion = self._promotion()
            check_row = (promotion.get("check_row") or {}).get("id") if promotion else None
            found = None
            if check_row is not None and f"public.{CHECK_TABLE}" in got:
                found = session.execute(f"SELECT count(*) AS n FROM {CHECK_TABLE} WHERE id = %s", (check_row,))[0]["n"]
        differ = [f"{t}: cloud {n}, Mac {got.get(t)}" for t, n in expected.items() if got.get(t) != n]
        if differ:
            raise OperationFailed("the copy on the Macs differs from the cloud: " + "; ".join(differ[:5]), hint="writes stay frozen; investigate, then --resume (copy-data can be re-run by editing nothing: it is done)")
        if check_row is not None and found != 1:
            raise OperationFailed(f"the promotion's check row {check_row} is missing on the Macs")
        return f"{len(expected)} table(s), {sum(expected.values())} row(s) identical on {leader} and the cloud" + (f"; check row {check_row} present" if check_row else "")

    def _route_writes_back(self, state: RunState) -> str:
        haproxy = self._haproxy()
        if not haproxy.available:
            self._notes.append("no HAProxy runtime API: point the applications back at the Macs by hand")
            return "no HAProxy runtime API: point the applications back at the Macs by hand"
        servers = [(b, n.name) for n in self.inv.macs for b in (haproxy.write_backend, haproxy.read_backend) if haproxy.has(b, n.name)]
        haproxy.release(servers, check_rise_s(self.inv), settle_s=check_period_s(self.inv))
        leader = state.get("mac_leader")
        from prontuario_cli.cluster.patroni import cluster_view

        leader = cluster_view(self.inv).leader or leader
        waited = haproxy.wait_state(haproxy.write_backend, leader, True, check_rise_s(self.inv))
        writers = haproxy.writer()
        if writers != [leader]:
            raise OperationFailed(f"HAProxy sends writes to {', '.join(writers) or 'nothing'}, expected only {leader}")
        row = self._write_through_haproxy(state)
        state.set(writes_back_epoch=time.time(), mac_leader=leader)
        return f"{haproxy.write_backend}/{leader} UP after {waited:.1f} s; write {row['id']} landed on {row['server']}"

    def _write_through_haproxy(self, state: RunState) -> dict:
        from prontuario_cli.cluster.haproxy import haproxy_node
        from prontuario_cli.cluster.haproxy import mac_servers as ha_mac_servers
        from prontuario_cli.connect.cloudsql import DsnTarget, dsn_session
        from prontuario_cli.gcp.data import write_check
        from prontuario_cli.secrets import secret_or_none

        node = haproxy_node(self.inv)
        target = DsnTarget(node.address, node.ports.haproxy_write, self.inv.cluster.postgres_user, self.database, secret_or_none(self.inv, "postgres_password"))
        macs = ha_mac_servers(self.inv)

        def on_a_mac() -> dict:
            with dsn_session(target, time.monotonic() + 10, application_name="prontuario-failback") as session:
                row = write_check(session, state.get("run_id"), "gcp failback: write through HAProxy")
            if row["server"] not in macs:
                raise OperationFailed(f"a write through HAProxy landed on {row['server']}, not on a Mac")
            return row

        row, _ = wait_for(
            "a write on the Macs through HAProxy", on_a_mac, 30, interval_s=0.3,
            on_timeout=lambda last: OperationFailed(f"no write acknowledged by the Macs through HAProxy within 30 s: {last}"),
        )
        return row

    def _clear_flag(self, state: RunState) -> str:
        from prontuario_cli.cluster.fallback import update_metric, write_fallback

        path = write_fallback(self.state_dir, False, ended_at=utc_now(), failback_run_id=state.get("run_id"))
        detail = f"{path} inactive"
        if self.inv.paths.metrics_textfile:
            detail += f"; gcp_fallback_active 0 in {update_metric(self.inv.paths.metrics_textfile, False)}"
        return detail

    def _rebuild_replica(self, state: RunState) -> str:
        from prontuario_cli.gcp.data import read_lag

        parts = []
        rebuilt = node_access(self.inv).rebuild_cloud_replica()
        if rebuilt is not None:
            parts.append(rebuilt)
        else:  # re-created on Google's side by a person: it must be a replica by now
            info = self.client.get_instance(self.instance)
            if not info.is_replica:
                raise OperationFailed(
                    f"{self.instance} is not a replica yet ({info.instance_type})",
                    hint=(
                        "re-create it as a replica of the Macs (Cloud SQL external-server replication / Database Migration Service), "
                        "keep the same name or update cloud.sql_instance, then: prontuario gcp failback --resume"
                    ),
                )
        last = ""

        def streaming() -> bool:
            nonlocal last
            try:
                info = self.client.get_instance(self.instance)
                if not info.is_replica:
                    last = info.instance_type
                    return False
                with self._cloud_session(10) as session:
                    lag = read_lag(session)
            except ProntuarioError as exc:
                last = exc.one_line()
                return False
            last = f"replica {lag.in_recovery}, {'subscription' if lag.logical else 'WAL receiver'} {lag.receiver_status}"
            return lag.streaming

        wait_for(
            "the cloud replica streaming", streaming, 120, interval_s=1,
            on_timeout=lambda _: OperationFailed(f"the cloud replica is not streaming within 120 s (last: {last})", hint="--resume to look again"),
        )
        from prontuario_cli.gcp.follow import NotFollowing, marker_arrives

        try:  # following, proven with a row: written on the Macs now, read on the replica
            arrival = marker_arrives(self.inv, self.instance, f"{state.get('run_id')}-failback-follow")
        except NotFollowing as exc:
            raise OperationFailed(exc.message, hint="prontuario replication check shows the subscription and its slot; then --resume") from None
        parts.append(f"{self.instance} follows the Macs again (a write made via {arrival.server} arrived in {arrival.delay_s:.2f} s)")
        haproxy = self._haproxy()
        if haproxy.available:
            server = self.inv.cloud.haproxy_server
            servers = [(b, server) for b in (haproxy.write_backend, haproxy.read_backend) if haproxy.has(b, server)]
            haproxy.release(servers, check_rise_s(self.inv), settle_s=check_period_s(self.inv), must_be_down=True)
            parts.append(f"{haproxy.write_backend}/{server} back as a guarded backup (check failing while it is a replica)")
        return "; ".join(parts)

    def _notify(self, state: RunState) -> str:
        from prontuario_cli.gcp.notify import notify

        event = {
            "event": "emergency-mode-off",
            "drill": self.drill,
            "instance": self.instance,
            "project": self.inv.cloud.project,
            "run_id": state.get("run_id"),
            "at": utc_now(),
            "message": "Emergency mode is over: the platform is back on the Mac Studios with every feature.",
        }
        return notify(self.inv.cloud.notify_command, event)

    def _archive(self, state: RunState) -> str:
        dump = self.state_dir / f"failback-{state.get('run_id')}.dump"
        for leftover in (dump, Path(str(dump) + ".part")):
            try:
                leftover.unlink()
            except FileNotFoundError:
                pass
        moved = []
        promotion = self._promotion()
        if promotion is not None:
            moved.append(str(promotion.archive()))
        downtime = None
        if state.get("frozen_epoch") and state.get("writes_back_epoch"):
            downtime = round(state.get("writes_back_epoch") - state.get("frozen_epoch"), 3)
        state.set(completed_at=utc_now(), downtime_s=downtime)
        state.mark("archive", "done", detail="archived", seconds=0.0)
        moved.append(str(state.archive()))
        return "dump deleted; archived " + ", ".join(moved)

    # ------------------------------------------------------------------ report

    def report(self, state: RunState, resumed: bool) -> FailbackReport:
        return FailbackReport(
            instance=self.instance,
            run_id=str(state.get("run_id")),
            resumed=resumed,
            completed=state.complete,
            steps=tuple(self.step_results(state)),
            mac_leader=state.get("mac_leader"),
            kept_database=state.get("kept_database"),
            downtime_s=state.get("downtime_s"),
            state_file=str(state.path),
            notes=tuple(self._notes),
        )
