"""The shared ground: bounded waits, the lock, the clock, and the node-access seam (lab side)."""

from __future__ import annotations

import re
import time

import pytest

from prontuario_cli.errors import LockedError, OperationFailed, UnavailableError


def test_wait_for_returns_the_value_and_the_time_waited():
    from prontuario_cli.poll import wait_for

    calls = iter([0, None, "ready"])
    value, waited = wait_for("thing", lambda: next(calls), 5, interval_s=0.05)
    assert value == "ready" and 0.05 <= waited < 2


def test_wait_for_names_the_last_error_when_time_runs_out():
    from prontuario_cli.poll import wait_for

    def never():
        raise UnavailableError("etcd: connection refused")

    started = time.monotonic()
    with pytest.raises(OperationFailed) as caught:
        wait_for("etcd healthy", never, 0.3, interval_s=0.05)
    assert time.monotonic() - started < 2
    assert caught.value.message == "etcd healthy: not within 0.3 s (last: etcd: connection refused)"


def test_wait_for_uses_the_callers_error_and_last_state():
    from prontuario_cli.poll import wait_for

    with pytest.raises(UnavailableError) as caught:
        wait_for("x", lambda: False, 0.1, interval_s=0.02, last_state=lambda: "DOWN", on_timeout=lambda last: UnavailableError(f"still {last}"))
    assert caught.value.message == "still DOWN"


def test_exclusive_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    from prontuario_cli.files import exclusive_lock

    path = tmp_path / "x.lock"
    busy = lambda holder: LockedError(f"busy ({holder})")  # noqa: E731
    with exclusive_lock(path, "drill failover", busy):
        with pytest.raises(LockedError) as caught:
            with exclusive_lock(path, "another", busy):
                pass
        assert "drill failover" in caught.value.message and "pid" in caught.value.message
    with exclusive_lock(path, "again", busy):  # released when the block ends
        pass


def test_clock_format():
    from prontuario_cli.clock import iso, utc_now

    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", utc_now())
    assert iso(0) == "1970-01-01T00:00:00.000Z"


def test_run_local_streams_lines_and_keeps_the_exit_status():
    from prontuario_cli.cluster.nodes import run_local

    seen = []
    result = run_local(["sh", "-c", "echo a; echo b >&2; echo c; exit 4"], timeout_s=10, on_output=lambda s, line: seen.append((s, line)))
    assert result.exit_status == 4
    assert [x for x in seen if x[0] == "stdout"] == [("stdout", "a"), ("stdout", "c")] and ("stderr", "b") in seen
    assert result.stdout == "a\nc" and result.stderr == "b"


def test_run_local_kills_a_command_that_outlives_its_timeout(tmp_path):
    from prontuario_cli.cluster.nodes import run_local
    from prontuario_cli.lab.procs import alive

    pidfile = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(OperationFailed) as caught:
        run_local(["sh", "-c", f"echo $$ > {pidfile}; sleep 30"], timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert "did not finish within 0.5 s" in caught.value.message
    assert not alive(int(pidfile.read_text()))


def test_node_access_is_decided_by_the_inventory(tmp_path):
    from prontuario_cli.cluster.nodes import LabNodes, SSHNodes, is_lab, node_access
    from prontuario_cli.inventory import parse_inventory

    real = parse_inventory("nodes:\n  - {name: mac-studio-1, role: primary, address: 10.0.0.1, os: macos}\n", "real.yaml")
    assert not is_lab(real) and isinstance(node_access(real), SSHNodes)
    lab = parse_inventory(f"nodes:\n  - {{name: mac-studio-1, role: primary, address: 127.0.0.1, os: debian}}\nlab: {{dir: {tmp_path}}}\n", "lab.yaml")
    access = node_access(lab)
    assert is_lab(lab) and isinstance(access, LabNodes) and access.is_lab
    with pytest.raises(OperationFailed):
        access.act("mac-studio-1", "postgres", "explode")


def _state(pid: int) -> str | None:
    from prontuario_cli.lab.procs import proc_state

    return proc_state(pid)


@pytest.mark.lab
def test_a_frozen_node_freezes_every_postgresql_process(lab):
    """hang = SIGSTOP to Patroni, the postmaster and every backend; resume thaws them all."""
    from prontuario_cli.cluster.nodes import node_access
    from prontuario_cli.cluster.patroni import cluster_view, sync_standby
    from prontuario_cli.inventory import load_inventory
    from prontuario_cli.lab.procs import children
    from prontuario_cli.poll import wait_for

    inventory = load_inventory(lab.inventory_path)
    replica, _ = wait_for("a sync standby", lambda: sync_standby(cluster_view(inventory)), 60)
    postmaster = lab.pid(f"postgres-{replica}")
    backends = children(postmaster)
    assert backends, "a running PostgreSQL has child processes (checkpointer, walreceiver, ...)"
    access = node_access(inventory)
    try:
        detail = access.act(replica, "postgres", "hang")
        assert detail.startswith("SIGSTOP")
        frozen = [lab.pid(f"patroni-{replica}"), postmaster, *backends]
        # Signals are delivered asynchronously: a process running on the other core stops
        # when it is next scheduled. A process that exited meanwhile counts as stopped.
        wait_for("every process stopped", lambda: all(_state(pid) in ("T", "t", None) for pid in frozen), 5, interval_s=0.05,
                 last_state=lambda: str({pid: _state(pid) for pid in frozen}))
    finally:
        access.act(replica, "postgres", "resume")
    wait_for("every process running again", lambda: not any(_state(pid) in ("T", "t") for pid in [postmaster, *backends]), 5, interval_s=0.05)
    wait_for("the replica streams again", lambda: sync_standby(cluster_view(inventory)) == replica, 60)
