"""The DCS drill without a cluster: options, plan, targets, etcd's verdict, the rollback's thaw,
and its place in the compliance report."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import threading
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from prontuario_cli.clock import utc_now
from prontuario_cli.cluster.etcd import EtcdStatus, quorum
from prontuario_cli.drill import dcs
from prontuario_cli.drill.engine import Activity, StepFailed, run_experiment
from prontuario_cli.drill.journal import Journal
from prontuario_cli.errors import ExitCode, OperationFailed, UsageError
from prontuario_cli.inventory import load_inventory
from tests.helpers import EXAMPLE, run


@pytest.fixture(scope="module")
def inventory():
    return load_inventory(EXAMPLE)


def drill_of(inventory, mode="quorum", hold_s=None, cls=dcs.DcsDrill, **options):
    return cls(inventory, dcs.DcsOptions(mode=mode, hold_s=hold_s, **options), f"unit-{mode}", say=lambda text: None)


# --------------------------------------------------------------------------- options and plan


@pytest.mark.parametrize("mode, hold", [("explode", None), ("quorum", 0.0), ("quorum", -5.0), ("member", 601.0), ("quorum", float("nan")), ("quorum", float("inf"))])
def test_bad_options_are_usage_errors(mode, hold):
    with pytest.raises(UsageError):
        dcs.DcsOptions(mode=mode, hold_s=hold)


def test_good_options_and_the_default_hold():
    assert dcs.DcsOptions(mode="member", hold_s=600.0).hold_s == 600.0
    assert dcs.DcsOptions().mode == "quorum" and dcs.DcsOptions().hold_s is None
    assert dcs.default_hold_s(20, 1) == 28  # the fast lab: ttl 20, loop_wait 1
    assert dcs.default_hold_s(30, 10) == 65  # Patroni's defaults


@pytest.mark.parametrize("args, words", [
    (("--hold", "0"), "--hold 0 is not a number of seconds"),
    (("--hold", "9000"), "--hold 9000 is not a number of seconds"),
    (("--mode", "explode"), "'member', 'quorum'"),
])
def test_the_cli_refuses_bad_options_before_anything_runs(isolated_state, args, words):
    result = run("-i", str(EXAMPLE), "drill", "dcs", *args, "--yes")
    assert result.code == ExitCode.USAGE and words in result.err, result.err
    assert not (isolated_state / "reports").exists() and not (isolated_state / "drill.lock").exists()


def test_dry_run_prints_the_plan_per_mode_and_is_audited(isolated_state):
    member = run("-i", str(EXAMPLE), "drill", "dcs", "--mode", "member", "--dry-run", "--json")
    assert member.code == 0, member.err
    plan = member.json()["details"]["plan"]
    assert any("witness's etcd member" in step and "no spare vote" in step for step in plan)
    assert not any("not the Patroni leader" in step for step in plan)
    assert any("longest write gap < 5 s" in step for step in plan)
    assert plan[-3].startswith("rollback (always") and "thaw (SIGCONT) every member the drill froze" in plan[-3]

    quorum_run = run("-i", str(EXAMPLE), "drill", "dcs", "--mode", "quorum", "--hold", "40", "--dry-run", "--json")
    plan = quorum_run.json()["details"]["plan"]
    assert any("the one on the Mac that is not the Patroni leader" in step and "loses its quorum" in step for step in plan)
    assert any("the freeze lasts 40 s (--hold); it must outlast the ttl" in step for step in plan)
    assert any("longest write gap < 30 s" in step for step in plan)  # targets.primary_lost.rto_s of the example

    entry = run("audit", "show", "--json").json()["entries"][-1]
    assert entry["command"] == "drill dcs" and entry["outcome"] == "dry-run" and entry["args"] == {"mode": "quorum", "hold_s": 40.0}
    touched = sorted(p.name for p in isolated_state.rglob("*"))
    assert touched == ["audit.jsonl", "audit.jsonl.head", "audit.jsonl.key"], f"a dry run wrote {touched}"


def test_a_dcs_drill_from_a_script_needs_yes_and_its_choices_are_in_the_help():
    refused = run("-i", str(EXAMPLE), "drill", "dcs", "--mode", "member")
    assert refused.code == ExitCode.USAGE and "--yes" in refused.err
    help_text = " ".join(run("drill", "dcs", "--help").out.split())
    assert "<member|quorum>" in help_text and "Example: prontuario" in help_text


def test_the_mode_tab_completes_its_choices_without_heavy_imports():
    from tests.test_startup import probe

    result, out = probe([], {"_PRONTUARIO_COMPLETE": "complete_bash", "COMP_WORDS": "prontuario drill dcs --mode ", "COMP_CWORD": "4"})
    assert out.split() == ["member", "quorum"] and result["heavy"] == []


def test_the_hold_must_outlast_the_ttl_in_quorum_mode(inventory, monkeypatch):
    from prontuario_cli.cluster import patroni

    monkeypatch.setattr(patroni, "rest_json", lambda node, path, deadline: {"ttl": 20, "loop_wait": 2, "failsafe_mode": False})
    default = drill_of(inventory, "quorum")
    default.leader = "mac-studio-1"
    said = default._read_config()
    assert default.hold_s == 31 and "failsafe_mode is OFF" in said
    assert default.m["failsafe_mode"] is False and default.m["ttl_s"] == 20

    short = drill_of(inventory, "quorum", hold_s=15)
    short.leader = "mac-studio-1"
    with pytest.raises(StepFailed, match="does not outlast Patroni's ttl 20 s"):
        short._read_config()
    member = drill_of(inventory, "member", hold_s=15)
    member.leader = "mac-studio-1"
    assert "freeze for 15 s" in member._read_config()


# --------------------------------------------------------------------------- targets


PASSED_QUORUM = {
    "write_gap_s": 0.46, "lost_acked_writes": 0, "leader_before": "mac-studio-1", "leader_after": "mac-studio-1",
    "timeline_before": 1, "timeline_after": 1,
    "etcd_seen_during_fault": {"healthy_count": 0, "majority": 2, "quorum": False},
}


def targets_of(inventory, mode, measured):
    drill = drill_of(inventory, mode)
    drill.m.update(measured)
    return {t.name.split(" (")[0]: t for t in drill.targets()}


def test_a_quorum_drill_that_kept_writing_meets_every_target(inventory):
    checks = targets_of(inventory, "quorum", PASSED_QUORUM)
    assert all(t.met for t in checks.values()), checks
    assert checks["write gap"].target == 30 and checks["failovers"].value == 0
    assert checks["etcd during the fault: no quorum"].comparison == "<"


def test_a_demoted_primary_misses_the_no_failover_target(inventory):
    """failsafe off: the same node leads again after the thaw, on a new timeline."""
    checks = targets_of(inventory, "quorum", dict(PASSED_QUORUM, write_gap_s=22.9, timeline_after=2))
    assert checks["write gap"].met and checks["RPO"].met
    assert not checks["failovers"].met and checks["failovers"].value == 1
    moved = targets_of(inventory, "quorum", dict(PASSED_QUORUM, leader_after="mac-studio-2"))
    assert not moved["failovers"].met


def test_member_mode_allows_a_few_seconds_and_checks_the_spare_vote_was_gone(inventory):
    seen = {"healthy_count": 2, "majority": 2, "quorum": True}
    ok = targets_of(inventory, "member", dict(PASSED_QUORUM, write_gap_s=4.9, etcd_seen_during_fault=seen))
    assert all(t.met for t in ok.values()), ok
    slow = targets_of(inventory, "member", dict(PASSED_QUORUM, write_gap_s=5.0, etcd_seen_during_fault=seen))
    assert not slow["write gap"].met and slow["write gap"].target == dcs.MEMBER_GAP_TARGET_S
    # the freeze did not take: every member still healthy, so the drill proved nothing
    untouched = targets_of(inventory, "member", dict(PASSED_QUORUM, etcd_seen_during_fault={"healthy_count": 3, "majority": 2, "quorum": True}))
    assert not untouched["etcd during the fault: no spare vote"].met


def test_nothing_measured_meets_nothing(inventory):
    checks = targets_of(inventory, "quorum", {})
    assert not any(t.met for t in checks.values())
    assert checks["failovers"].value is None and drill_of(inventory).failover_happened() is None


def test_lost_acknowledged_writes_miss_the_rpo(inventory):
    assert not targets_of(inventory, "quorum", dict(PASSED_QUORUM, lost_acked_writes=1))["RPO"].met


def test_the_verdict_line_shows_the_write_gap_and_rpo():
    from prontuario_cli.cli.drill import verdict_text
    from prontuario_cli.drill.journal import TargetCheck

    journal = Journal("dcs", "quorum", "r", "cluster.yaml", None, utc_now(), report_path="/r.md")
    journal.targets = [
        TargetCheck("write gap (longest time without an acknowledged write)", 0.46, 30, "s", "<", True),
        TargetCheck("RPO (acknowledged writes lost)", 0, 0, "writes", "<=", True),
        TargetCheck("failovers (timeline or leader changed)", 0, 0, "failovers", "<=", True),
    ]
    assert verdict_text(journal) == "write gap 0.5 s (< 30)  RPO 0  report: /r.md"


# --------------------------------------------------------------------------- etcd as the checks see it


def status(member: str, leader: str | None) -> EtcdStatus:
    return EtcdStatus(member, leader, 7, 100, 100, 4096, 4096, "3.4.23")


def test_describe_names_all_healthy_no_spare_vote_and_no_quorum():
    healthy = quorum({"a": status("1", "1"), "b": status("2", "1"), "c": status("3", "1")})
    assert dcs.describe(healthy)["verdict"] == "all healthy"
    no_spare = dcs.describe(quorum({"a": status("1", "1"), "b": status("2", "1"), "witness": None}, {"witness": "no answer within 1 s (frozen?)"}))
    assert (no_spare["verdict"], no_spare["healthy_count"], no_spare["spare"], no_spare["quorum"]) == ("no spare vote", 2, 0, True)
    assert "witness: no answer within 1 s (frozen?)" in no_spare["summary"]
    lost = dcs.describe(quorum({"a": status("1", None), "b": None, "witness": None}))
    assert (lost["verdict"], lost["healthy_count"], lost["quorum"]) == ("no quorum", 0, False)


class _Member(http.server.BaseHTTPRequestHandler):
    """An etcd member's /v3/maintenance/status, answered locally (as etcd does)."""

    answers: dict[int, dict] = {}

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(self.answers[self.server.server_address[1]]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_etcd_view_counts_a_frozen_member_as_lost_within_one_timeout(inventory):
    """Two members answer; the third accepts connections and never answers (SIGSTOP)."""
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Member) for _ in range(2)]
    frozen = socket.socket()
    frozen.bind(("127.0.0.1", 0))
    frozen.listen(8)  # the kernel completes the handshake; nobody reads
    try:
        ports = [s.server_address[1] for s in servers]
        for port, member in zip(ports, ("11", "22")):
            _Member.answers[port] = {"header": {"member_id": member, "raft_term": "3"}, "leader": "11", "raftIndex": "9"}
        for s in servers:
            threading.Thread(target=s.serve_forever, daemon=True).start()
        etcd_ports = dict(zip(("mac-studio-1", "mac-studio-2", "witness"), (*ports, frozen.getsockname()[1])))
        nodes = tuple(replace(n, address="127.0.0.1", ports=replace(n.ports, etcd_client=etcd_ports[n.name])) for n in inventory.nodes)
        local = replace(inventory, nodes=nodes)
        started = time.monotonic()
        view = dcs.etcd_view(local, 0.5)
        assert time.monotonic() - started < 2.0
        assert view.healthy == ("mac-studio-1", "mac-studio-2") and view.leader == "mac-studio-1"
        assert "witness" in view.lost and "frozen?" in view.lost["witness"] and view.spare == 0
        assert not dcs.etcd_healthy(replace(local, health_checks=replace(local.health_checks, timeout_s=0.5)))
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
        frozen.close()


# --------------------------------------------------------------------------- the rollback always thaws


class FakeNodes:
    """The node-access seam, recording every act; ``fail`` makes one (node, action) raise."""

    is_lab, where = True, "fake"

    def __init__(self, fail: tuple[str, str] | None = None):
        self.calls: list[tuple[str, str, str]] = []
        self.fail = fail

    def act(self, node, service, action):
        self.calls.append((node, service, action))
        if (node, action) == self.fail:
            raise OperationFailed(f"{node}: etcd {action} exited 1")
        return f"{action} {service} on {node}"

    def frozen_now(self) -> set[str]:
        """Members whose last signal was a freeze."""
        state: dict[str, str] = {}
        for node, _, action in self.calls:
            state[node] = action
        return {node for node, action in state.items() if action == "hang"}


class ScriptedDcs(dcs.DcsDrill):
    """The real fault, thaw and rollback; every look at the cluster scripted (``trouble``: where it goes wrong)."""

    trouble: dict[str, BaseException] = {}

    def steady_state(self):
        def roles():
            self.leader, self.standby = "mac-studio-1", "mac-studio-2"
            self.targets_of_freeze = ["witness"] if self.mode == "member" else ["witness", "mac-studio-2"]
            self.hold_s = self.hold_s or 1.0
            self.m.update(leader_before="mac-studio-1", timeline_before=3)
            return "scripted"

        return [Activity("roles", roles)]

    def _step(self, name, result="ok"):
        if name in self.trouble:
            raise self.trouble[name]
        return result

    def _start(self):
        self.writes = SimpleNamespace(log=SimpleNamespace(started_mono=time.monotonic()), loop=SimpleNamespace(_thread=threading.Thread()))
        return self._step("start")

    def _hold(self):
        return self._step("hold")

    def _wait_etcd(self):
        return self._step("etcd")

    def _wait_writes(self):
        return self._step("writes")

    def _count(self):
        self.m.update(write_gap_s=0.3, lost_acked_writes=0)
        return self._step("count")

    def _wait_steady(self, budget_s=None):
        self.m.update(leader_after="mac-studio-1", timeline_after=3)
        return "steady"

    def _rollback_steady(self):
        return "etcd healthy; " + self._wait_steady()


def run_scripted(inventory, monkeypatch, mode="quorum", trouble=None, fail=None):
    fake = FakeNodes(fail)
    monkeypatch.setattr(dcs, "node_access", lambda inv: fake)
    drill = drill_of(inventory, mode, cls=ScriptedDcs)
    drill.trouble = trouble or {}
    journal = Journal("dcs", mode, "unit", "cluster.yaml", None, utc_now())
    run_experiment(drill, journal, say=lambda text: None)
    return journal, fake


@pytest.mark.parametrize("mode, frozen", [("member", ["witness"]), ("quorum", ["witness", "mac-studio-2"])])
def test_the_normal_path_thaws_in_the_method_and_again_in_the_rollback(inventory, monkeypatch, mode, frozen):
    journal, fake = run_scripted(inventory, monkeypatch, mode)
    assert [c for c in fake.calls if c[2] == "hang"] == [(n, "etcd", "hang") for n in frozen]
    assert [c for c in fake.calls if c[2] == "resume"] == [(n, "etcd", "resume") for n in frozen] * 2
    assert fake.frozen_now() == set() and journal.rollback == "complete"
    assert journal.measurements["frozen"] == frozen and journal.measurements["failover"] is False


@pytest.mark.parametrize("trouble", [
    {"hold": KeyboardInterrupt()},  # Ctrl-C during the hold
    {"hold": StepFailed("etcd looks odd")},  # a failed step during the hold
    {"etcd": OperationFailed("every etcd member healthy: not within 30 s")},  # after the thaw
    {"start": KeyboardInterrupt()},  # before the fault: nothing frozen, nothing to thaw
])
def test_the_rollback_thaws_every_member_after_ctrl_c_or_a_failed_step(inventory, monkeypatch, trouble):
    journal, fake = run_scripted(inventory, monkeypatch, "quorum", trouble)
    assert fake.frozen_now() == set(), fake.calls
    assert journal.verdict == "failed" and journal.rollback == "complete", journal.reason
    rollback = [s for s in journal.steps if s.phase == "rollback"]
    if "start" in trouble:
        assert fake.calls == [] and rollback[0].name.startswith("nothing to roll back")
    else:
        thaw = next(s for s in rollback if s.name.startswith("thaw every etcd member the drill froze: witness, mac-studio-2"))
        assert thaw.status == "ok"
        assert fake.calls[-2:] == [("witness", "etcd", "resume"), ("mac-studio-2", "etcd", "resume")]


def test_a_freeze_that_failed_half_way_is_still_thawed(inventory, monkeypatch):
    """The second member's freeze raised (it may or may not have stopped): both are resumed."""
    journal, fake = run_scripted(inventory, monkeypatch, "quorum", fail=("mac-studio-2", "hang"))
    assert journal.verdict == "failed" and "mac-studio-2: etcd hang exited 1" in journal.reason
    assert [c for c in fake.calls if c[2] == "resume"] == [("witness", "etcd", "resume"), ("mac-studio-2", "etcd", "resume")]
    assert journal.rollback == "complete"


def test_a_thaw_that_fails_still_tries_every_member_and_fails_the_rollback(inventory, monkeypatch):
    journal, fake = run_scripted(inventory, monkeypatch, "quorum", fail=("witness", "resume"))
    resumed = [c[0] for c in fake.calls if c[2] == "resume"]
    assert resumed.count("mac-studio-2") == 2  # the method's thaw and the rollback's, despite the witness failing first
    assert journal.verdict == "rollback-failed" and journal.exit_code() == ExitCode.ROLLBACK_FAILED
    assert any(step.startswith("thaw every etcd member") for step in journal.left_to_do)


# --------------------------------------------------------------------------- history and compliance


def dcs_journal(mode, started, gap, lost=0, verdict="passed"):
    begin = dt.datetime.fromisoformat(started).replace(tzinfo=dt.timezone.utc)
    journal = Journal("dcs", mode, f"{begin:%Y%m%dT%H%M%SZ}-dcs-{mode}-mac-studio-1-1", "cluster.yaml", None,
                      begin.isoformat().replace("+00:00", "Z"), ended_at=(begin + dt.timedelta(seconds=60)).isoformat().replace("+00:00", "Z"),
                      verdict=verdict)
    journal.measurements = {"write_gap_s": gap, "lost_acked_writes": lost, "rpo_s": 0.0}
    return journal


def test_the_compliance_report_counts_dcs_runs_monthly_with_their_write_gap():
    from prontuario_cli.drill import history as h
    from prontuario_cli.inventory import Targets

    items = [dcs_journal("quorum", "2026-10-01T06:30", 0.4), dcs_journal("member", "2026-10-02T10:00", 0.2),
             dcs_journal("quorum", "2026-12-01T06:30", 22.9, verdict="target-missed")]
    since, until = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc), dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
    report = h.compliance_report(items, since=since, until=until, targets=Targets())
    by = {(s.drill, s.mode): s for s in report.drills}
    assert list(by) == [("dcs", "all"), ("dcs", "member"), ("dcs", "quorum")]
    assert (by["dcs", "all"].rto_max_s, by["dcs", "all"].rto_target_s, by["dcs", "all"].lost_acked_writes) == (22.9, 30.0, 0)
    assert by["dcs", "quorum"].runs == 2 and by["dcs", "member"].targets_met is True
    schedule = {c.drill: c for c in report.schedule}
    assert schedule["dcs"].cadence == "monthly" and schedule["dcs"].gaps == ("2026-11-01",)
    assert any(p.startswith("dcs: 1 of 3 months without a run") for p in report.problems)
    entry = h.history_entry(items[0])
    assert entry.rto_s == 0.4 and entry.drill == "dcs"
