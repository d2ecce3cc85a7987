"""The Admin API client against the lab's stand-in served in this process (no PostgreSQL,
no lab, no Google): every HTTP error maps to a message naming what to do, and the
operation wait backs off, retries what is transient and stops at its timeout."""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer

import httpx
import pytest

from prontuario_cli.connect import TimedOut
from prontuario_cli.connect.cloudsql import AdminApi, Credentials, is_loopback_http, load_credentials
from prontuario_cli.errors import ConfigError, ExitCode, OperationFailed, UnavailableError
from prontuario_cli.gcp.client import AdminClient, Operation

PROJECT = "prontuario-test"
INSTANCE = "replica-a"


@pytest.fixture(scope="module")
def standin():
    """The stand-in's HTTP server on a free loopback port; its database is unreachable."""
    from prontuario_cli.lab import cloudsql_standin as s

    cfg = {"port": 0, "project": PROJECT, "region": "southamerica-east1", "instances": [INSTANCE, "drill-a"],
           "pg_host": "127.0.0.1", "pg_port": 1, "pg_user": "postgres", "state_file": None}  # fmt: skip
    handler = type("Handler", (s.Handler,), {"standin": s.StandIn(cfg)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # a client that gave up (timeout test) is expected
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def api(standin):
    httpx.delete(f"{standin}/_standin/fault")
    yield AdminApi(standin, Credentials(None), project=PROJECT, timeout_s=2.0)
    httpx.delete(f"{standin}/_standin/fault")


def fault(base: str, **spec) -> None:
    httpx.post(f"{base}/_standin/fault", json=spec).raise_for_status()


def test_instances_get_parses_the_instance(api):
    info = AdminClient(api).get_instance(INSTANCE)
    assert info.name == INSTANCE and info.connection_name == f"{PROJECT}:southamerica-east1:{INSTANCE}"
    assert info.state == "FAILED"  # the stand-in's database is not running in this test


@pytest.mark.parametrize(
    "status, method, exit_code, words",
    [
        (401, "instances.get", ExitCode.PERMISSION, ["not authenticated (401)", "anonymous"]),
        (403, "instances.get", ExitCode.PERMISSION, ["permission denied (403)", "cloudsql.instances.get", "anonymous"]),
        (403, "instances.promoteReplica", ExitCode.PERMISSION, ["cloudsql.instances.promoteReplica"]),
        (404, "instances.get", ExitCode.CONFIG, [f"instance {INSTANCE} not found in project {PROJECT}"]),
        (409, "instances.promoteReplica", ExitCode.LOCKED, ["another operation is already running", "--resume"]),
        (503, "instances.get", ExitCode.UNAVAILABLE, ["Google is unavailable (HTTP 503)"]),
    ],
)
def test_http_errors_are_mapped(api, standin, status, method, exit_code, words):
    client = AdminClient(api)
    path = "promoteReplica" if method.endswith("promoteReplica") else f"instances/{INSTANCE}"
    fault(standin, status=status, path_contains=path)
    with pytest.raises(OperationFailed) as info:
        client.promote_replica(INSTANCE) if method.endswith("promoteReplica") else client.get_instance(INSTANCE)
    error = info.value
    assert error.exit_code == exit_code
    text = error.one_line()
    for word in words:
        assert word in text, text
    assert error.status == status


def test_an_unknown_instance_is_a_404_naming_it(api):
    with pytest.raises(OperationFailed) as info:
        AdminClient(api).get_instance("no-such-instance")
    assert info.value.exit_code == ExitCode.CONFIG
    assert "no-such-instance not found" in info.value.one_line()


def test_a_slow_api_times_out_within_its_bound(standin):
    fault(standin, delay_s=3, path_contains="instances/")
    api = AdminApi(standin, Credentials(None), project=PROJECT, timeout_s=0.5)
    with pytest.raises(TimedOut) as info:
        AdminClient(api).get_instance(INSTANCE)
    assert "no answer within 0.5 s" in info.value.one_line()
    assert info.value.exit_code == ExitCode.UNAVAILABLE


class FakeApi:
    """Answers operations.get from a script: dicts are bodies, exceptions are raised."""

    credentials = Credentials(None)

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def call(self, api_method, http_method, path, **kw):
        self.calls.append((api_method, path, kw.get("params")))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def test_wait_operation_retries_transient_errors_and_backs_off():
    sleeps = []
    api = FakeApi([
        {"name": "op1", "status": "PENDING"},
        UnavailableError("Google is unavailable (HTTP 503)"),
        {"name": "op1", "status": "RUNNING"},
        {"name": "op1", "status": "DONE", "operationType": "PROMOTE_REPLICA"},
    ])  # fmt: skip
    op = AdminClient(api, sleep=sleeps.append).wait_operation("op1", timeout_s=60)
    assert op.done and not op.errors
    assert sleeps == [0.5, 0.75, 1.125]


def test_wait_operation_reports_the_operations_own_error():
    api = FakeApi([{"name": "op1", "status": "DONE", "error": {"errors": [{"code": "INTERNAL_ERROR", "message": "disk full"}]}}])
    with pytest.raises(OperationFailed, match="INTERNAL_ERROR: disk full"):
        AdminClient(api, sleep=lambda s: None).wait_operation("op1", timeout_s=5)


def test_wait_operation_gives_up_at_its_timeout_and_points_to_resume():
    api = FakeApi([{"name": "op1", "status": "RUNNING"}])
    with pytest.raises(UnavailableError) as info:
        AdminClient(api, sleep=lambda s: None).wait_operation("op1", timeout_s=0.01, first_delay_s=0.02)
    assert "--resume" in info.value.one_line() and "not DONE" in info.value.one_line()


def test_find_promotion_ignores_old_and_other_operations():
    items = [
        {"name": "old", "operationType": "PROMOTE_REPLICA", "targetId": INSTANCE, "insertTime": "2026-01-01T00:00:00Z", "status": "DONE"},
        {"name": "backup", "operationType": "BACKUP_VOLUME", "targetId": INSTANCE, "insertTime": "2026-11-25T03:00:05Z", "status": "DONE"},
        {"name": "ours", "operationType": "PROMOTE_REPLICA", "targetId": INSTANCE, "insertTime": "2026-11-25T03:00:01Z", "status": "RUNNING"},
    ]
    api = FakeApi([{"items": items}])
    from prontuario_cli.gcp.client import parse_time

    found = AdminClient(api).find_promotion(INSTANCE, since=parse_time("2026-11-25T03:00:00Z"))
    assert found is not None and found.name == "ours"
    assert api.calls[0][2] == {"instance": INSTANCE, "maxResults": 50}


def test_operation_parse_keeps_errors():
    op = Operation.parse({"name": "x", "status": "DONE", "error": {"errors": [{"code": "C", "message": "m"}]}})
    assert op.failed and op.errors == ("C: m",)


# --------------------------------------------------------------------------- credentials


@pytest.mark.parametrize(
    "url, loopback",
    [("http://127.0.0.1:28064", True), ("http://localhost:1", True), ("http://[::1]:1", True),
     ("http://10.0.0.5", False), ("https://127.0.0.1", False), ("https://sqladmin.googleapis.com", False)],
)  # fmt: skip
def test_only_plain_http_on_loopback_is_anonymous(url, loopback):
    assert is_loopback_http(url) is loopback


def test_loopback_stand_in_needs_no_google_library():
    creds = load_credentials("http://127.0.0.1:9", None)
    assert creds.anonymous and creds.headers(1.0) == {}


def test_plain_http_elsewhere_is_refused():
    with pytest.raises(ConfigError, match="only allowed on a loopback"):
        load_credentials("http://sqladmin.example.org", None)


def test_a_missing_key_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_credentials("https://sqladmin.googleapis.com", str(tmp_path / "nope.json"))


def test_a_service_account_key_names_its_account(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": PROJECT, "private_key_id": "abc", "private_key": pem,
        "client_email": f"prontuario-fallback@{PROJECT}.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }))  # fmt: skip
    path.chmod(0o600)  # a private key: owner-only, like every secret file
    creds = load_credentials("https://sqladmin.googleapis.com", str(path))
    assert not creds.anonymous
    assert f"service account prontuario-fallback@{PROJECT}.iam.gserviceaccount.com" in creds.description


def test_a_damaged_key_file_is_a_config_error(tmp_path):
    path = tmp_path / "sa.json"
    path.write_text('{"type": "service_account"}')
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="not a service-account JSON key"):
        load_credentials("https://sqladmin.googleapis.com", str(path))
