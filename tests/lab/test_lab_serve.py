"""``lab up --with-serve``: a lab of its own whose Macs run the three inference servers on tiny models.

One test (six servers loading on a small machine take a while): the lab comes up through the
command line, ``serve status`` and ``models status`` with the lab's inventory see the servers
and the stores, and ``lab down --purge`` leaves none of the lab's processes alive.
"""

from __future__ import annotations

import shutil

import pytest

from prontuario_cli.lab import Lab
from prontuario_cli.lab.procs import alive, processes_under
from tests.conftest import LAB_BASE_PORT, lab_prerequisites_missing
from tests.helpers import run, run_process

pytestmark = pytest.mark.lab

BASE_PORT = LAB_BASE_PORT + 400  # beside the shared lab's ports (they end at base + 100)
LAB_DIR = f"/tmp/prontuario-test-lab-{BASE_PORT}"
KINDS = {"llm": "medgemma-4b", "stt": "whisper-large-v3", "face": "facenet"}


def test_lab_with_serve_runs_six_ready_servers_and_down_leaves_nothing():
    reason = lab_prerequisites_missing()
    if reason:
        pytest.fail(f"the lab cannot run here: {reason}")
    shutil.rmtree(LAB_DIR, ignore_errors=True)
    pids: list[int] = []
    try:
        up = run_process("lab", "up", "--dir", LAB_DIR, "--base-port", str(BASE_PORT), "--profile", "fast", "--with-serve", "--json", timeout=900)
        assert up.code == 0, up.err[-3000:]
        lab = Lab(LAB_DIR, say=lambda text: None)
        assert lab.spec.with_serve, "--with-serve is remembered in the lab's spec"
        servers = [c for c in lab.components().values() if c.kind == "serve"]
        assert len(servers) == 6
        pids = [p for p in (lab.pid(name) for name in lab.components()) if p]
        assert all(lab.pid(c.name) for c in servers)
        assert all(c.healthy for c in lab.status().components if c.kind == "serve")

        inventory = str(lab.inventory_path)
        serve = run("-i", inventory, "--json", "serve", "status")
        assert serve.code == 0, serve.err
        rows = serve.json()["servers"]
        assert len(rows) == 6
        assert {(r["node"], r["kind"]) for r in rows} == {(n, k) for n in ("mac-studio-1", "mac-studio-2") for k in KINDS}
        for row in rows:
            assert row["state"] == "ready", row
            assert row["model"] == KINDS[row["kind"]] and row["version"], row

        models = run("-i", inventory, "--json", "models", "status")
        assert models.code == 0, models.err
        report = models.json()
        assert {(m["node"], m["name"]) for m in report["models"]} == {(n, m) for n in ("mac-studio-1", "mac-studio-2") for m in KINDS.values()}
        assert all(m["current"] for m in report["models"])
        assert report["agree"] == {name: True for name in KINDS.values()}, "both Macs hold the same active versions"
    finally:
        down = run_process("lab", "down", "--dir", LAB_DIR, "--purge", "--yes", "--json", timeout=300)
        left = [pid for pid in pids if alive(pid)]
        assert down.code == 0, down.err[-2000:]
        assert not left, f"lab processes still alive after down: {left}"
        assert not processes_under(LAB_DIR)
