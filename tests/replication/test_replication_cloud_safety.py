"""What would cut the cloud replica off or break its subscription later: a Mac standby
without its copy of the subscription's slot, tables and sequences outside every pglogical
replication set, tables without a primary key, DDL run on the Macs only.

Unit tests change one fact of the healthy fixtures (plus the catalog the lab's primary and
cloud replica answered); the lab test makes each problem for real on the primary and
checks that ``replication check`` names it, then that it is gone once undone.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from prontuario_cli.cluster import logical
from prontuario_cli.replication import facts
from prontuario_cli.replication.evaluate import evaluate
from prontuario_cli.report import Status
from tests.replication import replication_fixtures as fx

SLOT = "pgl_prontuario_onprem_cloudsql"

# What the lab's primary answered (PG_RELATIONS_SQL, PG_TABLE_COLUMNS_SQL); the cloud
# replica answered the same columns.
RELATION_ROWS = [
    {"name": "prontuario_drill.writes", "kind": "table", "has_primary_key": True, "replicated": True},
    {"name": "public.clinical_notes", "kind": "table", "has_primary_key": True, "replicated": True},
    {"name": "public.clinical_notes_id_seq", "kind": "sequence", "has_primary_key": True, "replicated": True},
]
COLUMN_ROWS = [
    {"name": "prontuario_drill.writes", "columns": ["run_id text", "seq bigint", "written_at timestamp with time zone"]},
    {"name": "public.clinical_notes", "columns": ["at timestamp with time zone", "id bigint", "tag text"]},
]


def relation(name: str, kind: str = "table", has_primary_key: bool = True, replicated: bool = True) -> dict:
    return {"name": name, "kind": kind, "has_primary_key": has_primary_key, "replicated": replicated}


def outcomes_with(relation_rows=RELATION_ROWS, primary_columns=COLUMN_ROWS, replica_columns=COLUMN_ROWS, **replica_changes):
    """The healthy outcomes, the primary a pglogical provider with this catalog, the cloud
    replica with these tables; ``replica_changes`` change the Mac standby's facts."""
    outcomes = fx.replace_value(
        fx.healthy(), "postgres:mac-studio-1",
        relations=facts.parse_relations(relation_rows), table_columns=facts.parse_table_columns(primary_columns),
    )
    outcomes = fx.replace_value(outcomes, "postgres:cloud", table_columns=facts.parse_table_columns(replica_columns))
    standby_slots = fx.healthy()["postgres:mac-studio-1"].value.logical_slots  # Patroni's copy, as on the lab's standby
    return fx.replace_value(outcomes, "postgres:mac-studio-2", **{"logical_slots": standby_slots, **replica_changes})


def run(outcomes, **kw):
    return evaluate(fx.inventory(), outcomes, **kw)


def cloud_warnings(report) -> list[str]:
    return [p.message for p in report.problems if p.component == "cloud" and p.status == Status.WARNING]


def member(report, node: str):
    return next(m for m in report.members if m.node == node)


# --------------------------------------------------------------------------- facts


def test_the_catalog_answers_parse_into_relations_and_columns():
    primary = facts.parse_pg_node(fx.pg_rows()["primary_node"], relation_rows=RELATION_ROWS + [relation("public.raw", has_primary_key=False, replicated=False)],
                                  column_rows=COLUMN_ROWS + [{"name": "public.empty", "columns": None}])
    assert [(r.name, r.kind, r.has_primary_key, r.replicated) for r in primary.relations][2:] == [
        ("public.clinical_notes_id_seq", "sequence", True, True),
        ("public.raw", "table", False, False),
    ]
    assert primary.table_columns["public.clinical_notes"] == ("at timestamp with time zone", "id bigint", "tag text")
    assert primary.table_columns["public.empty"] == ()
    unread = facts.parse_pg_node(fx.pg_rows()["primary_node"])
    assert unread.relations is None and unread.table_columns is None and unread.logical_slots is None  # not read, not "none"


def test_the_slot_reading_lives_in_the_cluster_layer_and_facts_still_names_it():
    assert facts.LogicalSlot is logical.LogicalSlot and facts.parse_logical_slots is logical.parse_logical_slots
    assert facts.PG_LOGICAL_SLOTS_SQL == logical.PG_LOGICAL_SLOTS_SQL
    [slot] = logical.parse_logical_slots(fx.pg_rows()["primary_slots"])
    assert (slot.name, slot.active, slot.confirmed_flush_lsn, slot.behind_bytes) == (SLOT, True, "0/5000368", 0)


# --------------------------------------------------------------------------- all well


def test_a_healthy_catalog_and_a_standby_holding_the_slot_are_ok():
    report = run(outcomes_with())
    assert report.status == Status.OK, [p.message for p in report.problems]
    assert member(report, "cloud").status == Status.OK and member(report, "mac-studio-2").status == Status.OK


# --------------------------------------------------------------------------- the standby's copy of the slot


def test_a_standby_without_the_slot_is_a_warning_naming_it_and_the_slot():
    report = run(outcomes_with(logical_slots=()))
    assert report.status == Status.WARNING
    assert cloud_warnings(report) == [
        (f"sync standby mac-studio-2 does not hold slot {SLOT} yet: a failover to it now would cut the cloud replica off "
         "(Patroni copies it within loop_wait)")
    ]
    assert member(report, "mac-studio-2").status == Status.WARNING and "does not hold slot" in member(report, "mac-studio-2").note


def test_a_standby_holding_only_other_slots_is_still_without_the_cloud_replicas():
    other = dataclasses.replace(fx.healthy()["postgres:mac-studio-1"].value.logical_slots[0], name="pgl_other_slot")
    report = run(outcomes_with(logical_slots=(other,)))
    assert any("mac-studio-2 does not hold slot" in m for m in cloud_warnings(report))


def test_without_patroni_the_standby_is_named_by_what_postgresql_says():
    outcomes = outcomes_with(logical_slots=())
    for name in ("patroni:mac-studio-1", "patroni:mac-studio-2"):  # no member list: PostgreSQL's word for its role
        outcomes[name] = fx.no_answer(name)
    report = run(outcomes)
    assert any(m.startswith(f"replica mac-studio-2 does not hold slot {SLOT} yet") for m in cloud_warnings(report))


def test_slots_not_read_on_the_standby_are_no_warning():
    report = run(outcomes_with(logical_slots=None))
    assert report.status == Status.OK, [p.message for p in report.problems]


def test_when_the_primary_lacks_the_slot_only_that_is_reported():
    outcomes = fx.cloud_slot(outcomes_with(logical_slots=()), gone=True)
    report = run(outcomes)
    assert report.status == Status.CRITICAL and f"slot {SLOT} is missing on the primary mac-studio-1" in " | ".join(p.message for p in report.problems)
    assert not any("does not hold slot" in m for m in cloud_warnings(report))


# --------------------------------------------------------------------------- what the subscription does not carry


def test_tables_and_sequences_outside_every_set_are_a_warning_naming_them():
    rows = [*RELATION_ROWS, relation("public.invoices", replicated=False), relation("public.invoices_id_seq", kind="sequence", replicated=False)]
    report = run(outcomes_with(relation_rows=rows))
    assert report.status == Status.WARNING
    (message,) = cloud_warnings(report)
    assert message.startswith("not replicated to the cloud replica (in no pglogical replication set): public.invoices, public.invoices_id_seq; ")
    assert "pglogical.replication_set_add_table" in message and "replication_set_add_sequence" in message
    assert member(report, "cloud").status == Status.WARNING


def test_a_long_list_is_cut_after_five_names():
    rows = [*RELATION_ROWS, *(relation(f"public.t{i}", replicated=False) for i in range(8))]
    (message,) = cloud_warnings(run(outcomes_with(relation_rows=rows)))
    assert "public.t0, public.t1, public.t2, public.t3, public.t4 +3 more;" in message and "public.t5" not in message


def test_a_table_without_a_primary_key_is_a_warning():
    rows = [*RELATION_ROWS, relation("public.audit_raw", has_primary_key=False)]  # in a set (insert-only), no key
    assert cloud_warnings(run(outcomes_with(relation_rows=rows))) == [
        "table without a primary key: public.audit_raw; pglogical can replicate only its inserts to the cloud replica"
    ]


def test_a_column_added_on_the_macs_only_is_ddl_not_applied():
    columns = [COLUMN_ROWS[0], {"name": "public.clinical_notes", "columns": ["at timestamp with time zone", "id bigint", "reviewed_by text", "tag text"]}]
    report = run(outcomes_with(primary_columns=columns))
    assert report.status == Status.WARNING
    assert cloud_warnings(report) == [
        ("DDL not applied on the cloud replica: public.clinical_notes (on the Macs only: reviewed_by text); the subscription stops at "
         "the next change to it: apply the same DDL there (e.g. pglogical.replicate_ddl_command)")
    ]


def test_a_type_changed_on_the_macs_only_and_a_table_missing_there_are_ddl_not_applied():
    columns = [{"name": "public.clinical_notes", "columns": ["at timestamp with time zone", "id bigint", "tag character varying(40)"]}]
    replica = [{"name": "public.clinical_notes", "columns": ["at timestamp with time zone", "id bigint", "tag text"]}]  # no drill table
    (message,) = cloud_warnings(run(outcomes_with(primary_columns=[COLUMN_ROWS[0], *columns], replica_columns=replica)))
    assert "prontuario_drill.writes (missing there)" in message
    assert "public.clinical_notes (on the Macs only: tag character varying(40); on the replica only: tag text)" in message
    assert "the next change to them" in message


def test_a_table_outside_the_sets_is_not_also_ddl_not_applied():
    rows = [*RELATION_ROWS, relation("public.scratch", replicated=False)]
    columns = [*COLUMN_ROWS, {"name": "public.scratch", "columns": ["a integer"]}]
    (message,) = cloud_warnings(run(outcomes_with(relation_rows=rows, primary_columns=columns)))
    assert message.startswith("not replicated to the cloud replica")


def test_an_unreadable_cloud_replica_still_gets_the_primarys_catalog_judged():
    rows = [*RELATION_ROWS, relation("public.scratch", replicated=False)]
    outcomes = outcomes_with(relation_rows=rows)
    outcomes["postgres:cloud"] = fx.no_answer("postgres:cloud")
    warnings = cloud_warnings(run(outcomes))
    assert any(m.startswith("not replicated to the cloud replica (in no pglogical replication set): public.scratch;") for m in warnings)
    assert not any(m.startswith("DDL not applied") for m in warnings)


def test_nothing_is_judged_without_pglogical_on_the_primary():
    outcomes = outcomes_with(logical_slots=())
    outcomes = fx.replace_value(outcomes, "postgres:mac-studio-1", relations=None)
    assert not any("replication set" in m or "DDL" in m for m in cloud_warnings(run(outcomes)))


BROKEN = {  # a table in no set and without a key, a column changed on the Macs only, a standby without the slot
    "relation_rows": [*RELATION_ROWS, relation("public.raw", has_primary_key=False, replicated=False)],
    "primary_columns": [COLUMN_ROWS[0], {"name": "public.clinical_notes", "columns": ["id bigint", "note text"]}],
    "logical_slots": (),
}


def test_a_broken_catalog_makes_three_warnings_and_a_standby_one():
    assert len(cloud_warnings(run(outcomes_with(**BROKEN)))) == 4  # the baseline for the two tests below


def test_after_a_promote_none_of_it_is_judged():
    report = run(outcomes_with(**BROKEN), gcp_active=True)
    assert cloud_warnings(report) == []
    assert report.status == Status.CRITICAL  # the fallback is active: that is what is reported


def test_without_a_cloud_replica_none_of_it_is_judged():
    inventory = fx.inventory()
    inventory = dataclasses.replace(inventory, cloud=dataclasses.replace(inventory.cloud, data=None))
    outcomes = outcomes_with(**BROKEN)
    del outcomes["postgres:cloud"]
    report = evaluate(inventory, outcomes)
    assert report.cloud is None and report.status == Status.OK, [p.message for p in report.problems]


# --------------------------------------------------------------------------- the lab

TABLE_WITHOUT_KEY = "public.cloud_safety_raw"
NEW_TABLE = "public.cloud_safety_invoices"
ADDED_COLUMN = "cloud_safety_reviewed_by"


def _check(lab) -> dict:
    from tests.helpers import run as cli

    result = cli("-i", str(lab.inventory_path), "replication", "check", "--json")
    assert result.out.strip(), result.err
    return result.json()


def _check_when(lab, condition) -> dict | None:
    """The check's answer when it meets ``condition`` (for poll), else None."""
    data = _check(lab)
    return data if condition(data) else None


def _cloud_messages(data: dict) -> list[str]:
    return [p["message"] for p in data["problems"] if p["component"] == "cloud"]


def _on_the_primary(inventory, *statements: str) -> None:
    """DDL on whichever Mac leads, through HAProxy's write frontend (as an application would)."""
    from prontuario_cli.cluster.haproxy import frontend_target
    from prontuario_cli.connect.postgres import session

    with session(frontend_target(inventory), time.monotonic() + 10, read_only=False) as pg:
        for statement in statements:
            pg.execute(statement)


@pytest.mark.lab
def test_the_lab_names_what_the_cloud_replica_does_not_get_and_forgets_it_once_undone(lab):
    from prontuario_cli.inventory import load_inventory
    from tests.helpers import poll

    inventory = load_inventory(lab.inventory_path)
    poll(lambda: _check_when(lab, lambda d: d["status"] == "ok"), 90, "a healthy lab", every=1.0)
    slot = logical.read_slot(inventory, inventory.cloud.replication.slot, time.monotonic() + 5)
    assert slot is not None and slot.active and slot.plugin == "pglogical_output"
    assert logical.read_slot(inventory, "no_such_slot", time.monotonic() + 5) is None
    try:
        _on_the_primary(
            inventory,
            f"CREATE TABLE {TABLE_WITHOUT_KEY} (note text)",
            f"CREATE TABLE {NEW_TABLE} (id bigint PRIMARY KEY, total numeric)",
        )

        def tables_named():
            messages = _cloud_messages(_check(lab))
            outside = [m for m in messages if m.startswith("not replicated to the cloud replica")]
            keyless = [m for m in messages if m.startswith("table without a primary key")]
            return outside and keyless and (outside[0], keyless[0])

        outside, keyless = poll(tables_named, 10, "warnings about the new tables")
        assert NEW_TABLE in outside and TABLE_WITHOUT_KEY in outside
        assert TABLE_WITHOUT_KEY in keyless and NEW_TABLE not in keyless

        # A column added on the Macs only (nothing written to the table meanwhile: the
        # subscription would stop at that change).
        _on_the_primary(inventory, f"ALTER TABLE public.clinical_notes ADD COLUMN {ADDED_COLUMN} text")
        data = poll(lambda: _check_when(lab, lambda d: any(m.startswith("DDL not applied") for m in _cloud_messages(d))), 10, "the DDL warning")
        (ddl,) = [m for m in _cloud_messages(data) if m.startswith("DDL not applied")]
        assert f"public.clinical_notes (on the Macs only: {ADDED_COLUMN} text)" in ddl
        assert data["status"] == "warning", data["problems"]  # the subscription itself still replicates
    finally:
        _on_the_primary(
            inventory,
            f"DROP TABLE IF EXISTS {TABLE_WITHOUT_KEY}",
            f"DROP TABLE IF EXISTS {NEW_TABLE}",
            f"ALTER TABLE public.clinical_notes DROP COLUMN IF EXISTS {ADDED_COLUMN}",
        )
    data = poll(lambda: _check_when(lab, lambda d: d["status"] == "ok"), 30, "the lab healthy again, every warning gone")
    assert _cloud_messages(data) == []
