"""``bootstrap run`` against a real sshd on loopback: two nodes in parallel, twice, check mode, failures, host keys.

The playbook used here has every operation kind that can run on this machine (Debian,
no systemd as PID 1; the macOS operations are tested against recorded output in
test_macos_ops.py), rooted under a scratch tree with --prefix.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from prontuario_cli.errors import ExitCode
from tests.helpers import run
from tests.sshd import keygen

PLAYBOOK = """format: 1
name: test-node
os: debian
steps:
  - name: packages
    op: apt.packages
    args: {packages: [rsync, openssh-client]}
  - name: etc directory
    op: directory
    args: {path: "${prefix}/etc/prontuario", mode: "750"}
  - name: motd
    op: file
    args: {path: "${prefix}/etc/prontuario/motd", content: "${node} is a ${role} (${address})\\n", mode: "640"}
  - name: hosts line
    op: line
    args: {path: "${prefix}/etc/hosts", line: "127.0.0.1 ${node}"}
  - name: peer key
    op: ssh.key
    args: {path: "${prefix}/keys/id_ed25519"}
    roles: [primary, secondary]
  - name: one-time setup
    op: command
    args: {run: "date -u > ${prefix}/initialised", creates: "${prefix}/initialised"}
  - name: python environment
    op: venv
    args: {path: "${prefix}/venv"}
    roles: [witness]
  - name: rendered
    op: rendered
    args: {inventory: "${prefix}/cluster.yaml"}
  - name: a service user (left alone in a rehearsal)
    op: user
    args: {name: prontuario-never, home: /nonexistent}
"""


@pytest.fixture
def site(sshd, tmp_path, monkeypatch):
    """An inventory of a Mac and the witness, both reached through the test sshd; the playbooks dir."""
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "debian-node.yaml").write_text(PLAYBOOK)
    inventory = tmp_path / "cluster.yaml"
    inventory.write_text(inventory_text(sshd["port"], sshd["key"], sshd["known_hosts"]))
    monkeypatch.setenv("PRONTUARIO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PRONTUARIO_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    return {"inventory": inventory, "books": books, "tree": tmp_path / "tree", "tmp": tmp_path, "sshd": sshd}


def inventory_text(port: int, key, known_hosts) -> str:
    """The production example inventory; mac-studio-1 and the witness are Debian nodes behind the test sshd.

    Each node's prontuario paths are its own (the renderers' production paths under a
    per-node --prefix would collide: both "nodes" are this machine), so the rendered
    files land in one tree per run and the test names the node it looks at.
    """
    import yaml

    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "prontuario_cli" / "example_cluster.yaml").read_text())
    for node in data["nodes"]:
        node["ssh"] = {"port": port, "user": "root", "key": str(key), "known_hosts": str(known_hosts), "connect_timeout_s": 5}
        if node["name"] in ("mac-studio-1", "witness"):
            node.update(address="127.0.0.1", os="debian")
        if node["name"] == "witness":  # one address for both: ports of its own
            node["ports"] = {name: port + 100 for name, port in node["ports"].items()}
    return yaml.safe_dump(data, sort_keys=False)


def bootstrap(site, *args: str, inventory: Path | None = None):
    nodes = [a for a in args if not a.startswith("-")] or ["mac-studio-1", "witness"]
    options = [a for a in args if a.startswith("-")]
    return run("-i", str(inventory or site["inventory"]), "bootstrap", "run", *nodes, "--playbooks", str(site["books"]), "--prefix", str(site["tree"]) + "/{node}", *options)


def tree_hash(root: Path) -> str:
    """Every path, mode and content under root (an absent root hashes as such)."""
    digest = hashlib.sha256()
    if not root.exists():
        return "absent"
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest.update(f"{path.relative_to(root)}:{st.st_mode:o}\n".encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def hosts(result) -> dict[str, dict]:
    return {h["node"]: h for h in json.loads(result.out)["hosts"]}


def test_check_shows_what_would_change_and_changes_nothing(site):
    site["tree"].mkdir()
    before = tree_hash(site["tree"])
    checked = bootstrap(site, "--check", "--json")
    assert checked.code == 0, checked.err
    seen = hosts(checked)
    assert "motd" in seen["mac-studio-1"]["changes"] and "peer key" in seen["mac-studio-1"]["changes"]
    assert "python environment" in seen["witness"]["changes"] and "peer key" not in seen["witness"]["changes"]
    assert "packages" not in seen["mac-studio-1"]["changes"], "rsync and the ssh client are installed: nothing to do"
    assert tree_hash(site["tree"]) == before
    audit = [json.loads(line) for line in Path(os.environ["PRONTUARIO_AUDIT_LOG"]).read_text().splitlines()]
    assert any(e.get("command") == "bootstrap run" and e.get("outcome") == "dry-run" for e in audit), audit


def test_a_run_applies_everything_and_a_second_run_changes_nothing(site):
    first = bootstrap(site, "--yes", "--json")
    assert first.code == 0, first.err
    done = hosts(first)
    assert done["mac-studio-1"]["changed"] >= 5 and done["witness"]["changed"] >= 4
    node = site["tree"] / "mac-studio-1"
    assert (node / "etc/prontuario/motd").read_text() == "mac-studio-1 is a primary (127.0.0.1)\n"
    assert oct((node / "etc/prontuario").stat().st_mode & 0o777) == "0o750" and oct((node / "etc/prontuario/motd").stat().st_mode & 0o777) == "0o640"
    assert (node / "keys/id_ed25519.pub").read_text().startswith("ssh-ed25519 ") and not (site["tree"] / "witness/keys").exists()
    assert (site["tree"] / "witness/venv/bin/python").exists()
    rendered = node
    assert "scope: prontuario" in (rendered / "etc/prontuario/patroni.yml").read_text()
    assert "enable-grpc-gateway: true" in (rendered / "etc/prontuario/etcd.yml").read_text()
    assert "OnUnitActiveSec=5s" in (rendered / "etc/systemd/system/prontuario-docs-sync.timer").read_text()
    assert (rendered / "etc/systemd/system/prontuario-serve-llm.service").exists()
    assert not (site["tree"] / "witness/etc/prontuario/patroni.yml").exists(), "the witness runs only etcd and a Sentinel"
    assert (site["tree"] / "witness/etc/prontuario/etcd.yml").exists()
    assert (node / "cluster.yaml").read_text() == site["inventory"].read_text() and oct((node / "cluster.yaml").stat().st_mode & 0o777) == "0o600"
    after_first = tree_hash(site["tree"])

    second = bootstrap(site, "--yes", "--json")
    assert second.code == 0, second.err
    assert {n: (h["changed"], h["failed"]) for n, h in hosts(second).items()} == {"mac-studio-1": (0, 0), "witness": (0, 0)}
    assert tree_hash(site["tree"]) == after_first, "a second run must not touch anything"
    audit = [json.loads(line)["command"] for line in Path(os.environ["PRONTUARIO_AUDIT_LOG"]).read_text().splitlines()]
    assert "bootstrap run: look" in audit and "bootstrap run: apply" in audit

    motd = node / "etc/prontuario/motd"
    motd.write_text("edited by hand\n")
    edited = tree_hash(site["tree"])
    diff = bootstrap(site, "--check", "--diff", "--json")
    assert diff.code == 0 and hosts(diff)["mac-studio-1"]["changes"] == ["motd"], diff.out
    assert f"Will modify {motd}" in diff.err and "- edited by hand" in diff.err and "+ mac-studio-1 is a primary (127.0.0.1)" in diff.err
    assert tree_hash(site["tree"]) == edited, "--check --diff changes nothing"


def test_a_failing_step_stops_its_host_and_says_step_command_exit_code_and_output(site):
    (site["books"] / "debian-node.yaml").write_text(PLAYBOOK + """  - name: breaks
    op: command
    args: {run: "echo 'disk is read-only' >&2; exit 7", creates: "${prefix}/never"}
    roles: [primary]
  - name: after the failure
    op: directory
    args: {path: "${prefix}/after"}
""")
    result = bootstrap(site, "--yes", "--json")
    assert result.code == ExitCode.FAILED, result.err
    failed = hosts(result)["mac-studio-1"]
    assert failed["failure"]["step"] == "breaks" and failed["failure"]["exit_code"] == 7
    assert "exit 7" in failed["failure"]["command"] and "disk is read-only" in failed["failure"]["output"]
    assert not (site["tree"] / "mac-studio-1/after").exists(), "a failing step stops its host"
    assert (site["tree"] / "witness/after").is_dir() and hosts(result)["witness"]["failed"] == 0, "the other host goes on"
    assert "step 'breaks'" in result.err and "exited 7" in result.err and "Traceback" not in result.err


def test_a_changed_host_key_is_refused_and_nothing_changes(site):
    known = site["tmp"] / "known_hosts"
    known.write_text(f"[127.0.0.1]:{site['sshd']['port']} {keygen(site['tmp'] / 'impostor')}\n")
    text = site["inventory"].read_text().replace(str(site["sshd"]["known_hosts"]), str(known))
    inventory = site["tmp"] / "impostor.yaml"
    inventory.write_text(text)
    result = bootstrap(site, "--yes", "--json", inventory=inventory)
    assert result.code == ExitCode.PERMISSION, result.err
    assert "HOST KEY MISMATCH" in result.err and "nothing was changed" in result.err
    assert not site["tree"].exists()
    checked = bootstrap(site, "--check", "--json", inventory=inventory)
    assert checked.code == ExitCode.PERMISSION and all("HOST KEY MISMATCH" in h["unreachable"] for h in hosts(checked).values())


def test_an_unknown_host_is_refused_unless_accept_new_is_asked(site):
    known = site["tmp"] / "empty_known_hosts"
    known.write_text("")
    inventory = site["tmp"] / "unknown.yaml"
    inventory.write_text(site["inventory"].read_text().replace(str(site["sshd"]["known_hosts"]), str(known)))
    refused = bootstrap(site, "--check", "--json", inventory=inventory)
    assert refused.code == ExitCode.PERMISSION and "host key unknown" in refused.out
    accepted = bootstrap(site, "--check", "--json", "--accept-new", inventory=inventory)
    assert accepted.code == 0, accepted.err
    assert f"[127.0.0.1]:{site['sshd']['port']}" in known.read_text(), "accept-new records the key it trusted"


def test_a_malformed_playbook_is_refused_before_any_connection(site):
    (site["books"] / "debian-node.yaml").write_text(PLAYBOOK.replace("op: line", "op: lines"))
    result = bootstrap(site, "--check")
    assert result.code == ExitCode.CONFIG
    assert "debian-node.yaml:15: steps[3].op: unknown operation 'lines' (did you mean 'line'?)" in result.err
    assert "Traceback" not in result.err and not site["tree"].exists()


def test_facts_show_what_pyinfra_sees_over_the_same_connection(site):
    result = run("-i", str(site["inventory"]), "bootstrap", "facts", "mac-studio-1", "--json")
    assert result.code == 0, result.err
    facts = json.loads(result.out)["facts"]
    assert facts["os"] == "Linux" and facts["user"] == "root" and facts["rsync"].endswith("/rsync")
    assert facts["brew"] is None and "pmset" not in facts  # a Mac's facts only on a Mac
    wrong = site["tmp"] / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{site['sshd']['port']} {keygen(site['tmp'] / 'other')}\n")
    inventory = site["tmp"] / "wrong.yaml"
    inventory.write_text(site["inventory"].read_text().replace(str(site["sshd"]["known_hosts"]), str(wrong)))
    refused = run("-i", str(inventory), "bootstrap", "facts", "mac-studio-1")
    assert refused.code == ExitCode.PERMISSION and "HOST KEY MISMATCH" in refused.err


def test_the_shipped_debian_playbook_sets_up_the_witness_and_a_second_run_changes_nothing(site):
    """playbooks/debian-node.yaml itself, on the witness, as a rehearsal under --prefix (no systemd here)."""
    shipped = Path(__file__).resolve().parents[2] / "playbooks"

    def apply(*options: str):
        return run("-i", str(site["inventory"]), "bootstrap", "run", "witness", "--playbooks", str(shipped),
                   "--prefix", str(site["tree"]) + "/{node}", *options)

    first = apply("--yes", "--json")
    assert first.code == 0, first.err
    assert hosts(first)["witness"]["changed"] >= 3
    root = site["tree"] / "witness"
    assert "enable-grpc-gateway: true" in (root / "etc/prontuario/etcd.yml").read_text()
    assert (root / "var/lib/prontuario/sentinel/sentinel.conf").exists() and (root / "etc/systemd/system/prontuario-sentinel.service").exists()
    assert not (root / "etc/prontuario/patroni.yml").exists() and not (root / "etc/systemd/system/prontuario-docs-sync.timer").exists()
    settled = tree_hash(site["tree"])
    second = apply("--yes", "--json")
    assert second.code == 0 and hosts(second)["witness"]["changed"] == 0, second.out
    assert tree_hash(site["tree"]) == settled
