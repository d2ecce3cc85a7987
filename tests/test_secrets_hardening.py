"""Secrets under hostile conditions: a world-readable key, empty values, a FIFO, a secret in the output.

Each case is something a careless edit or a hostile file can do on a real Mac; the rule
is the same everywhere: refuse with the key path and what to do, never hang, never print.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from prontuario_cli.errors import ConfigError, ExitCode, PermissionProblem, SecretError
from tests.helpers import EXAMPLE, run, run_process

PLANTED = "planted-secret-9d41c2"


def within(seconds: float, call):
    """``call()``'s result, or a test failure if it takes longer than ``seconds`` (it would hang)."""
    outcome: list = []

    def target():
        try:
            outcome.append(("value", call()))
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome.append(("error", exc))

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if not outcome:
        pytest.fail(f"still running after {seconds} s")
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value


def inventory_with(tmp_path: Path, *, replication_file: Path | None = None, extra: str = "") -> str:
    text = EXAMPLE.read_text()
    if replication_file is not None:
        text = text.replace("/etc/prontuario/replication.password", str(replication_file))
    path = tmp_path / "cluster.yaml"
    path.write_text(text + extra)
    return str(path)


def statuses(result) -> dict[str, dict]:
    return {s["name"]: s for s in result.json()["secrets"]}


# --------------------------------------------------------------------------- cloud.credentials_file


def service_account_key(path: Path, mode: int) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "p", "private_key_id": "abc", "private_key": pem,
        "client_email": "fallback@p.iam.gserviceaccount.com", "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token",
    }))  # fmt: skip
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_readable_service_account_key_is_refused_like_every_secret(tmp_path, mode):
    from prontuario_cli.connect.cloudsql import load_credentials

    path = service_account_key(tmp_path / "sa.json", mode)
    with pytest.raises(PermissionProblem) as caught:
        load_credentials("https://sqladmin.googleapis.com", str(path))
    assert caught.value.exit_code == ExitCode.PERMISSION
    assert f"mode {mode:04o}" in caught.value.message and "cloud.credentials_file" in caught.value.message
    assert caught.value.hint == f"run: chmod 600 {path}"


def test_an_owner_only_service_account_key_is_used(tmp_path):
    from prontuario_cli.connect.cloudsql import load_credentials

    path = service_account_key(tmp_path / "sa.json", 0o600)
    creds = load_credentials("https://sqladmin.googleapis.com", str(path))
    assert "service account fallback@p.iam.gserviceaccount.com" in creds.description


def test_a_service_account_key_that_is_a_fifo_is_refused_at_once(tmp_path):
    from prontuario_cli.connect.cloudsql import load_credentials

    fifo = tmp_path / "sa.json"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(ConfigError, match="not a regular file"):
        within(10, lambda: load_credentials("https://sqladmin.googleapis.com", str(fifo)))


# --------------------------------------------------------------------------- empty values


def test_an_empty_environment_variable_is_refused_with_its_key_path(tmp_path, monkeypatch):
    secret = tmp_path / "replication.password"
    secret.write_text("s3cret-value\n")
    os.chmod(secret, 0o600)
    monkeypatch.setenv("PRONTUARIO_PG_PASSWORD", "")
    monkeypatch.setenv("PRONTUARIO_REDIS_PASSWORD", "  ")
    result = run("-i", inventory_with(tmp_path, replication_file=secret), "inventory", "check", "--secrets", "--json")
    assert result.code == ExitCode.CONFIG
    found = statuses(result)
    assert found["postgres_password"]["status"] != "ok"
    assert "secrets.postgres_password: environment variable PRONTUARIO_PG_PASSWORD is empty" in found["postgres_password"]["message"]
    assert "secrets.redis_password" in found["redis_password"]["message"] and "is empty" in found["redis_password"]["message"]
    assert found["replication_password"]["status"] == "ok"


@pytest.mark.parametrize("content", ["", "\n", "\r\n", "   \n"])
def test_an_empty_secret_file_is_refused_with_its_key_path(tmp_path, monkeypatch, content):
    monkeypatch.setenv("PRONTUARIO_PG_PASSWORD", "pg-value")
    monkeypatch.setenv("PRONTUARIO_REDIS_PASSWORD", "redis-value")
    secret = tmp_path / "replication.password"
    secret.write_text(content)
    os.chmod(secret, 0o600)
    result = run("-i", inventory_with(tmp_path, replication_file=secret), "inventory", "check", "--secrets", "--json")
    assert result.code == ExitCode.CONFIG
    message = statuses(result)["replication_password"]["message"]
    assert message.startswith("secrets.replication_password: ") and "is empty" in message


# --------------------------------------------------------------------------- files that are not files


def test_a_fifo_secret_does_not_hang_commands_that_need_no_secret(tmp_path, isolated_state):
    fifo = tmp_path / "replication.password"
    os.mkfifo(fifo, 0o600)
    path = inventory_with(tmp_path, replication_file=fifo)
    env = {"PRONTUARIO_PG_PASSWORD": "pg-value", "PRONTUARIO_REDIS_PASSWORD": "redis-value"}
    for args in (("inventory", "show", "--json"), ("audit", "verify", "--json")):
        result = run_process("-i", path, *args, env=env, timeout=30)  # before: blocked forever opening the FIFO
        assert result.code in (0, 1), (args, result.err)


def test_a_fifo_secret_is_refused_at_once_where_it_is_needed(tmp_path, monkeypatch):
    monkeypatch.setenv("PRONTUARIO_PG_PASSWORD", "pg-value")
    monkeypatch.setenv("PRONTUARIO_REDIS_PASSWORD", "redis-value")
    fifo = tmp_path / "replication.password"
    os.mkfifo(fifo, 0o600)
    path = inventory_with(tmp_path, replication_file=fifo)
    result = within(10, lambda: run("-i", path, "inventory", "check", "--secrets", "--json"))
    assert result.code == ExitCode.CONFIG
    message = statuses(result)["replication_password"]["message"]
    assert message == f"secrets.replication_password: {fifo} is not a regular file (a FIFO); refusing to read it"


def test_devices_directories_and_oversized_files_are_refused(tmp_path):
    from prontuario_cli.secrets import MAX_SECRET_BYTES, read_secret_file

    with pytest.raises(SecretError, match="not a regular file \\(a character device\\)"):
        within(10, lambda: read_secret_file(Path("/dev/zero"), "postgres_password"))
    with pytest.raises(SecretError, match="not a regular file \\(a directory\\)"):
        read_secret_file(tmp_path, "postgres_password")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MAX_SECRET_BYTES + 1))
    os.chmod(big, 0o600)
    with pytest.raises(SecretError, match="more than a secret can be"):
        read_secret_file(big, "postgres_password")


def test_a_read_that_hangs_costs_the_timeout(tmp_path, monkeypatch):
    from prontuario_cli import secrets

    monkeypatch.setattr(secrets, "_read_regular_file", lambda path, key: time.sleep(30))
    started = time.monotonic()
    with pytest.raises(SecretError, match="took more than 0.2 s"):
        secrets.read_secret_file(tmp_path / "on-a-dead-mount", "postgres_password", timeout_s=0.2)
    assert time.monotonic() - started < 5


def test_loading_the_inventory_reads_no_secret_file(tmp_path, monkeypatch):
    """The environment's values are known at load (nothing to open); files wait for a command."""
    from prontuario_cli import secrets
    from prontuario_cli.inventory import SecretRef, load_inventory

    secret = tmp_path / "replication.password"
    secret.write_text(PLANTED + "\n")
    os.chmod(secret, 0o600)
    monkeypatch.setenv("PRONTUARIO_PG_PASSWORD", PLANTED + "-env")
    monkeypatch.setattr(secrets, "_known", set())
    secrets.remember_inventory(load_inventory(inventory_with(tmp_path, replication_file=secret)))
    assert secrets.redact(f"x {PLANTED}-env y") == "x *** y"
    assert PLANTED in secrets.redact(PLANTED)  # not read yet: nothing to redact
    assert secrets.read_secret(SecretRef(file=str(secret)), "replication_password") == PLANTED
    assert secrets.redact(f"login failed with {PLANTED}") == "login failed with ***"


# --------------------------------------------------------------------------- debug logs and output


def test_debug_logs_go_to_the_inventorys_state_dir(tmp_path, monkeypatch):
    from prontuario_cli import inventory_report

    monkeypatch.delenv("PRONTUARIO_STATE_DIR")
    state = tmp_path / "inventory-state"
    path = inventory_with(tmp_path, extra=f"  state_dir: {state}\n")  # paths: is the example's last section

    def explode(inventory, node=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(inventory_report, "show_report", explode)
    result = run("-i", path, "inventory", "show")
    assert result.code == ExitCode.BUG
    log = Path(result.err.rsplit("the traceback is in ", 1)[1].strip())
    assert log.parent == state / "debug" and "RuntimeError: boom" in log.read_text()


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_a_value_equal_to_a_secret_is_redacted_in_every_format(monkeypatch, fmt):
    monkeypatch.setenv("PRONTUARIO_PG_PASSWORD", "10.40.0.20")  # the witness's address, as it happens
    result = run("-i", str(EXAMPLE), "inventory", "show", "--format", fmt)
    assert result.code == 0, result.err
    assert "10.40.0.20" not in result.out and "***" in result.out
    if fmt == "json":
        witness = next(n for n in result.json()["nodes"] if n["name"] == "witness")
        assert witness["address"] == "***"


def test_json_redaction_sees_through_escapes_and_numbers(monkeypatch):
    import io

    from prontuario_cli import secrets
    from prontuario_cli.cli.output import render
    from prontuario_cli.report import Message

    monkeypatch.setattr(secrets, "_known", {'pa"ss\\word', "26379"})
    out = io.StringIO()
    render(Message('login with pa"ss\\word failed', {"port": 26379, "other": 5432}), "json", out)
    data = json.loads(out.getvalue())
    assert data == {"message": "login with *** failed", "details": {"port": "***", "other": 5432}}


def test_inventory_check_secrets_reads_the_cloud_credentials_file_under_the_same_rule(tmp_path):
    """The service-account key is a secret file: a readable one is 'unsafe', a missing one 'missing'."""
    import json as _json

    from tests.helpers import EXAMPLE, run

    key = tmp_path / "sa.json"
    key.write_text('{"type": "service_account"}\n')
    key.chmod(0o644)
    inventory = tmp_path / "cluster.yaml"
    inventory.write_text(EXAMPLE.read_text().replace("/etc/prontuario/gcp-service-account.json", str(key)))
    rows = {s["name"]: s for s in _json.loads(run("-i", str(inventory), "inventory", "check", "--secrets", "--json").out)["secrets"]}
    assert rows["cloud.credentials_file"]["status"] == "unsafe" and "chmod 600" in rows["cloud.credentials_file"]["message"]
    key.unlink()
    rows = {s["name"]: s for s in _json.loads(run("-i", str(inventory), "inventory", "check", "--secrets", "--json").out)["secrets"]}
    assert rows["cloud.credentials_file"]["status"] == "missing"


def test_a_secret_naming_an_empty_variable_or_file_is_a_located_config_error(tmp_path):
    """{env: ""} passed the check and crashed later (exit 70) when the secret was read."""
    from tests.helpers import EXAMPLE, run

    for ref, words in (('{env: ""}', "env: names no variable"), ('{file: ""}', "file: names no file")):
        path = tmp_path / "cluster.yaml"
        path.write_text(EXAMPLE.read_text().replace("postgres_password: {env: PRONTUARIO_PG_PASSWORD}", f"postgres_password: {ref}"))
        for args in (("inventory", "check"), ("inventory", "check", "--secrets")):
            result = run("-i", str(path), *args, "--format", "table")
            assert result.code == 78, (ref, args, result.code, result.out, result.err)
            assert "secrets.postgres_password" in result.out + result.err and words in result.out + result.err
