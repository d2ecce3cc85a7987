"""``models pull --from-hub``, against a local stand-in of the Hugging Face Hub's HTTP API.

The real huggingface_hub client does the fetching; the stand-in (tests/hub_standin.py)
only answers as the Hub would. What is proved: the pinned revision is what is asked
for, the bytes are verified against the manifest (the Hub is trusted for nothing), an
interrupted download resumes, and every refusal comes before anything changes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from prontuario_cli.errors import ExitCode
from prontuario_cli.models.manifest import HubSource as Hub
from prontuario_cli.models.manifest import Manifest, Source, manifest_text
from prontuario_cli.models.verify import hash_directory
from tests.helpers import run_process
from tests.hub_standin import HubStandIn
from tests.models.test_models_store import make_model

REPO = "google/tiny-test-model"
COMMIT = "4d8a7c1e2f3b5a6978c0d1e2f3a4b5c6d7e8f901"
SIZES = {"config.json": 400, "model.safetensors": 3 << 20, "tokenizer.json": 9000}


@pytest.fixture
def hub(tmp_path):
    files = make_model(tmp_path / "hub-files", SIZES)
    manifest = Manifest("tiny-hub", "llm", "mlx-lm", Source(hub=Hub(REPO, COMMIT)), tuple(hash_directory(files)))
    (tmp_path / "tiny-hub.yaml").write_text(manifest_text(manifest))
    with HubStandIn(REPO, COMMIT, files) as standin:
        yield {"standin": standin, "files": files, "manifest": manifest, "path": tmp_path / "tiny-hub.yaml",
               "store": tmp_path / "store", "env": {"HF_ENDPOINT": standin.endpoint, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "0",
                                                    "PRONTUARIO_AUDIT_LOG": str(tmp_path / "audit.jsonl"), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}}


def pull(hub, *extra: str, env: dict | None = None):
    return run_process("models", "pull", "tiny-hub", "--from-hub", "--manifest", str(hub["path"]), "--store", str(hub["store"]),
                       "--yes", "--json", *extra, env={**hub["env"], **(env or {})}, timeout=120)


def test_a_pull_from_the_hub_fetches_the_pinned_revision_verifies_and_activates(hub):
    done = pull(hub)
    assert done.code == 0, done.err
    version = hub["manifest"].version
    assert done.json()["version"] == version and os.readlink(hub["store"] / "tiny-hub" / "current") == version
    for rel in SIZES:
        assert (hub["store"] / "tiny-hub" / version / rel).read_bytes() == (hub["files"] / rel).read_bytes()
    asked = [path for _, path in hub["standin"].requests]
    assert asked and all(f"/{COMMIT}" in p for p in asked), "only the manifest's pinned revision is ever asked for"
    assert not any("/resolve/main/" in p for p in asked)
    assert not (hub["store"] / "tiny-hub" / ".hub").exists(), "the download is removed once installed"


def test_a_file_on_the_hub_that_does_not_match_the_manifest_installs_nothing(hub):
    weights = hub["files"] / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit flipped at the source
    weights.write_bytes(bytes(data))
    done = pull(hub)
    assert done.code == ExitCode.INTEGRITY, done.err
    assert "model.safetensors" in done.err and "Traceback" not in done.err
    assert not (hub["store"] / "tiny-hub" / hub["manifest"].version).exists() and not (hub["store"] / "tiny-hub" / "current").exists()
    assert not (hub["store"] / "tiny-hub" / ".hub").exists(), "a download that does not verify is thrown away"


def test_ctrl_c_during_a_download_installs_nothing_and_the_next_pull_resumes(hub):
    import signal
    import subprocess
    import sys

    from tests.helpers import REPO as SOURCE_TREE
    from tests.helpers import poll

    hub["standin"].hold.add("model.safetensors")
    download = hub["store"] / "tiny-hub" / ".hub" / hub["manifest"].version
    argv = [sys.executable, "-m", "prontuario_cli", "models", "pull", "tiny-hub", "--from-hub", "--manifest", str(hub["path"]),
            "--store", str(hub["store"]), "--yes", "--json"]
    child = subprocess.Popen(argv, env={**os.environ, **hub["env"]}, cwd=str(SOURCE_TREE), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        poll(lambda: ("GET", f"/{REPO}/resolve/{COMMIT}/model.safetensors") in hub["standin"].requests
             and (download / "config.json").is_file() and (download / "tokenizer.json").is_file(), 60, "the other files downloaded")
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    assert child.returncode == ExitCode.INTERRUPTED, err
    assert "Traceback" not in err and not (hub["store"] / "tiny-hub" / "current").exists()
    hub["standin"].hold.clear()
    hub["standin"].release.set()
    hub["standin"].requests.clear()
    second = pull(hub)
    assert second.code == 0, second.err
    fetched = {path.rsplit("/", 1)[-1] for method, path in hub["standin"].requests if method == "GET" and "/resolve/" in path}
    assert fetched == {"model.safetensors"}, f"files already downloaded are not fetched again: {fetched}"
    audit = [line for line in Path(hub["env"]["PRONTUARIO_AUDIT_LOG"]).read_text().splitlines() if '"models pull"' in line]
    assert any("interrupted" in line for line in audit), audit


def test_the_hub_switched_off_on_the_node_is_refused_before_any_request(hub):
    done = pull(hub, env={"HF_HUB_OFFLINE": "1"})
    assert done.code == ExitCode.UNAVAILABLE and "HF_HUB_OFFLINE=1" in done.err and "--from-dir" in done.err
    assert hub["standin"].requests == [] and not hub["store"].exists()


def test_an_unreachable_hub_is_named_within_the_timeout(hub):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    started = time.monotonic()
    done = pull(hub, env={"HF_ENDPOINT": closed})
    assert done.code == ExitCode.UNAVAILABLE and "cannot reach the Hub at " + closed in done.err, done.err
    assert "Traceback" not in done.err and time.monotonic() - started < 60
    assert not (hub["store"] / "tiny-hub" / "current").exists()


def test_a_revision_the_hub_does_not_know_is_a_usage_error(hub, tmp_path):
    other = Manifest("tiny-hub", "llm", "mlx-lm", Source(hub=Hub(REPO, "0" * 40)), hub["manifest"].files)
    hub["path"].write_text(manifest_text(other))
    done = pull(hub)
    assert done.code == ExitCode.USAGE and "no revision " + "0" * 40 in done.err, done.err


def test_a_local_origin_manifest_and_a_muddled_command_are_refused_before_any_plan(hub, tmp_path):
    local = Manifest("tiny-hub", "llm", "mlx-lm", Source(origin="made here"), hub["manifest"].files)
    path = tmp_path / "local.yaml"
    path.write_text(manifest_text(local))
    done = run_process("models", "pull", "tiny-hub", "--from-hub", "--manifest", str(path), "--store", str(hub["store"]), "--dry-run", env=hub["env"])
    assert done.code == ExitCode.USAGE and "local origin" in done.err and "would copy" not in done.out
    both = run_process("models", "pull", "tiny-hub", "--from-hub", "--from-dir", str(hub["files"]), "--store", str(hub["store"]), "--yes", env=hub["env"])
    neither = run_process("models", "pull", "tiny-hub", "--store", str(hub["store"]), "--yes", env=hub["env"])
    for result in (both, neither):
        assert result.code == ExitCode.USAGE and "exactly one of --from-dir PATH (offline) or --from-hub" in result.err
    assert hub["standin"].requests == [] and not Path(hub["store"]).exists()
