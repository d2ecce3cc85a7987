"""serve status against a real server: directly (--url) and through each node over SSH, like `ollama ps`."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.helpers import run
from tests.serve.harness import free_port, install_model, start_server
from tests.serve.tiny_face import build_facenet

PRONTUARIO = str(Path(sys.executable).parent / "prontuario")


def test_serve_status_shows_a_ready_server_and_a_down_one_directly_and_over_ssh(sshd, tmp_path, servers):
    source = tmp_path / "facenet-src"
    build_facenet(source)
    store = tmp_path / "store"
    version = install_model(store, "facenet-tiny", "face", source)
    server = start_server("face", store, "facenet-tiny", tmp_path)
    servers.append(server)
    port = int(server.url.rsplit(":", 1)[1])
    closed = free_port()  # nothing listens there: a server that is down

    direct = run("serve", "status", "--url", server.url, "--url", f"http://127.0.0.1:{closed}", "--json")
    assert direct.code == 0, direct.err
    rows = direct.json()["servers"]
    assert [(r["state"], r["kind"], r["model"], r["version"]) for r in rows][0] == ("ready", "face", "facenet-tiny", version)
    assert rows[0]["rss_bytes"] > 0 and rows[0]["uptime_s"] >= 0 and rows[0]["queue_depth"] == 0
    assert rows[1]["state"] == "down" and rows[1]["status"] == "critical"

    ssh = f"{{port: {sshd['port']}, user: root, key: {sshd['key']}, known_hosts: {sshd['known_hosts']}, connect_timeout_s: 5}}"
    inventory = tmp_path / "cluster.yaml"
    inventory.write_text(f"""version: 1
nodes:
  - {{name: mac-studio-1, role: primary, address: 127.0.0.1, os: debian, ssh: {ssh}, ports: {{facenet: {port}, whisper: {closed}}}}}
  - {{name: mac-studio-2, role: secondary, address: 127.0.0.1, os: debian, ssh: {ssh}}}
  - {{name: witness, role: witness, address: 127.0.0.1, os: debian, ssh: {ssh}}}
models: {{prontuario: {PRONTUARIO}}}
""")
    over_ssh = run("-i", str(inventory), "serve", "status", "--json")
    assert over_ssh.code == 0, over_ssh.err
    found = {(r["node"], r["kind"]): r for r in over_ssh.json()["servers"]}
    assert found[("mac-studio-1", "face")]["state"] == "ready" and found[("mac-studio-1", "face")]["version"] == version
    assert found[("mac-studio-1", "stt")]["state"] == "down"
    table = run("-i", str(inventory), "serve", "status", "--format", "table")
    assert "facenet-tiny" in table.out and "ready" in table.out
