"""A local stand-in for the Cloud SQL Admin API v1 (lab only; product code never imports it).

Run by the lab as its own process::

    python -m prontuario_cli.lab.cloudsql_standin --config DIR/cloudsql/standin.json

It fronts one real PostgreSQL 15 (the lab's ``cloudsql-replica``), which follows the
Macs the way Cloud SQL follows an external server: a pglogical subscription to the
address held by the *source representation instance* (``master_instance``, whose
``onPremisesConfiguration.hostPort`` is HAProxy's write frontend). It answers the
subset of the API prontuario calls:

- ``GET  /v1/projects/{project}/instances/{instance}`` — instances.get: a replica shows
  ``masterInstanceName`` and ``replicaConfiguration``; the source representation
  instance shows ``onPremisesConfiguration.hostPort``
- ``PATCH /v1/projects/{project}/instances/{source}`` — instances.patch of
  ``onPremisesConfiguration.hostPort``: re-points the subscription (a new interface of
  the provider node, the subscription moved onto it); returns an UPDATE Operation
- ``POST /v1/projects/{project}/instances/{instance}/promoteReplica`` — returns an
  Operation and drops the subscription in the background: the replica becomes a
  stand-alone primary
- ``GET  /v1/projects/{project}/operations/{operation}`` — operations.get
- ``GET  /v1/projects/{project}/operations?instance=NAME`` — operations.list

Both configured replica names (the inventory's ``sql_instance`` and
``drill_instance``) are served by the same underlying database: promoting either one
promotes it. The instance's type and the health endpoints are read from the database
itself (a logical subscriber is always read-write, so: its pglogical node exists and no
subscription is left), never from a flag, so ``GET /health`` and ``GET /primary``
(HAProxy's check of the cloud backup server) answer 200 **only after a real
promotion**, 503 while it subscribes, before it ever did, or unreachable.

Like the managed service, the process looks after its subscription: pglogical's
manager retries a failed apply worker once after a few seconds and then only every
180 s, so a subscription seen ``down`` (its provider was failing over) is restarted at
once (``restart_down_every_s``; 0 turns it off).

Errors use Google's JSON error shape. Tests make it misbehave through
``POST /_standin/fault`` with ``{"status": 403|404|409|500|503, "delay_s": N,
"count": N, "path_contains": "promoteReplica"}`` (``DELETE /_standin/fault``
clears; ``GET /_standin/state`` shows faults and operations). Faults apply to
``/v1/`` paths only.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

STATUS_NAMES = {
    400: "FAILED_PRECONDITION",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
REASONS = {
    400: "invalidOperation",
    401: "required",
    403: "notAuthorized",
    404: "instanceDoesNotExist",
    409: "operationInProgress",
    429: "rateLimitExceeded",
    500: "internalError",
    503: "backendError",
}

DEFAULT_RESTART_DOWN_EVERY_S = 1.0

INSTANCE_RE = re.compile(r"^/v1/projects/([^/]+)/instances/([^/]+)$")
PROMOTE_RE = re.compile(r"^/v1/projects/([^/]+)/instances/([^/]+)/promoteReplica$")
OPERATION_RE = re.compile(r"^/v1/projects/([^/]+)/operations/([^/]+)$")
OPERATIONS_RE = re.compile(r"^/v1/projects/([^/]+)/operations$")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def google_error(code: int, message: str) -> dict:
    """Google's JSON error body."""
    return {
        "error": {
            "code": code,
            "message": message,
            "status": STATUS_NAMES.get(code, "UNKNOWN"),
            "errors": [{"message": message, "domain": "global", "reason": REASONS.get(code, "unknown")}],
        }
    }


class StandIn:
    """State of the stand-in: config, operations (persisted), injected faults."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.lock = threading.Lock()
        self.faults: list[dict] = []
        self.operations: dict[str, dict] = {}
        self.state_file = cfg.get("state_file")
        self._load()

    # ------------------------------------------------------------------ persistence

    def _load(self) -> None:
        if self.state_file and os.path.exists(self.state_file):
            try:
                with open(self.state_file, encoding="utf-8") as fh:
                    self.operations = json.load(fh).get("operations", {})
            except (OSError, ValueError):
                self.operations = {}

    def _save(self) -> None:
        if not self.state_file:
            return
        tmp = self.state_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"operations": self.operations}, fh, indent=2)
        os.replace(tmp, self.state_file)

    # ------------------------------------------------------------------ the database

    def _where(self) -> tuple[int, str, str]:
        return int(self.cfg["pg_port"]), self.cfg.get("database", "postgres"), self.cfg.get("subscription", "cloudsql")

    def subscription(self):
        """The subscription as the database reports it (None: unreachable)."""
        from prontuario_cli.lab import logical

        port, database, name = self._where()
        return logical.subscription(port, database, name)

    def promoted(self) -> bool | None:
        """Stands alone (subscribed once, no subscription left); None when unreachable."""
        from prontuario_cli.lab import logical

        port, database, _ = self._where()
        return logical.promoted(port, database)

    def is_replica(self) -> bool | None:
        promoted = self.promoted()
        return None if promoted is None else not promoted

    def promote_database(self) -> None:
        from prontuario_cli.lab import logical

        port, database, name = self._where()
        with self.lock:  # never while the watchdog restarts the subscription
            logical.unsubscribe(port, database, name)
        logical.advance_sequences(port, database)
        if not self.promoted():
            raise RuntimeError(f"subscription {name} still present after dropping it")

    def source_host_port(self) -> str:
        """The source representation instance's hostPort: where the subscription points."""
        sub = self.subscription()
        if sub is not None and sub.provider_dsn:
            fields = dict(part.split("=", 1) for part in sub.provider_dsn.split() if "=" in part)
            if fields.get("host") and fields.get("port"):
                return f"{fields['host']}:{fields['port']}"
        return self.cfg.get("source_host_port", "")

    def repoint(self, host_port: str) -> str:
        from prontuario_cli.lab import logical

        port, database, name = self._where()
        host, source_port = logical.host_port(host_port)
        with self.lock:
            return logical.repoint(port, database, name, self.cfg.get("provider_node", "onprem"), logical.dsn(host, source_port, database))

    def watch_subscription(self, every_s: float, stop: threading.Event) -> None:
        """Restart the subscription whenever it is seen down (see the module docstring)."""
        from prontuario_cli.lab import logical

        port, database, name = self._where()
        while not stop.wait(every_s):
            sub = self.subscription()
            if sub is None or sub.status != "down":
                continue
            try:
                with self.lock:
                    logical.restart(port, database, name)
                print(f"{now()} subscription {name} was down: restarted", flush=True)
            except Exception as exc:  # noqa: BLE001 - logged; the next round tries again
                print(f"{now()} subscription {name} was down; restart failed: {str(exc).strip()[:200]}", flush=True)

    # ------------------------------------------------------------------ resources

    @property
    def source_name(self) -> str:
        return self.cfg.get("master_instance", "prontuario-macs")

    def knows(self, project: str, instance: str | None = None) -> bool:
        names = (*self.cfg["instances"], self.source_name)
        return project == self.cfg["project"] and (instance is None or instance in names)

    def base(self, host: str) -> str:
        return f"http://{host}/v1/projects/{self.cfg['project']}"

    def instance(self, name: str, host: str) -> dict:
        project, region = self.cfg["project"], self.cfg["region"]
        body = {
            "kind": "sql#instance",
            "name": name,
            "project": project,
            "region": region,
            "databaseVersion": "POSTGRES_15",
            "selfLink": f"{self.base(host)}/instances/{name}",
        }
        if name == self.source_name:
            body.update(
                state="RUNNABLE",
                instanceType="ON_PREMISES_INSTANCE",
                onPremisesConfiguration={"kind": "sql#onPremisesConfiguration", "hostPort": self.source_host_port(), "username": self.cfg["pg_user"]},
                replicaNames=list(self.cfg["instances"]),
            )
            return body
        replica = self.is_replica()
        body.update(
            gceZone=f"{region}-a",
            backendType="SECOND_GEN",
            connectionName=f"{project}:{region}:{name}",
            state="RUNNABLE" if replica is not None else "FAILED",
            instanceType="READ_REPLICA_INSTANCE" if replica is not False else "CLOUD_SQL_INSTANCE",
            ipAddresses=[{"type": "PRIVATE", "ipAddress": self.cfg["pg_host"]}],
            settings={"kind": "sql#settings", "tier": "db-custom-2-7680", "availabilityType": "ZONAL", "activationPolicy": "ALWAYS"},
        )
        if replica is not False:
            body["masterInstanceName"] = self.source_name
            body["replicaConfiguration"] = {"kind": "sql#replicaConfiguration", "failoverTarget": False}
        return body

    def _operation(self, name: str, kind: str, host: str) -> dict:
        op_name = str(uuid.uuid4())
        return {
            "kind": "sql#operation",
            "name": op_name,
            "status": "PENDING",
            "operationType": kind,
            "user": "lab@prontuario.local",
            "insertTime": now(),
            "targetId": name,
            "targetProject": self.cfg["project"],
            "targetLink": f"{self.base(host)}/instances/{name}",
            "selfLink": f"{self.base(host)}/operations/{op_name}",
        }

    def start_patch(self, name: str, body: dict, host: str) -> tuple[int, dict]:
        """instances.patch: only the source representation instance's hostPort changes here."""
        if name != self.source_name:
            return 400, google_error(400, f"The stand-in patches only the source representation instance {self.source_name}.")
        wanted = (body.get("onPremisesConfiguration") or {}).get("hostPort")
        extra = sorted(set(body) - {"onPremisesConfiguration", "kind", "name"})
        if not wanted or extra:
            return 400, google_error(400, "Only onPremisesConfiguration.hostPort can be patched on the stand-in.")
        try:
            from prontuario_cli.lab.logical import host_port

            host_port(wanted)
        except ValueError:
            return 400, google_error(400, f"Invalid hostPort {wanted!r}: expected host:port.")
        with self.lock:
            op = self._operation(name, "UPDATE", host)
            self.operations[op["name"]] = op
            self._save()
        threading.Thread(target=self._run, args=(op["name"], lambda: self.repoint(wanted)), daemon=True).start()
        return 200, dict(op)

    def start_promotion(self, name: str, host: str) -> tuple[int, dict]:
        with self.lock:
            for op in self.operations.values():
                if op["targetId"] == name and op["status"] in ("PENDING", "RUNNING"):
                    return 409, google_error(409, f"Operation {op['name']} is in progress on instance {name}.")
            if name == self.source_name:
                return 400, google_error(400, f"The instance {name} is a source representation instance, not a read replica.")
            replica = self.is_replica()
            if replica is None:
                return 503, google_error(503, f"Instance {name} is not reachable.")
            if replica is False:
                return 400, google_error(400, f"The instance {name} is not a read replica.")
            op = self._operation(name, "PROMOTE_REPLICA", host)
            self.operations[op["name"]] = op
            self._save()
        threading.Thread(target=self._run, args=(op["name"], self.promote_database), daemon=True).start()
        return 200, dict(op)

    def _run(self, op_name: str, work) -> None:
        with self.lock:
            op = self.operations[op_name]
            op["status"] = "RUNNING"
            op["startTime"] = now()
            self._save()
        error = None
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - reported in the operation, as the API does
            error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        with self.lock:
            op["status"] = "DONE"
            op["endTime"] = now()
            if error:
                op["error"] = {"kind": "sql#operationErrors", "errors": [{"kind": "sql#operationError", "code": "INTERNAL_ERROR", "message": error}]}
            self._save()

    # ------------------------------------------------------------------ faults

    def take_fault(self, method: str, path: str) -> dict | None:
        with self.lock:
            for fault in self.faults:
                if fault.get("path_contains") and fault["path_contains"] not in path:
                    continue
                if fault.get("method") and fault["method"].upper() != method:
                    continue
                fault["count"] -= 1
                if fault["count"] <= 0:
                    self.faults.remove(fault)
                return dict(fault)
        return None


class Handler(BaseHTTPRequestHandler):
    server_version = "cloudsql-standin/1"
    standin: StandIn  # set on the class by serve()

    def log_message(self, fmt, *args):  # one line per request on stderr (the lab's log)
        print(f"{now()} {self.address_string()} {fmt % args}", flush=True)

    def _send(self, code: int, body: dict | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        try:
            value = json.loads(self.rfile.read(length))
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_DELETE(self):
        self._route("DELETE")

    def do_PATCH(self):
        self._route("PATCH")

    def _route(self, method: str) -> None:
        s = self.standin
        url = urlparse(self.path)
        path = url.path.rstrip("/") or "/"
        host = self.headers.get("Host") or f"127.0.0.1:{s.cfg['port']}"
        if path in ("/health", "/primary") and method == "GET":
            promoted = s.promoted() is True
            return self._send(200 if promoted else 503, {"promoted": promoted})
        if path == "/_standin/fault":
            if method == "POST":
                fault = self._body()
                fault["count"] = int(fault.get("count", 1))
                with s.lock:
                    s.faults.append(fault)
                return self._send(200, {"faults": s.faults})
            if method == "DELETE":
                with s.lock:
                    s.faults.clear()
                return self._send(200, {"faults": []})
        if path == "/_standin/state" and method == "GET":
            with s.lock:
                faults, operations = list(s.faults), dict(s.operations)
            sub = s.subscription()
            return self._send(200, {
                "faults": faults, "operations": operations, "replica": s.is_replica(),
                "subscription": sub.status if sub is not None else None,
            })  # fmt: skip
        if path.startswith("/v1/"):
            fault = s.take_fault(method, path)
            if fault:
                if fault.get("delay_s"):
                    time.sleep(float(fault["delay_s"]))
                code = int(fault.get("status") or 0)
                if code >= 400:
                    return self._send(code, google_error(code, fault.get("message") or f"Injected fault (stand-in): HTTP {code}."))
            return self._api(method, path, url, host)
        return self._send(404, google_error(404, f"The requested URL {path} was not found on this server."))

    def _api(self, method: str, path: str, url, host: str) -> None:
        s = self.standin
        if m := INSTANCE_RE.match(path):
            if method not in ("GET", "PATCH"):
                return self._send(405, google_error(405, "Method not allowed."))
            project, name = m.groups()
            if not s.knows(project, name):
                return self._send(404, google_error(404, f"The Cloud SQL instance {name} does not exist in project {project}."))
            if method == "PATCH":
                return self._send(*s.start_patch(name, self._body(), host))
            return self._send(200, s.instance(name, host))
        if m := PROMOTE_RE.match(path):
            if method != "POST":
                return self._send(405, google_error(405, "Method not allowed."))
            project, name = m.groups()
            if not s.knows(project, name):
                return self._send(404, google_error(404, f"The Cloud SQL instance {name} does not exist in project {project}."))
            code, body = s.start_promotion(name, host)
            return self._send(code, body)
        if m := OPERATION_RE.match(path):
            project, op_name = m.groups()
            with s.lock:
                op = s.operations.get(op_name) if s.knows(project) else None
                op = dict(op) if op else None
            if op is None:
                return self._send(404, google_error(404, f"The operation {op_name} does not exist in project {project}."))
            return self._send(200, op)
        if m := OPERATIONS_RE.match(path):
            project = m.group(1)
            wanted = parse_qs(url.query).get("instance", [None])[0]
            with s.lock:
                items = [dict(op) for op in s.operations.values() if s.knows(project) and (wanted is None or op["targetId"] == wanted)]
            items.sort(key=lambda op: op["insertTime"], reverse=True)
            return self._send(200, {"kind": "sql#operationsList", "items": items})
        return self._send(404, google_error(404, f"The requested URL {path} was not found on this server."))


def serve(cfg: dict) -> None:
    Handler.standin = StandIn(cfg)
    stop = threading.Event()
    every_s = float(cfg.get("restart_down_every_s", DEFAULT_RESTART_DOWN_EVERY_S))
    if every_s > 0 and cfg.get("pg_port"):
        threading.Thread(target=Handler.standin.watch_subscription, args=(every_s, stop), daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", int(cfg["port"])), Handler)
    server.daemon_threads = True
    print(f"{now()} cloudsql stand-in serving {cfg['project']}/{cfg['instances']} on 127.0.0.1:{cfg['port']}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    import signal

    parser = argparse.ArgumentParser(description="Cloud SQL Admin API v1 stand-in for the prontuario lab.")
    parser.add_argument("--config", required=True, help="JSON config written by 'prontuario lab up'.")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as fh:
        cfg = json.load(fh)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    serve(cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
