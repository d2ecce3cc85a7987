"""The SSH path of drills against real nodes: a real sshd on loopback, host keys verified."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from prontuario_cli.errors import ExitCode, PermissionProblem
from prontuario_cli.inventory import SSH, Node
from tests.sshd import keygen


def node(sshd, **ssh_changes) -> Node:
    ssh = SSH(port=sshd["port"], user="root", key=str(sshd["key"]), known_hosts=str(sshd["known_hosts"]), connect_timeout_s=5)
    return Node(name="mac-studio-1", role="primary", address="127.0.0.1", os="debian", ssh=dataclasses.replace(ssh, **ssh_changes))


def test_a_verified_host_runs_a_command(sshd):
    from prontuario_cli.connect.ssh import run_command

    result = run_command(node(sshd), "echo hello; echo oops >&2; exit 3", timeout_s=20)
    assert (result.exit_status, result.stdout.strip(), result.stderr.strip()) == (3, "hello", "oops")


def test_a_changed_host_key_is_refused_loudly(sshd, tmp_path):
    from prontuario_cli.connect.ssh import HostKeyMismatch, run_command

    impostor = keygen(tmp_path / "impostor")
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd['port']} {impostor}\n")
    with pytest.raises(HostKeyMismatch) as caught:
        run_command(node(sshd, known_hosts=str(wrong)), "echo never", timeout_s=20)
    assert "HOST KEY MISMATCH" in caught.value.message and caught.value.exit_code == ExitCode.PERMISSION


def test_an_unknown_host_is_refused(sshd, tmp_path):
    from prontuario_cli.connect.ssh import run_command

    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(PermissionProblem) as caught:
        run_command(node(sshd, known_hosts=str(empty)), "echo never", timeout_s=20)
    assert "host key unknown" in caught.value.message


def test_a_command_that_hangs_is_bounded(sshd):
    from prontuario_cli.connect import TimedOut
    from prontuario_cli.connect.ssh import run_command

    started = time.monotonic()
    with pytest.raises(TimedOut):
        run_command(node(sshd), "sleep 30", timeout_s=1.5)
    assert time.monotonic() - started < 10


def test_commands_to_one_node_share_one_connection_and_a_dead_one_is_opened_again(sshd):
    """One key exchange per node per process; a dropped connection is replaced before the next command runs."""
    from prontuario_cli.connect.ssh import close_pool, pooled, run_command

    close_pool()
    target = node(sshd)
    first = run_command(target, "echo $SSH_CONNECTION", timeout_s=20).stdout.split()
    second = run_command(target, "echo $SSH_CONNECTION", timeout_s=20).stdout.split()
    assert first and first == second, "the second command must ride the first one's connection (same client port)"
    pooled(target).get_transport().close()  # the link drops (a node rebooted, a switch flapped)
    third = run_command(target, "echo $SSH_CONNECTION; exit 4", timeout_s=20)
    assert third.exit_status == 4 and third.stdout.split()[1] != first[1], "a new connection, from a new client port"
    close_pool()


def test_a_reconnection_verifies_the_host_key_again(sshd, tmp_path):
    """A pooled connection that died is never trusted blindly: the new one is checked against known_hosts."""
    from prontuario_cli.connect.ssh import HostKeyMismatch, close_pool, pooled, run_command

    close_pool()
    known = tmp_path / "known_hosts"
    known.write_text(Path(sshd["known_hosts"]).read_text())
    target = node(sshd, known_hosts=str(known))
    assert run_command(target, "true", timeout_s=20).exit_status == 0
    known.write_text(f"[127.0.0.1]:{sshd['port']} {keygen(tmp_path / 'impostor')}\n")  # as if the node came back as another host
    pooled(target).get_transport().close()
    with pytest.raises(HostKeyMismatch):
        run_command(target, "echo never", timeout_s=20)
    close_pool()


def ssh_inventory(sshd):
    """An inventory with one node reached through the test sshd."""
    from prontuario_cli.inventory import parse_inventory

    return parse_inventory(
        f"""
nodes:
  - name: mac-studio-1
    role: primary
    address: 127.0.0.1
    os: debian
    ssh: {{port: {sshd['port']}, user: root, key: {sshd['key']}, known_hosts: {sshd['known_hosts']}}}
""",
        "ssh-test.yaml",
    )


def test_drill_actions_run_the_playbook_over_ssh(sshd, tmp_path):
    """The same NodeActions a drill uses, against a 'real' node: the playbook's command runs there."""
    import yaml

    from prontuario_cli.cluster.nodes import ACTIONS, SERVICES
    from prontuario_cli.cluster.nodes import SSHNodes as SSHActions

    marker = tmp_path / "acted"
    playbook = {
        os_name: {service: {action: f"echo {os_name}-{service}-{action} >> {marker}; echo done-{action}" for action in ACTIONS} for service in SERVICES}
        for os_name in ("macos", "debian")
    }
    playbook_path = tmp_path / "node-actions.yaml"
    playbook_path.write_text(yaml.safe_dump(playbook))
    inventory = ssh_inventory(sshd)
    actions = SSHActions(inventory, playbook_path)
    assert actions.act("mac-studio-1", "postgres", "kill") == "done-kill"
    assert actions.act("mac-studio-1", "redis", "start") == "done-start"
    assert marker.read_text().split() == ["debian-postgres-kill", "debian-redis-start"]


def test_the_shipped_playbook_is_complete():
    from prontuario_cli.cluster.nodes import default_playbook, load_playbook

    playbook = load_playbook(default_playbook())
    assert "launchctl" in playbook["macos"]["postgres"]["kill"] and "systemctl" in playbook["debian"]["postgres"]["start"]
    assert default_playbook().resolve() == (Path(__file__).resolve().parent.parent / "playbooks" / "node-actions.yaml").resolve()


def test_an_incomplete_playbook_names_what_is_missing(tmp_path):
    from prontuario_cli.cluster.nodes import load_playbook
    from prontuario_cli.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text("macos: {postgres: {kill: 'x'}}\n")
    with pytest.raises(ConfigError) as caught:
        load_playbook(path)
    assert any("macos.postgres.stop: missing command" in p for p in caught.value.problems)


def test_node_access_runs_a_command_over_ssh_with_streamed_output(sshd):
    """The seam model sync and remote verify will drive: lines arrive as the command prints them."""
    from prontuario_cli.cluster.nodes import SSHNodes

    inventory = ssh_inventory(sshd)
    seen: list[tuple[str, str, float]] = []
    started = time.monotonic()
    result = SSHNodes(inventory).run(
        "mac-studio-1", ["sh", "-c", "echo one; sleep 1; echo two; echo oops >&2; exit 3"], timeout_s=20,
        on_output=lambda stream, line: seen.append((stream, line, time.monotonic() - started)),
    )
    assert result.exit_status == 3
    assert [(s, line) for s, line, _ in seen if s == "stdout"] == [("stdout", "one"), ("stdout", "two")]
    assert ("stderr", "oops") in [(s, line) for s, line, _ in seen]
    first, second = seen[0][2], next(t for s, line, t in seen if line == "two")
    assert second - first >= 0.8, "the first line must arrive before the command ends"
    assert result.stdout.split() == ["one", "two"]
