"""serve install: launchd plists and systemd units rendered from the inventory, checked; serve status rows."""

from __future__ import annotations

import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prontuario_cli.inventory import parse_inventory
from prontuario_cli.serve.units import render
from tests.helpers import run

PRONTUARIO = str(Path(sys.executable).parent / "prontuario")


def inventory(tmp_path: Path, os_name: str = "macos"):
    text = f"""version: 1
nodes:
  - {{name: mac-studio-1, role: primary, address: 10.0.0.11, os: {os_name}, ports: {{medgemma: 8080, whisper: 8081, facenet: 8082}}}}
  - {{name: mac-studio-2, role: secondary, address: 10.0.0.12, os: {os_name}, ports: {{whisper: 8081}}}}
  - {{name: witness, role: witness, address: 10.0.0.13, os: debian}}
models: {{store: /opt/prontuario/models, prontuario: {PRONTUARIO}}}
serve: {{llm: medgemma-4b, log_dir: {tmp_path / 'log'}, user: prontuario}}
"""
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    return path, parse_inventory(text, str(path))


def test_plists_for_a_mac_keep_each_server_alive_and_parse_back(tmp_path):
    _, inv = inventory(tmp_path)
    units = render(inv, inv.node("mac-studio-1"), tmp_path / "LaunchDaemons")
    assert [f.kind for f in units.files] == ["llm", "stt", "face"]
    job = plistlib.loads(units.files[0].text.encode())
    assert job["Label"] == "org.prontuario.serve-llm" and job["KeepAlive"] is True and job["ThrottleInterval"] >= 5
    assert job["ProgramArguments"][:3] == [PRONTUARIO, "serve", "llm"]
    args = job["ProgramArguments"]
    assert args[args.index("--model") + 1] == "medgemma-4b" and args[args.index("--port") + 1] == "8080"
    assert args[args.index("--host") + 1] == "127.0.0.1"  # HAProxy on the same Mac in front
    assert job["EnvironmentVariables"]["HF_HUB_OFFLINE"] == "1" and job["UserName"] == "prontuario"
    assert job["ExitTimeOut"] >= 30  # in-flight requests finish
    assert [f.kind for f in render(inv, inv.node("mac-studio-2")).files] == ["stt"]  # only what the inventory gives a port


def test_install_writes_the_files_audited_and_dry_run_writes_nothing(tmp_path):
    path, _ = inventory(tmp_path)
    target = tmp_path / "out"
    dry = run("-i", str(path), "serve", "install", "--node", "mac-studio-1", "--output-dir", str(target), "--dry-run", "--json")
    assert dry.code == 0 and not target.exists()
    done = run("-i", str(path), "serve", "install", "--node", "mac-studio-1", "--output-dir", str(target), "--yes", "--json")
    assert done.code == 0, done.err
    assert sorted(p.name for p in target.iterdir()) == ["org.prontuario.serve-face.plist", "org.prontuario.serve-llm.plist", "org.prontuario.serve-stt.plist"]
    assert run("-i", str(path), "serve", "install", "--node", "witness", "--output-dir", str(target), "--yes").code == 64


def test_systemd_units_for_a_debian_node_pass_systemd_analyze(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing: run ./install.sh (Debian package systemd)")
    _, inv = inventory(tmp_path, "debian")
    (tmp_path / "log").mkdir()
    units = render(inv, inv.node("mac-studio-1"), tmp_path / "units")
    for f in units.files:
        Path(f.path).parent.mkdir(parents=True, exist_ok=True)
        Path(f.path).write_text(f.text)
        assert "Restart=always" in f.text and f"ExecStart={PRONTUARIO} serve {f.kind}" in f.text
    checked = subprocess.run(["systemd-analyze", "verify", *[f.path for f in units.files]], capture_output=True, text=True, timeout=60)
    problems = [line for line in checked.stderr.splitlines() if "prontuario-serve" in line]
    assert checked.returncode == 0 and not problems, checked.stderr


def test_serve_status_rows_from_answers_refusals_and_silence():
    from prontuario_cli.connect import Refused, TimedOut
    from prontuario_cli.connect.fanout import Outcome
    from prontuario_cli.report import Status
    from prontuario_cli.serve.status import row_from

    ready = row_from("mac-studio-1", "http://127.0.0.1:8081", "stt", Outcome("x", value={
        "kind": "stt", "ready": True, "model": "whisper-large-v3", "version": "abc", "rss_bytes": 1 << 30, "uptime_s": 65.0,
        "queue_depth": 1, "requests": 12, "failed": 0}))
    assert (ready.state, ready.status, ready.model, ready.requests) == ("ready", Status.OK, "whisper-large-v3", 12)
    loading = row_from("n", "u", "llm", Outcome("x", value={"kind": "llm", "ready": False, "reason": "loading the model"}))
    assert loading.status == Status.CRITICAL and loading.note == "loading the model"
    assert row_from("n", "u", "face", Outcome("x", error=Refused("refused"))).state == "down"
    assert row_from("n", "u", "face", Outcome("x", error=TimedOut("silent"))).state == "no answer"
