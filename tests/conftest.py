"""Shared fixtures. Every test gets its own state dir and audit log (never the machine's)."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.sshd"]  # the real sshd fixture, for every test that goes over SSH


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    """Point prontuario's state dir and audit log at the test's own temporary directory."""
    state = tmp_path / "state"
    monkeypatch.setenv("PRONTUARIO_STATE_DIR", str(state))
    monkeypatch.setenv("PRONTUARIO_AUDIT_LOG", str(state / "audit.jsonl"))
    monkeypatch.delenv("PRONTUARIO_INVENTORY", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("PRONTUARIO_AUDIT_KEY", raising=False)
    # The values to redact are remembered for the life of a process (one command in
    # production); tests run many commands in one process, so each starts knowing none.
    from prontuario_cli import secrets

    monkeypatch.setattr(secrets, "_known", set())
    return state


# --------------------------------------------------------------------------- the lab
# One real lab per pytest session, shared by every test marked @pytest.mark.lab.
# Its own base port and directory, so it never meets a lab someone runs by hand.

LAB_BASE_PORT = int(os.environ.get("PRONTUARIO_TEST_LAB_BASE_PORT", "25000"))
LAB_DIR = f"/tmp/prontuario-test-lab-{LAB_BASE_PORT}"  # /tmp: the postgres user must traverse it


def lab_prerequisites_missing() -> str | None:
    """Why the lab cannot run here (None when it can)."""
    import os
    import shutil

    if os.geteuid() != 0:
        return "the lab needs root (PostgreSQL and Patroni run as the postgres user)"
    for binary in ("/usr/lib/postgresql/15/bin/postgres", "/usr/bin/etcd", "/usr/sbin/haproxy", "/usr/bin/redis-server"):
        if not os.path.exists(binary):
            return f"{binary} is not installed (run ./install.sh)"
    if not shutil.which("setpriv"):
        return "setpriv is not installed"
    return None


@pytest.fixture(scope="session")
def lab():
    """The running lab (profile fast), brought up once per session and stopped by PID at the end."""
    import shutil

    from prontuario_cli.lab import Lab
    from prontuario_cli.lab.procs import alive

    reason = lab_prerequisites_missing()
    if reason:  # the lab is part of what is tested: never skip it silently
        pytest.fail(f"the lab cannot run here: {reason}")
    shutil.rmtree(LAB_DIR, ignore_errors=True)  # a fresh lab every session
    instance = Lab(LAB_DIR, base_port=LAB_BASE_PORT, profile="fast", say=lambda text: None)
    try:
        instance.up()
        yield instance
    finally:
        pids = [p for p in (instance.pid(name) for name in instance.components()) if p]
        instance.down(purge=True)
        left = [pid for pid in pids if alive(pid)]
        assert not left, f"lab processes still alive after down: {left}"
