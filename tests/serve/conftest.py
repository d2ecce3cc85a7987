"""The server tests' fixture: every server a test starts is stopped by PID at its end."""

from __future__ import annotations

import pytest

from tests.serve.harness import Server


@pytest.fixture
def servers():
    """Servers started in a test; every one stopped by PID at the end."""
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()
        assert server.proc.poll() is not None


