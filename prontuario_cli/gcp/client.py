"""The Cloud SQL Admin API calls the fallback makes: instances.get, instances.promoteReplica,
operations.get (polled with a timeout and backoff) and operations.list.

Built from the inventory's ``cloud`` section by :func:`admin_client`; the HTTP, the
credentials rule (anonymous for an ``http://`` loopback stand-in, google-auth otherwise)
and the error mapping live in :mod:`prontuario_cli.connect.cloudsql`.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from prontuario_cli.errors import ConfigError, OperationFailed, UnavailableError
from prontuario_cli.inventory import Inventory

REPLICA_TYPE = "READ_REPLICA_INSTANCE"
PRIMARY_TYPE = "CLOUD_SQL_INSTANCE"
PROMOTE_TYPE = "PROMOTE_REPLICA"


@dataclass(frozen=True)
class Instance:
    """What instances.get says about one instance."""

    name: str
    state: str  # RUNNABLE, SUSPENDED, PENDING_CREATE, MAINTENANCE, FAILED, ...
    instance_type: str  # READ_REPLICA_INSTANCE, CLOUD_SQL_INSTANCE, ...
    database_version: str = ""
    master: str | None = None  # masterInstanceName while a replica
    connection_name: str | None = None
    private_ip: str | None = None
    region: str | None = None

    @property
    def is_replica(self) -> bool:
        return self.instance_type == REPLICA_TYPE

    @classmethod
    def parse(cls, body: dict[str, Any]) -> "Instance":
        ips = body.get("ipAddresses") or []
        private = next((ip.get("ipAddress") for ip in ips if isinstance(ip, dict) and ip.get("type") == "PRIVATE"), None)
        return cls(
            name=str(body.get("name") or ""),
            state=str(body.get("state") or "UNKNOWN"),
            instance_type=str(body.get("instanceType") or "UNKNOWN"),
            database_version=str(body.get("databaseVersion") or ""),
            master=body.get("masterInstanceName"),
            connection_name=body.get("connectionName"),
            private_ip=private,
            region=body.get("region"),
        )


@dataclass(frozen=True)
class Operation:
    """One long-running operation (operations.get / the answer of promoteReplica)."""

    name: str
    status: str  # PENDING, RUNNING, DONE
    operation_type: str = ""
    target: str = ""
    insert_time: str | None = None
    end_time: str | None = None
    errors: tuple[str, ...] = field(default=())

    @property
    def done(self) -> bool:
        return self.status == "DONE"

    @property
    def failed(self) -> bool:
        return self.done and bool(self.errors)

    @classmethod
    def parse(cls, body: dict[str, Any]) -> "Operation":
        errors = ((body.get("error") or {}).get("errors") or []) if isinstance(body.get("error"), dict) else []
        return cls(
            name=str(body.get("name") or ""),
            status=str(body.get("status") or "UNKNOWN"),
            operation_type=str(body.get("operationType") or ""),
            target=str(body.get("targetId") or ""),
            insert_time=body.get("insertTime"),
            end_time=body.get("endTime"),
            errors=tuple(f"{e.get('code', 'ERROR')}: {e.get('message', '')}".strip() for e in errors if isinstance(e, dict)),
        )


def parse_time(text: str | None) -> float | None:
    """RFC 3339 (``2026-11-25T03:00:00.123Z``) to a Unix time; None if absent or malformed."""
    if not text:
        return None
    try:
        return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class AdminClient:
    """The calls of the Cloud SQL Admin API v1 that the fallback needs."""

    def __init__(self, api, *, operation_timeout_s: float = 900.0, sleep: Callable[[float], None] = time.sleep):
        self.api = api
        self.operation_timeout_s = operation_timeout_s
        self.sleep = sleep

    @property
    def credential(self) -> str:
        return self.api.credentials.description

    def get_instance(self, instance: str) -> Instance:
        body = self.api.call("instances.get", "GET", f"instances/{instance}", subject=f"instance {instance}")
        return Instance.parse(body)

    def promote_replica(self, instance: str) -> Operation:
        """POST promoteReplica once: never retried here (a repeat must be a decision)."""
        body = self.api.call("instances.promoteReplica", "POST", f"instances/{instance}/promoteReplica", subject=f"instance {instance}")
        return Operation.parse(body)

    def get_operation(self, name: str) -> Operation:
        return Operation.parse(self.api.call("operations.get", "GET", f"operations/{name}", subject=f"operation {name}"))

    def list_operations(self, instance: str) -> list[Operation]:
        body = self.api.call("operations.list", "GET", "operations", subject=f"instance {instance}", params={"instance": instance, "maxResults": 50})
        return [Operation.parse(item) for item in body.get("items") or [] if isinstance(item, dict)]

    def find_promotion(self, instance: str, since: float | None = None, slack_s: float = 300.0) -> Operation | None:
        """The newest PROMOTE_REPLICA operation on ``instance`` inserted after ``since`` (minus slack)."""
        found = []
        for op in self.list_operations(instance):
            if op.operation_type != PROMOTE_TYPE or (op.target and op.target != instance):
                continue
            inserted = parse_time(op.insert_time)
            if since is not None and inserted is not None and inserted < since - slack_s:
                continue
            found.append((inserted or 0.0, op))
        return max(found, key=lambda pair: pair[0])[1] if found else None

    def wait_operation(self, name: str, *, timeout_s: float | None = None, on_poll: Callable[[Operation], None] | None = None,
                       first_delay_s: float = 0.5, max_delay_s: float = 5.0) -> Operation:
        """Poll operations.get until DONE (backoff ×1.5 up to ``max_delay_s``), within ``timeout_s``.

        Transient errors (timeouts, 429/5xx) are retried until the timeout; a DONE
        operation carrying errors raises OperationFailed with them.
        """
        timeout = timeout_s or self.operation_timeout_s
        deadline = time.monotonic() + timeout
        delay = first_delay_s
        last_error = ""
        while True:
            try:
                op = self.get_operation(name)
                if on_poll:
                    on_poll(op)
                if op.done:
                    if op.errors:
                        raise OperationFailed(f"Cloud SQL operation {name} ({op.operation_type or 'operation'}) failed: {'; '.join(op.errors)}")
                    return op
                last_error = f"status {op.status}"
            except UnavailableError as exc:  # includes timeouts and mapped 429/5xx
                last_error = exc.one_line()
            if time.monotonic() + delay > deadline:
                raise UnavailableError(
                    f"Cloud SQL operation {name} not DONE within {timeout:g} s (last: {last_error})",
                    hint="it may still finish: run the same command with --resume to keep waiting (promoteReplica is not sent again)",
                )
            self.sleep(delay)
            delay = min(max_delay_s, delay * 1.5)


def admin_client(inventory: Inventory) -> AdminClient:
    """An AdminClient for the inventory's ``cloud`` section (credentials loaded here)."""
    from prontuario_cli.connect.cloudsql import AdminApi, load_credentials

    cloud = require_cloud(inventory)
    credentials = load_credentials(cloud.api_base_url, cloud.credentials_file)
    api = AdminApi(cloud.api_base_url, credentials, project=cloud.project, timeout_s=cloud.api_timeout_s)
    return AdminClient(api, operation_timeout_s=cloud.operation_timeout_s)


def require_cloud(inventory: Inventory):
    if inventory.cloud is None:
        raise ConfigError(f"{inventory.source}: no cloud section: the Cloud SQL fallback is not configured", hint="add cloud: {project, region, sql_instance, ...}")
    return inventory.cloud


def choose_instance(inventory: Inventory, instance: str | None) -> tuple[str, bool]:
    """(instance name, is it the drill instance). Only the two configured names are accepted."""
    cloud = require_cloud(inventory)
    name = instance or cloud.sql_instance
    if name == cloud.sql_instance:
        return name, False
    if cloud.drill_instance and name == cloud.drill_instance:
        return name, True
    known = ", ".join(n for n in (cloud.sql_instance, cloud.drill_instance) if n)
    raise ConfigError(f"instance {name!r} is not in the inventory (cloud.sql_instance / cloud.drill_instance: {known})")
