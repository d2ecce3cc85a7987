"""Whether the cloud replica follows the Macs, proven with data rather than positions.

A row written through HAProxy's write frontend (to whichever Mac leads) must appear on
the cloud replica within the RPO target (``targets.both_lost.rpo_s``). A subscription
can say ``replicating`` and a slot can look current while rows still do not arrive (a
diverged replica, an apply worker stuck on a change it cannot apply); a row that
arrives cannot lie.

pglogical applies the provider's commits in commit order, so once a row has arrived,
every commit acknowledged before it has arrived too: a drill can then compare its own
rows on both sides and count what the replica lacks, and what it holds that the Macs
do not (PostgreSQL 15's logical walsender may send a commit the sync standby has not
confirmed yet; after a kill the replica could keep it while the new primary never had
it).

Used by every failover drill (the replica must follow the new primary), the cloud drill
(the drill replica must follow before it is promoted) and ``gcp failback`` (the rebuilt
subscription must carry a write).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from prontuario_cli.engines import PROBE_TABLE
from prontuario_cli.errors import OperationFailed, ProntuarioError
from prontuario_cli.inventory import Inventory


class NotFollowing(OperationFailed):
    """A row written on the Macs did not reach the cloud replica within its budget."""


@dataclass(frozen=True)
class Arrival:
    run_id: str
    server: str  # the Mac that acknowledged the write
    delay_s: float  # from the write's acknowledgement to the row seen on the instance


def write_marker(inventory: Inventory, run_id: str, timeout_s: float = 10.0) -> str:
    """One row in the probe table through HAProxy's write frontend; returns the server
    (``addr:port``) that acknowledged it."""
    from prontuario_cli.cluster.haproxy import frontend_target
    from prontuario_cli.connect.postgres import session

    target = frontend_target(inventory, application_name="prontuario-cloud-follow")
    try:
        with session(target, time.monotonic() + timeout_s, read_only=False) as pg:
            rows = pg.execute(
                f"INSERT INTO {PROBE_TABLE} (run_id, seq) VALUES (%s, 1) "
                "RETURNING host(inet_server_addr()) || ':' || inet_server_port() AS server",
                (run_id,),
            )
    except ProntuarioError as exc:
        raise OperationFailed(f"cannot write a marker row through {target.where}: {exc.one_line()}") from None
    return str(rows[0]["server"])


def seqs_on(inventory: Inventory, instance: str, run_id: str, timeout_s: float = 10.0) -> set[int]:
    """The probe table's sequence numbers of ``run_id`` that ``instance`` holds."""
    from prontuario_cli.gcp.data import open_session

    with open_session(inventory, instance, time.monotonic() + timeout_s) as s:
        return {int(r["seq"]) for r in s.execute(f"SELECT seq FROM {PROBE_TABLE} WHERE run_id = %s", (run_id,))}


def wait_row(inventory: Inventory, instance: str, run_id: str, within_s: float, *, seq: int | None = None,
             interval_s: float = 0.2, stop: threading.Event | None = None) -> float | None:
    """Seconds until ``instance`` holds the row (``run_id``, and ``seq`` when given);
    None when it did not within ``within_s`` (or ``stop`` was set).

    One session is kept for the whole wait and opened again if it breaks, each attempt
    bounded by what is left of the budget.
    """
    from prontuario_cli.gcp.data import open_session

    started = time.monotonic()
    deadline = started + within_s
    sql = f"SELECT 1 AS x FROM {PROBE_TABLE} WHERE run_id = %s" + (" AND seq = %s" if seq is not None else "")
    params = (run_id, seq) if seq is not None else (run_id,)
    stop = stop or threading.Event()
    while time.monotonic() < deadline and not stop.is_set():
        try:
            with open_session(inventory, instance, deadline + 1.0) as s:
                while time.monotonic() < deadline and not stop.is_set():
                    if s.execute(sql, params):
                        return time.monotonic() - started
                    stop.wait(interval_s)
        except ProntuarioError:
            stop.wait(interval_s)  # the instance is restarting or unreachable: look again
    return None


def marker_arrives(inventory: Inventory, instance: str, run_id: str, within_s: float | None = None) -> Arrival:
    """Write a marker row on the Macs and wait until ``instance`` holds it.

    Raises NotFollowing when it does not within ``within_s`` (the RPO target when None).
    """
    budget = inventory.targets.both_lost.rpo_s if within_s is None else within_s
    server = write_marker(inventory, run_id)
    delay = wait_row(inventory, instance, run_id, budget)
    if delay is None:
        raise NotFollowing(
            f"{instance} did not receive a write made on the Macs (via {server}) within {budget:g} s: it is not following them",
            hint="prontuario replication check shows the subscription and its slot",
        )
    return Arrival(run_id, server, round(delay, 3))


class ArrivalWatch:
    """Wait in the background for one row to reach the cloud replica (bounded).

    Started the moment a write is acknowledged, it times the replica's catch-up without
    holding the caller up; :meth:`result` gives the seconds, or None when the row did not
    arrive within ``within_s``.
    """

    def __init__(self, inventory: Inventory, instance: str, run_id: str, seq: int | None, within_s: float):
        self._args = (inventory, instance, run_id, within_s)
        self._seq = seq
        self._stop = threading.Event()
        self._delay: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"arrival-{instance}", daemon=True)

    def start(self) -> "ArrivalWatch":
        self._thread.start()
        return self

    def _run(self) -> None:
        inventory, instance, run_id, within_s = self._args
        self._delay = wait_row(inventory, instance, run_id, within_s, seq=self._seq, stop=self._stop)

    def result(self) -> float | None:
        """The catch-up in seconds (None: not within the budget); waits for the watch to end."""
        self._thread.join(self._args[3] + 15)
        return round(self._delay, 3) if self._delay is not None else None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)
