"""The live progress view: in place on a terminal, plain timestamped lines otherwise."""

from __future__ import annotations

import re

import pytest

from prontuario_cli.cli.progress import ProgressView, running_line, step_line
from prontuario_cli.drill.engine import Activity, run_experiment
from prontuario_cli.drill.journal import Journal
from prontuario_cli.clock import utc_now
from tests.helpers import _Stream

PLAIN = re.compile(r"^\d\d:\d\d:\d\d ")


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _drive(view: ProgressView, clock: FakeClock) -> None:
    view.say("checking the steady state")
    view.progress({"kind": "step", "phase": "method", "name": "fault: kill"})
    clock.now += 0.4
    view.progress({"kind": "done", "phase": "method", "name": "fault: kill", "status": "ok", "seconds": 0.4, "detail": "killed"})
    view.progress({"kind": "step", "phase": "method", "name": "wait for the first write", "target_s": 30, "label": "RTO", "since": clock.now - 0.4})
    clock.now += 12.0
    view.progress({"kind": "counters", "acked": 812, "failed": 3, "unknown": 1})
    view.progress({"kind": "event", "t": 12.9, "what": "haproxy write down: mac-studio-1"})
    view.progress({"kind": "event", "t": 19.3, "what": "leader: mac-studio-2"})
    clock.now += 15.2
    view.progress({"kind": "done", "phase": "method", "name": "wait for the first write", "status": "ok", "seconds": 27.2})
    view.progress({"kind": "step", "phase": "rollback", "name": "start mac-studio-1 again"})
    view.progress({"kind": "done", "phase": "rollback", "name": "start mac-studio-1 again", "status": "failed", "seconds": 1.0, "detail": "no"})
    view.verdict("passed", "RTO 27.2 s (< 30)  RPO 0  report: /tmp/r.md")


def test_on_a_terminal_the_step_is_updated_in_place_and_the_verdict_is_last():
    stream, clock = _Stream(tty=True), FakeClock()
    with ProgressView(stream, clock=clock, refresh_s=0, colour=True) as view:
        _drive(view, clock)
    out = stream.getvalue()
    assert "\r\x1b[2K… [method] wait for the first write  RTO 12.4 s / 30 s  writes 812 acked, 3 failed, 1 unknown" in out
    lines = out.split("\n")
    shown = [line.split("\r\x1b[2K")[-1] for line in lines]  # what stays on screen, line by line
    assert "+12.9 s haproxy write down: mac-studio-1" in shown and "+19.3 s leader: mac-studio-2" in shown
    # Each step once: the in-place line is erased, one final line stays.
    assert sum("fault: kill" in line for line in shown) == 1
    assert "✓ [method] wait for the first write (27.2 s)" in out and "✗ [rollback] start mac-studio-1 again (1.0 s): failed — no" in out
    assert lines[-1] == ""  # ends with a newline
    last = lines[-2]
    assert last.endswith("\x1b[1;32mPASSED  RTO 27.2 s (< 30)  RPO 0  report: /tmp/r.md\x1b[0m")


def test_without_a_terminal_lines_are_plain_and_timestamped():
    stream, clock = _Stream(tty=False), FakeClock()
    with ProgressView(stream, clock=clock) as view:
        _drive(view, clock)
        view.say("a line with \x1b[31mcolour\x1b[0m and a \r carriage return")
        view.verdict("failed", "reason")  # the verdict is last, whatever came before
    out = stream.getvalue()
    assert "\x1b" not in out and "\r" not in out
    lines = out.splitlines()
    assert all(PLAIN.match(line) for line in lines), lines
    texts = [line[9:] for line in lines]
    assert texts[0] == "checking the steady state"
    assert "✓ [method] fault: kill (0.4 s) — killed" in texts
    assert "+19.3 s leader: mac-studio-2" in texts
    assert "writes 812 acked, 3 failed, 1 unknown" in texts
    assert texts[-1] == "FAILED  reason"
    assert sum("fault: kill" in t for t in texts) == 1  # each step prints once


def test_plain_counters_are_rate_limited():
    stream, clock = _Stream(tty=False), FakeClock()
    view = ProgressView(stream, clock=clock)
    for i in range(50):
        clock.now += 0.1
        view.progress({"kind": "counters", "acked": i, "failed": 0, "unknown": 0})
    assert 1 <= stream.getvalue().count("writes ") <= 2


def test_a_running_line_fits_the_screen():
    step = {"phase": "rollback", "name": "x" * 300, "started": 0.0, "target_s": 90, "label": "steady"}
    line = running_line(step, 5.0, None, width=80)
    assert len(line) <= 80 and line.endswith("steady 5.0 s / 90 s")
    assert step_line({"name": "copy", "status": "done", "seconds": 2.0, "detail": "ok"}) == "✓ copy (2.0 s) — ok"


def test_the_engine_reports_each_step_once_through_progress():
    """With progress, the engine sends step/done events (with the activity's target), not say lines."""

    class Fake:
        drill, mode = "failover", "fake"

        def plan(self):
            return []

        def steady_state(self):
            return [Activity("pre", lambda: "fine")]

        def method(self):
            return [Activity("wait", lambda: "recovered", target_s=30, label="RTO", since=lambda: 5.0)]

        def steady_state_after(self):
            return []

        def rollback(self):
            return [Activity("undo", lambda: "undone")]

        def measurements(self):
            return {}

        def targets(self):
            return []

    said, events = [], []
    journal = Journal("failover", "fake", "run-1", "cluster.yaml", None, utc_now())
    run_experiment(Fake(), journal, said.append, events.append)
    assert [(e["kind"], e["name"]) for e in events] == [("step", "pre"), ("done", "pre"), ("step", "wait"), ("done", "wait"), ("step", "undo"), ("done", "undo")]
    assert events[2] == {"kind": "step", "phase": "method", "name": "wait", "target_s": 30, "label": "RTO", "since": 5.0}
    assert events[3]["status"] == "ok" and events[3]["detail"] == "recovered"
    assert not any("wait" in text for text in said)  # no "…" then ": ok"
    # Without progress: one say line per step.
    said = []
    run_experiment(Fake(), Journal("failover", "fake", "run-2", "cluster.yaml", None, utc_now()), said.append)
    assert [text for text in said if text.startswith("[")] == ["[steady-state-before] pre: ok", "[method] wait: ok", "[rollback] undo: ok"]


# --------------------------------------------------------------------------- a real drill


def _drill_argv(lab) -> list[str]:
    import sys

    return [sys.executable, "-m", "prontuario_cli", "-i", str(lab.inventory_path), "drill", "failover", "--mode", "switchover", "--yes"]


def _run_on_a_pty(argv: list[str], timeout_s: float = 240) -> tuple[int, str]:
    """Run ``argv`` with stdin, stdout and stderr on a pseudo-terminal; its exit code and what it showed."""
    import fcntl
    import os
    import select
    import struct
    import subprocess
    import termios
    import time

    from tests.helpers import REPO

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # the terminal's own size
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=str(REPO), close_fds=True, env=env)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.lab
def test_a_real_drill_shows_live_progress_on_a_terminal_and_plain_lines_in_a_pipe(lab):
    import subprocess

    from tests.drill.test_drill_lab import steady_state
    from tests.helpers import REPO

    steady_state(lab)
    code, screen = _run_on_a_pty(_drill_argv(lab))
    assert code == 0, screen
    # The running step, in place, its elapsed time against the RTO target.
    assert re.search(r"\r\x1b\[2K… \[method\] wait for the first write acknowledged by the new primary  RTO \d+\.\d s / 30 s", screen), screen
    shown = [line.split("\r\x1b[2K")[-1].rstrip("\r") for line in screen.split("\n")]
    assert any(re.match(r"^\+\d+\.\d s (leader|haproxy write|member) ", line) for line in shown), screen  # the watcher's events
    assert sum(line.startswith("✓ [method] fault: switchover") for line in shown) == 1  # each step once
    last = [line for line in shown if line.strip()][-1]
    assert re.match(r"^\x1b\[1;32mPASSED  RTO \d+(\.\d+)? s \(< 30\)  RPO 0  report: \S+\.md\x1b\[0m$", last), repr(last)
    assert "full tables: add -v, or --format table" in screen  # no tables without -v

    steady_state(lab)
    proc = subprocess.run(_drill_argv(lab), capture_output=True, text=True, cwd=str(REPO), timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stderr and "\r" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and all(PLAIN.match(line) for line in lines), lines
    assert any(re.match(r"^\d\d:\d\d:\d\d \+\d+\.\d s ", line) for line in lines)
    assert lines[-1][9:].startswith("PASSED  RTO ")
    import json

    assert json.loads(proc.stdout)["verdict"] == "passed"  # the data contract for scripts is unchanged


def test_a_runbook_reports_each_step_once_through_progress():
    """gcp promote and failback run on the runbook engine: with progress, step/done events, no "→"/"✓" lines."""
    from tests.test_runbook import Toy

    toy, events = Toy(), []
    toy.progress = events.append
    toy.run()
    done = [(e["name"], e["status"]) for e in events if e["kind"] == "done"]
    assert done == [("look", "ok"), ("check", "ok"), ("change", "ok"), ("tell", "ok")]
    assert [e["name"] for e in events if e["kind"] == "step"] == ["look: look at the node", "check: check the node", "change: change the node", "tell: tell people"]
    assert not any(text.startswith("✓") for text in toy.said)
    assert [text for text in toy.said if text.startswith("→")] == ["→ change: change the node"]  # only with its question


@pytest.mark.lab
def test_lab_down_and_up_show_each_wait_in_place_on_a_terminal_and_plain_in_a_pipe(lab):
    """lab down/up: the running wait drawn in place against its limit, each step once when it ends."""
    import subprocess
    import sys

    from tests.helpers import REPO

    def argv(*args: str) -> list[str]:
        return [sys.executable, "-m", "prontuario_cli", "lab", *args, "--dir", str(lab.dir)]

    code, screen = _run_on_a_pty(argv("down", "--yes"))
    assert code == 0, screen
    shown = [line.split("\r\x1b[2K")[-1].rstrip("\r") for line in screen.split("\n")]
    assert re.search(r"\r\x1b\[2K… stop haproxy\b.*  \d+\.\d s / \d+ s", screen), screen
    assert sum(line.startswith("✓ patroni: pause") for line in shown) == 1, shown

    code, screen = _run_on_a_pty(argv("up"), timeout_s=300)
    assert code == 0, screen
    shown = [line.split("\r\x1b[2K")[-1].rstrip("\r") for line in screen.split("\n")]
    assert re.search(r"\r\x1b\[2K… etcd-mac-studio-1: healthy  \d+\.\d s / 30 s", screen), screen
    assert sum(line.startswith("✓ settle: ") for line in shown) == 1, shown

    # Without a terminal: plain, timestamped, no control characters; each wait once.
    proc = subprocess.run(argv("up", "--json"), capture_output=True, text=True, cwd=str(REPO), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stderr and "\r" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and all(PLAIN.match(line) for line in lines), lines
    assert sum(line[9:].startswith("✓ settle: ") for line in lines) == 1, lines


def test_a_reported_wait_is_one_step_ok_or_failed():
    from prontuario_cli.poll import reported

    events = []
    with reported(events.append, "etcd: healthy", 30):
        pass
    with pytest.raises(RuntimeError), reported(events.append, "redis: answering", 5):
        raise RuntimeError("died")
    assert [(e["kind"], e["name"], e.get("target_s"), e.get("status")) for e in events] == [
        ("step", "etcd: healthy", 30, None), ("done", "etcd: healthy", None, "ok"),
        ("step", "redis: answering", 5, None), ("done", "redis: answering", None, "failed"),
    ]  # fmt: skip
    with reported(None, "nothing to report", 1):  # without a view it is only the block
        pass
