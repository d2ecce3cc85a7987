"""What ``gcp promote`` and ``gcp failback`` share: the Admin API client, the state file,
and the HAProxy runtime API, for one Cloud SQL instance."""

from __future__ import annotations

from pathlib import Path

from prontuario_cli.cluster.haproxy import HAProxy
from prontuario_cli.gcp.state import RunState
from prontuario_cli.inventory import Inventory


class Runbook:
    kind: str  # "promote" or "failback": names the state file
    inv: Inventory
    instance: str
    _client = None

    @property
    def client(self):
        """The Cloud SQL Admin API client, made on first use (tests may pass their own)."""
        if self._client is None:
            from prontuario_cli.gcp.client import admin_client

            self._client = admin_client(self.inv)
        return self._client

    @property
    def state_dir(self) -> Path:
        from prontuario_cli.paths import state_dir

        return state_dir(self.inv)

    @property
    def state_path(self) -> Path:
        return RunState.path_for(self.state_dir, self.kind, self.instance)

    def _haproxy(self) -> HAProxy:
        return HAProxy(self.inv)
