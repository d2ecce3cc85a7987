"""The Cloud SQL replica in the replication check: following, lag, and what breaks it.

Split from :mod:`~prontuario_cli.replication.evaluate` (same rules, same collector):
the replica is a pglogical subscriber of the Macs, judged on both ends — its
subscription on the replica, its slot on the primary and on each standby — and by what
it cannot receive (tables and sequences outside the replication set, tables without a
primary key, DDL run on the Macs only). Pure, like the rest of the evaluation.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from prontuario_cli.inventory import Inventory
from prontuario_cli.replication import facts
from prontuario_cli.replication.evaluate import _Collector, reachability
from prontuario_cli.replication.report import CloudRow, MemberRow
from prontuario_cli.replication.state import lag_seconds
from prontuario_cli.report import Status, human_bytes


def evaluate_cloud(inventory: Inventory, outcomes, leader, leader_fact, members: Sequence[MemberRow], gcp_active, timeout_s,
                    c: _Collector, samples, now: float) -> tuple[MemberRow | None, CloudRow | None]:
    """The Cloud SQL replica: a pglogical subscriber of the Macs (through the source
    representation instance), judged on both ends.

    On the primary, the subscription's logical slot (Patroni keeps it on both Macs):
    missing or lost means the replica cannot continue after this failover; its confirmed
    position gives the bytes behind, and the checks' own WAL samples the seconds. On the
    replica, the subscription's state: anything but ``replicating`` means it stopped
    following. Both are CRITICAL (the RPO < 60 s promise is gone), and so is a lag past
    ``targets.both_lost.rpo_s``; half of it is a WARNING. Then what would break the
    subscription later (WARNINGs, see :func:`_standbys_without_slot` and
    :func:`_what_the_cloud_replica_misses`). After a recorded promote the replica is the
    primary: nothing to follow.
    """
    outcome = outcomes.get("postgres:cloud")
    if outcome is None:
        return None, None
    key = "member:cloud"
    wanted = inventory.cloud.replication
    rpo_s = inventory.targets.both_lost.rpo_s
    slot = next((s for s in (leader_fact.logical_slots or () if leader_fact else ()) if s.name == wanted.slot), None)
    behind = max(0, slot.behind_bytes) if slot is not None and slot.behind_bytes is not None else None
    confirmed = facts.lsn_to_int(slot.confirmed_flush_lsn) if slot is not None else None
    lag_s = lag_seconds(samples, confirmed, now) if confirmed is not None else None
    word, status, note = reachability(outcome, "cloud replica", timeout_s)
    subscription = None
    if status == Status.OK:
        fact: facts.PgNode = outcome.value
        subscription = next((s for s in fact.subscriptions or () if s.name == wanted.subscription), None)
    state = subscription.status if subscription else None
    cloud = CloudRow(wanted.subscription, wanted.slot, state, slot is not None and slot.active, behind, lag_s, rpo_s,
                     subscription.remote_lsn if subscription else None, following=False)
    if gcp_active:
        return MemberRow("cloud", "cloud", "primary", "promoted", None, word, Status.OK), cloud
    if status != Status.OK:
        c.add("cloud", Status.WARNING, f"{note}: the emergency fallback is degraded", key=key)
    elif outcome.value.subscriptions is None:
        c.add("cloud", Status.CRITICAL, "cloud replica has no pglogical: it does not follow the Macs", key=key)
    elif subscription is None:
        c.add("cloud", Status.CRITICAL, f"cloud replica has no subscription {wanted.subscription!r}: it does not follow the Macs", key=key)
    elif subscription.status != "replicating":
        c.add("cloud", Status.CRITICAL, f"cloud replica stopped following: subscription {wanted.subscription} is {subscription.status}", key=key)
    if leader_fact is not None and leader_fact.logical_slots is not None and slot is None:
        c.add("cloud", Status.CRITICAL, f"slot {wanted.slot} is missing on the primary {leader}: the cloud replica cannot continue from it", key=key)
    elif slot is not None and slot.wal_status == "lost":
        c.add("cloud", Status.CRITICAL, f"slot {wanted.slot} on {leader} has lost WAL the cloud replica still needs: it must be seeded again", key=key)
    if lag_s is not None and lag_s > rpo_s:
        c.add("cloud", Status.CRITICAL, f"cloud replica {lag_s:.0f} s behind ({human_bytes(behind or 0)}): past the {rpo_s:g} s RPO target", key=key)
    elif lag_s is not None and lag_s > rpo_s / 2:
        c.add("cloud", Status.WARNING, f"cloud replica {lag_s:.0f} s behind ({human_bytes(behind or 0)}): half the {rpo_s:g} s RPO target", key=key)
    if slot is not None:
        _standbys_without_slot(inventory, outcomes, members, wanted.slot, c)
    _what_the_cloud_replica_misses(leader_fact, outcome.value if status == Status.OK else None, c)
    following = state == "replicating" and slot is not None and slot.wal_status != "lost" and (lag_s is None or lag_s <= rpo_s)
    cloud = replace(cloud, following=following)
    if behind:
        c.notes.setdefault(key, []).append((Status.OK, f"{human_bytes(behind)} behind the primary" + (f" ({lag_s:.0f} s)" if lag_s else "")))
    return MemberRow("cloud", "cloud", "subscriber" if subscription else None, state, None, word, Status.OK), cloud


# Patroni's names for a standby, as a sentence says them.
_STANDBY_WORDS = {"sync_standby": "sync standby", "quorum_standby": "quorum standby", "replica": "replica"}
LISTED = 5  # names shown in one problem; the rest are counted


def _standbys_without_slot(inventory: Inventory, outcomes, members: Sequence[MemberRow], slot: str, c: _Collector) -> None:
    """A Mac standby must hold a copy of the cloud replica's slot before it may take over.

    Patroni copies a permanent slot to a standby on an HA loop after the standby starts
    (then keeps it advancing). Promoted without it, the new primary has no slot for the
    subscription to continue from: the cloud replica is cut off and must be seeded again.
    """
    roles = {m.node: m.role for m in members}
    for node in inventory.macs:
        outcome = outcomes.get(f"postgres:{node.name}")
        if outcome is None or not outcome.ok:
            continue  # reported with the member
        fact: facts.PgNode = outcome.value
        if not fact.in_recovery or fact.logical_slots is None or any(s.name == slot for s in fact.logical_slots):
            continue
        who = _STANDBY_WORDS.get(roles.get(node.name) or "", "standby")
        c.add("cloud", Status.WARNING, f"{who} {node.name} does not hold slot {slot} yet: a failover to it now would cut the cloud "
              "replica off (Patroni copies it within loop_wait)", key=f"member:{node.name}")


def _what_the_cloud_replica_misses(primary: facts.PgNode | None, replica: facts.PgNode | None, c: _Collector) -> None:
    """What the subscription does not carry, or will stop at.

    pglogical replicates the tables and sequences of its replication sets and nothing
    else: a table created on the Macs after the subscription stays on the Macs. It carries
    UPDATE and DELETE only for a table with a primary key. It replicates no DDL: a column
    added on the Macs only stops the subscription at the next change to that table.
    Judged from the primary's catalog (when pglogical is there) and, for the columns, the
    cloud replica's.
    """
    relations = primary.relations if primary is not None else None
    if relations is None:
        return
    key = "member:cloud"
    outside = [r.name for r in relations if not r.replicated]
    if outside:
        c.add("cloud", Status.WARNING, f"not replicated to the cloud replica (in no pglogical replication set): {_listed(outside)}; "
              f"create {_them(outside)} there, then add {_them(outside)} to the set (pglogical.replication_set_add_table / "
              "replication_set_add_sequence)", key=key)
    keyless = [r.name for r in relations if r.kind == "table" and not r.has_primary_key]
    if keyless:
        plural = len(keyless) > 1
        c.add("cloud", Status.WARNING, f"{'tables' if plural else 'table'} without a primary key: {_listed(keyless)}; pglogical can "
              f"replicate only {'their' if plural else 'its'} inserts to the cloud replica", key=key)
    ours = primary.table_columns
    theirs = replica.table_columns if replica is not None else None
    if ours is None or theirs is None:
        return
    drift = []
    for r in relations:
        if r.kind != "table" or not r.replicated or r.name not in ours:
            continue
        mine, there = set(ours[r.name]), set(theirs.get(r.name, ()))
        if r.name not in theirs:
            drift.append(f"{r.name} (missing there)")
        elif mine != there:
            differ = [f"on the {where} only: {', '.join(sorted(cols))}" for where, cols in (("Macs", mine - there), ("replica", there - mine)) if cols]
            drift.append(f"{r.name} ({'; '.join(differ)})")
    if drift:
        c.add("cloud", Status.WARNING, f"DDL not applied on the cloud replica: {_listed(drift)}; the subscription stops at the next change "
              f"to {_them(drift)}: apply the same DDL there (e.g. pglogical.replicate_ddl_command)", key=key)


def _listed(names: Sequence[str]) -> str:
    """The first LISTED names, and how many more."""
    shown = ", ".join(names[:LISTED])
    return shown + (f" +{len(names) - LISTED} more" if len(names) > LISTED else "")


def _them(names: Sequence[str]) -> str:
    return "them" if len(names) > 1 else "it"
