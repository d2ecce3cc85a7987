"""Shared fixtures. Every test gets its own state dir and audit log (never the machine's)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    """Point prontuario's state dir and audit log at the test's own temporary directory."""
    state = tmp_path / "state"
    monkeypatch.setenv("PRONTUARIO_STATE_DIR", str(state))
    monkeypatch.setenv("PRONTUARIO_AUDIT_LOG", str(state / "audit.jsonl"))
    monkeypatch.delenv("PRONTUARIO_INVENTORY", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return state
