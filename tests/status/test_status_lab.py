"""``prontuario status`` against the real lab: OK when healthy, bounded and not OK with a frozen
Mac, and ``--watch`` refreshing in place under a terminal (a pty) or printing JSON lines without.

Each test runs against a copy of the lab's inventory whose reports directory is the test's
own, holding a passed journal of every drill kind started an hour ago: drills run by other
tests in the same session never change what these tests expect. Each test first waits
(bounded) for a healthy lab and leaves it healthy.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from prontuario_cli.inventory import load_inventory
from tests.helpers import REPO, run

pytestmark = pytest.mark.lab

RECOVERY_S = 90  # Patroni rejoin + sync standby, Redis resync, HAProxy rise: well under this
SLACK_S = 1.5  # the brief's bound: timeout + 1.5 s


@pytest.fixture
def inventory_path(lab, tmp_path) -> Path:
    """The lab's inventory, with the test's own reports directory and every drill just run."""
    from prontuario_cli.drill.journal import Journal

    data = yaml.safe_load(Path(lab.inventory_path).read_text())
    reports = tmp_path / "reports"
    data["paths"]["reports_dir"] = str(reports)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    started = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0) - _dt.timedelta(hours=1)
    for drill, mode in (("health", "all"), ("failover", "kill"), ("cloud", "both-macs"), ("dcs", "quorum")):
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        Journal(drill=drill, mode=mode, run_id=f"{stamp}-{drill}-{mode}-lab-1", inventory=str(path), profile="fast",
                started_at=started.isoformat(), ended_at=started.isoformat(), verdict="passed").save(reports)
    return path


def status(path: Path, *extra: str):
    """``status --json`` in-process: (exit code, JSON, wall seconds)."""
    started = time.monotonic()
    result = run("-i", str(path), "status", "--json", *extra)
    elapsed = time.monotonic() - started
    return result.code, (json.loads(result.out) if result.out.strip() else {"error": result.err}), elapsed


def wait_healthy(path: Path, within: float = RECOVERY_S) -> dict:
    """Poll until status is OK; fail with the last problems if it never is."""
    from prontuario_cli.poll import wait_for

    seen = {"last": "no look yet"}

    def healthy():
        code, data, _ = status(path)
        seen["last"] = data.get("summary") or data.get("error")
        return data if code == 0 else None

    data, _ = wait_for("a healthy lab", healthy, within, interval_s=1.0, last_state=lambda: str(seen["last"]))
    return data


def rows_by_name(data: dict) -> dict[str, dict]:
    return {row["name"]: row for row in data["rows"]}


def bound(path: Path) -> float:
    return load_inventory(path).health_checks.timeout_s + SLACK_S


def test_a_healthy_lab_is_ok_and_lists_both_macs_and_the_witness(inventory_path):
    wait_healthy(inventory_path)
    code, data, elapsed = status(inventory_path)
    assert code == 0 and data["status"] == "ok", data["summary"]
    rows = rows_by_name(data)
    assert {"mac-studio-1", "mac-studio-2", "witness"} <= set(rows)
    assert all(rows[n]["details"]["reachable"] == "up" for n in ("mac-studio-1", "mac-studio-2", "witness"))
    assert rows["PostgreSQL"]["details"]["leader"] in ("mac-studio-1", "mac-studio-2")
    assert rows["etcd"]["state"].startswith("3/3 members healthy, leader ") and rows["etcd"]["state"].endswith("; failsafe on")
    assert {rows[f"drill {d}"]["status"] for d in ("health", "failover", "cloud", "dcs")} == {"ok"}
    assert data["actions"] == [] and elapsed < bound(inventory_path)


def test_a_frozen_mac_costs_one_timeout_and_is_named(inventory_path):
    from prontuario_cli.cluster.nodes import node_access

    data = wait_healthy(inventory_path)
    leader = rows_by_name(data)["PostgreSQL"]["details"]["leader"]
    replica = next(n for n in ("mac-studio-1", "mac-studio-2") if n != leader)
    inventory = load_inventory(inventory_path)
    access = node_access(inventory)
    access.act(replica, "postgres", "hang")
    try:
        code, data, elapsed = status(inventory_path)
    finally:
        access.act(replica, "postgres", "resume")
    assert elapsed < bound(inventory_path), f"took {elapsed:.2f} s"
    assert code in (1, 2, 3) and data["status"] != "ok", data
    assert code == {"warning": 1, "critical": 2, "unknown": 3}[data["status"]]
    row = rows_by_name(data)[replica]
    assert row["status"] != "ok" and row["action"], row
    assert replica in data["summary"]
    wait_healthy(inventory_path)


def _spawn(path: Path, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "prontuario_cli", "-i", str(path), "status", *args], cwd=str(REPO), **popen)


def test_watch_on_a_terminal_refreshes_in_place_until_ctrl_c(inventory_path):
    import pty

    wait_healthy(inventory_path)
    master, slave = pty.openpty()
    proc = _spawn(inventory_path, "--watch", "1", stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while seen.count(b"\x1b[2J") < 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:  # the child is gone: nothing more to read
                    break
        frames = seen.count(b"\x1b[2J")
        proc.send_signal(signal.SIGINT)
        end = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < end:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
        code = proc.wait(timeout=max(0.1, end - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
    text = seen.decode("utf-8", errors="replace")
    assert frames >= 2, text[-2000:]
    assert code == 0, text[-2000:]
    assert "mac-studio-1" in text and "witness" in text and "every 1 s, Ctrl-C to stop" in text


def test_watch_without_a_terminal_prints_json_lines_and_stops_on_sigint(inventory_path):
    wait_healthy(inventory_path)
    done = _spawn(inventory_path, "--watch", "1", "--count", "2", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = done.communicate(timeout=60)
    assert done.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and all(json.loads(line)["status"] == "ok" for line in lines)

    proc = _spawn(inventory_path, "--watch", "1", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "no first report within 30 s"
        first = proc.stdout.readline()
        assert json.loads(first)["rows"]
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert code == 0

    refused = run("-i", str(inventory_path), "status", "--watch", "--format", "table")
    assert refused.code == 64 and "JSON lines" in refused.err
