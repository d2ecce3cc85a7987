"""Services as launchd jobs and systemd units: kept-alive servers and periodic jobs (the document sync)."""

from __future__ import annotations

import plistlib
import shutil
import subprocess

import pytest

from prontuario_cli.services import Service, check_plist, plist_text, systemd_timer, systemd_unit

PERIODIC = Service("docs-sync", "prontuario document sync", ("/opt/prontuario/venv/bin/prontuario", "docs", "sync", "--once", "--yes"),
                   "/var/log/prontuario/docs-sync.log", interval_s=5)
SERVER = Service("serve-llm", "prontuario MedGemma server", ("/opt/prontuario/venv/bin/prontuario", "serve", "llm"), "/var/log/prontuario/llm.log")


def test_a_periodic_job_starts_every_interval_and_is_not_kept_alive_by_launchd():
    job = check_plist(plist_text(PERIODIC))
    assert job["StartInterval"] == 5 and job["KeepAlive"] is False and job["ThrottleInterval"] <= 5
    server = plistlib.loads(plist_text(SERVER).encode())
    assert server["KeepAlive"] is True and "StartInterval" not in server


def test_a_periodic_job_is_a_oneshot_unit_started_by_its_timer():
    unit, timer = systemd_unit(PERIODIC), systemd_timer(PERIODIC)
    assert "Type=oneshot" in unit and "Restart=always" not in unit and "[Install]" not in unit
    assert "OnUnitActiveSec=5s" in timer and f"Unit={PERIODIC.unit_name}" in timer and "WantedBy=timers.target" in timer
    assert "Restart=always" in systemd_unit(SERVER)
    with pytest.raises(ValueError):
        systemd_timer(SERVER)


def test_the_timer_and_its_unit_pass_systemd_analyze(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing: run ./install.sh (Debian package systemd)")
    (tmp_path / PERIODIC.unit_name).write_text(systemd_unit(PERIODIC).replace("/opt/prontuario/venv/bin/prontuario", shutil.which("true")))
    (tmp_path / PERIODIC.timer_name).write_text(systemd_timer(PERIODIC))
    checked = subprocess.run(["systemd-analyze", "verify", str(tmp_path / PERIODIC.timer_name), str(tmp_path / PERIODIC.unit_name)],
                             capture_output=True, text=True, timeout=60, check=False)
    problems = [line for line in checked.stderr.splitlines() if "prontuario-docs-sync" in line]
    assert checked.returncode == 0 and not problems, checked.stderr
