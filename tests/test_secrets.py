"""Secrets: from env or a 0600 file, refused when unsafe, never printed, logged or audited."""

from __future__ import annotations

import os
from pathlib import Path

from prontuario_cli.errors import ExitCode
from tests.helpers import EXAMPLE, run

PLANTED_ENV = "planted-env-secret-7f3a9c"
PLANTED_FILE = "planted-file-secret-41be07"


def inventory_with_secret_file(tmp_path, mode: int) -> tuple[str, Path]:
    secret = tmp_path / "replication.password"
    secret.write_text(PLANTED_FILE + "\n")
    os.chmod(secret, mode)
    key = tmp_path / "gcp-service-account.json"  # inventory check --secrets reads it too
    key.write_text('{"type": "service_account"}\n')
    os.chmod(key, 0o600)
    text = EXAMPLE.read_text().replace("/etc/prontuario/replication.password", str(secret))
    text = text.replace("/etc/prontuario/gcp-service-account.json", str(key))
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    return str(path), secret


def test_group_readable_secret_file_is_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PRONTUARIO_PG_PASSWORD", PLANTED_ENV)
    monkeypatch.setenv("PRONTUARIO_REDIS_PASSWORD", PLANTED_ENV + "-redis")
    path, secret = inventory_with_secret_file(tmp_path, 0o644)
    result = run("-i", path, "inventory", "check", "--secrets", "--json")
    assert result.code == ExitCode.PERMISSION
    status = {s["name"]: s for s in result.json()["secrets"]}
    assert status["replication_password"]["status"] == "unsafe"
    assert f"run: chmod 600 {secret}" in status["replication_password"]["message"]
    assert "mode 0644" in status["replication_password"]["message"]
    assert status["postgres_password"]["status"] == "ok"


def test_missing_environment_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("PRONTUARIO_PG_PASSWORD", raising=False)
    path, _ = inventory_with_secret_file(tmp_path, 0o600)
    result = run("-i", path, "inventory", "check", "--secrets", "--json")
    assert result.code == ExitCode.CONFIG
    status = {s["name"]: s for s in result.json()["secrets"]}
    assert status["postgres_password"]["status"] == "missing"
    assert "PRONTUARIO_PG_PASSWORD is not set" in status["postgres_password"]["message"]


def test_planted_secret_never_appears_anywhere(tmp_path, monkeypatch, isolated_state):
    monkeypatch.setenv("PRONTUARIO_PG_PASSWORD", PLANTED_ENV)
    monkeypatch.setenv("PRONTUARIO_REDIS_PASSWORD", PLANTED_ENV + "-redis")
    path, secret_file = inventory_with_secret_file(tmp_path, 0o600)
    outputs = []
    for args in (
        ("-v", "-i", path, "inventory", "check", "--secrets", "--json"),
        ("-v", "-i", path, "inventory", "check", "--secrets", "--format", "table"),
        ("-v", "-i", path, "inventory", "show", "--json"),
        ("-i", path, "inventory", "init", str(tmp_path / "copy.yaml"), "--yes", "--json"),
    ):
        result = run(*args)
        assert result.code == 0, result.err
        outputs += [result.out, result.err]

    # An error message and a bug that both carry the secret: redacted on screen and in files.
    from prontuario_cli import audit, inventory_report
    from prontuario_cli.errors import OperationFailed

    def leaky(inventory, node=None):
        raise RuntimeError(f"connection failed for postgresql://postgres:{PLANTED_ENV}@db")

    monkeypatch.setattr(inventory_report, "show_report", leaky)
    from prontuario_cli import secrets
    from prontuario_cli.inventory import SecretRef

    monkeypatch.setattr(secrets, "_known", set())  # as in a fresh process that read no secret yet
    bug = run("-i", path, "inventory", "show")
    assert bug.code == ExitCode.BUG
    outputs += [bug.out, bug.err]
    # The environment's secrets are known as soon as the inventory loads; a file's once a
    # command has read it (a failure can only carry a value that was read).
    secrets.read_secret(SecretRef(file=str(secret_file)), "replication_password")
    try:
        with audit.action(audit.log_for(None), "gcp promote", {"reason": "drill", "password": PLANTED_FILE, "dsn": f"x:{PLANTED_ENV}"}):
            raise OperationFailed(f"login failed with {PLANTED_FILE}")
    except OperationFailed:
        pass

    files = [p for p in isolated_state.rglob("*") if p.is_file()]
    assert any(p.name == "audit.jsonl" for p in files) and any("bug" in p.name for p in files)
    texts = outputs + [p.read_bytes().decode("utf-8", "replace") for p in files]  # the audit key is binary
    for text in texts:
        assert PLANTED_ENV not in text and PLANTED_FILE not in text
    assert "***" in (isolated_state / "audit.jsonl").read_text()
