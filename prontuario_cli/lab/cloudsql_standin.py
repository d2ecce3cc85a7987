"""A local stand-in for the Cloud SQL Admin API v1 (lab only; product code never imports it).

Run by the lab as its own process::

    python -m prontuario_cli.lab.cloudsql_standin --config DIR/cloudsql/standin.json

It fronts one real PostgreSQL 15 (the lab's ``cloudsql-replica``, an asynchronous
replica of the Macs) and answers the subset of the API prontuario calls:

- ``GET  /v1/projects/{project}/instances/{instance}`` — instances.get
- ``POST /v1/projects/{project}/instances/{instance}/promoteReplica`` — returns an
  Operation and runs ``pg_promote()`` on the stand-in PostgreSQL in the background
- ``GET  /v1/projects/{project}/operations/{operation}`` — operations.get
- ``GET  /v1/projects/{project}/operations?instance=NAME`` — operations.list

Both configured instance names (the inventory's ``sql_instance`` and
``drill_instance``) are served by the same underlying replica: promoting either one
promotes it. The instance's type and the health endpoints are read from the
database itself (``pg_is_in_recovery()``), never from a flag, so ``GET /health`` and
``GET /primary`` (HAProxy's check of the cloud backup server) answer 200 **only
after a real promotion**, 503 while it is a replica or unreachable.

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

    def in_recovery(self) -> bool | None:
        """pg_is_in_recovery() of the stand-in PostgreSQL; None when unreachable."""
        import psycopg

        try:
            with psycopg.connect(
                host=self.cfg["pg_host"], port=self.cfg["pg_port"], user=self.cfg["pg_user"], dbname="postgres", connect_timeout=2
            ) as conn:
                return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])
        except psycopg.Error:
            return None

    def promote_database(self) -> None:
        import psycopg

        with psycopg.connect(
            host=self.cfg["pg_host"], port=self.cfg["pg_port"], user=self.cfg["pg_user"], dbname="postgres", connect_timeout=5, autocommit=True
        ) as conn:
            ok = conn.execute("SELECT pg_promote(true, 60)").fetchone()[0]
            if not ok:
                raise RuntimeError("pg_promote() did not finish within 60 s")

    # ------------------------------------------------------------------ resources

    def knows(self, project: str, instance: str | None = None) -> bool:
        return project == self.cfg["project"] and (instance is None or instance in self.cfg["instances"])

    def base(self, host: str) -> str:
        return f"http://{host}/v1/projects/{self.cfg['project']}"

    def instance(self, name: str, host: str) -> dict:
        recovery = self.in_recovery()
        project, region = self.cfg["project"], self.cfg["region"]
        body = {
            "kind": "sql#instance",
            "name": name,
            "project": project,
            "region": region,
            "gceZone": f"{region}-a",
            "databaseVersion": "POSTGRES_15",
            "backendType": "SECOND_GEN",
            "connectionName": f"{project}:{region}:{name}",
            "state": "RUNNABLE" if recovery is not None else "FAILED",
            "instanceType": "READ_REPLICA_INSTANCE" if recovery is not False else "CLOUD_SQL_INSTANCE",
            "ipAddresses": [{"type": "PRIVATE", "ipAddress": self.cfg["pg_host"]}],
            "settings": {"kind": "sql#settings", "tier": "db-custom-2-7680", "availabilityType": "ZONAL", "activationPolicy": "ALWAYS"},
            "selfLink": f"{self.base(host)}/instances/{name}",
        }
        if recovery is not False:
            body["masterInstanceName"] = self.cfg.get("master_instance", "prontuario-macs")
            body["replicaConfiguration"] = {"kind": "sql#replicaConfiguration", "failoverTarget": False}
        return body

    def start_promotion(self, name: str, host: str) -> tuple[int, dict]:
        with self.lock:
            for op in self.operations.values():
                if op["targetId"] == name and op["status"] in ("PENDING", "RUNNING"):
                    return 409, google_error(409, f"Operation {op['name']} is in progress on instance {name}.")
            recovery = self.in_recovery()
            if recovery is None:
                return 503, google_error(503, f"Instance {name} is not reachable.")
            if recovery is False:
                return 400, google_error(400, f"The instance {name} is not a read replica.")
            op_name = str(uuid.uuid4())
            op = {
                "kind": "sql#operation",
                "name": op_name,
                "status": "PENDING",
                "operationType": "PROMOTE_REPLICA",
                "user": "lab@prontuario.local",
                "insertTime": now(),
                "targetId": name,
                "targetProject": self.cfg["project"],
                "targetLink": f"{self.base(host)}/instances/{name}",
                "selfLink": f"{self.base(host)}/operations/{op_name}",
            }
            self.operations[op_name] = op
            self._save()
        threading.Thread(target=self._promote, args=(op_name,), daemon=True).start()
        return 200, dict(op)

    def _promote(self, op_name: str) -> None:
        with self.lock:
            op = self.operations[op_name]
            op["status"] = "RUNNING"
            op["startTime"] = now()
            self._save()
        error = None
        try:
            self.promote_database()
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

    def _route(self, method: str) -> None:
        s = self.standin
        url = urlparse(self.path)
        path = url.path.rstrip("/") or "/"
        host = self.headers.get("Host") or f"127.0.0.1:{s.cfg['port']}"
        if path in ("/health", "/primary") and method == "GET":
            promoted = s.in_recovery() is False
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
                return self._send(200, {"faults": s.faults, "operations": s.operations, "in_recovery": s.in_recovery()})
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
            if method != "GET":
                return self._send(405, google_error(405, "Method not allowed."))
            project, name = m.groups()
            if not s.knows(project, name):
                return self._send(404, google_error(404, f"The Cloud SQL instance {name} does not exist in project {project}."))
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
    server = ThreadingHTTPServer(("127.0.0.1", int(cfg["port"])), Handler)
    server.daemon_threads = True
    print(f"{now()} cloudsql stand-in serving {cfg['project']}/{cfg['instances']} on 127.0.0.1:{cfg['port']}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
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
