"""What the cloud fallback keeps in prontuario's state dir, and what its two runbooks share.

``gcp-promote-<instance>.json`` / ``gcp-failback-<instance>.json`` (mode 0600)
    A run's journal (:class:`~prontuario_cli.runbook.state.RunState`): run id, reason,
    each completed step with its time and details, the promoteReplica operation, the
    measured lag, RTO/RPO. An interrupted run continues with ``--resume`` exactly where it
    stopped. A finished run's file is kept; failback archives both as
    ``*.<run id>.done.json``.

``gcp.lock``
    An exclusive flock: one promote or failback at a time on this machine.

The emergency flag ``gcp-fallback.json`` and its metric are
:mod:`prontuario_cli.cluster.fallback`.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path

from prontuario_cli.cluster.haproxy import HAProxy
from prontuario_cli.errors import LockedError
from prontuario_cli.runbook.engine import Runbook
from prontuario_cli.runbook.state import RunState

PROMOTE = "gcp-promote"  # journal kinds: gcp-promote-<instance>.json
FAILBACK = "gcp-failback"
LOCK_FILE = "gcp.lock"


def journal_path(state_dir: str | os.PathLike, kind: str, instance: str) -> Path:
    """The journal of a promote (``PROMOTE``) or failback (``FAILBACK``) of ``instance``."""
    return RunState.path_for(state_dir, kind, instance)


def gcp_lock(state_dir: str | os.PathLike, what: str) -> AbstractContextManager:
    """One promote/failback at a time on this machine (non-blocking flock on ``gcp.lock``)."""
    from prontuario_cli.files import exclusive_lock

    return exclusive_lock(
        Path(state_dir) / LOCK_FILE,
        what,
        lambda holder: LockedError(f"another cloud fallback command is running ({holder})", hint="wait for it; never run two at once"),
    )


class CloudRunbook(Runbook):
    """A runbook on one Cloud SQL instance: the gcp lock, the Admin API client, HAProxy."""

    instance: str
    _client = None

    @property
    def client(self):
        """The Cloud SQL Admin API client, made on first use (tests may pass their own)."""
        if self._client is None:
            from prontuario_cli.gcp.client import admin_client

            self._client = admin_client(self.inv)
        return self._client

    def lock(self) -> AbstractContextManager:
        return gcp_lock(self.state_dir, f"{self.command} {self.instance}")

    def _haproxy(self) -> HAProxy:
        return HAProxy(self.inv)
