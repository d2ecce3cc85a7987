"""``models sync``: one Mac's verified version to the other, the bytes going Mac to Mac with rsync.

prontuario orchestrates over its own SSH connections (paramiko, through the node-access
seam); the model's bytes never pass through the operator's machine:

1. the source's rsync is checked (3.1 or later; macOS's openrsync is refused) and the
   source verifies its active version, which must be the manifest's; meanwhile the
   target's ``prontuario models receive`` starts and waits on its stdin: it goes on only
   once the source verified (``go``), and ends without a change otherwise;
2. the receive checks the target's own rsync the same way;
   when the version is already there and verifies it only makes it active (nothing
   moves); otherwise it pulls the version with rsync over SSH from the source (host key
   checked against ``models.peer_ssh.known_hosts``), reusing what it already holds
   intact, verifies, and switches ``current``.

Every command to a node rides one SSH connection per node (``connect.ssh``).

A second run after an interruption continues from what the first left in staging.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from prontuario_cli.errors import IntegrityError, UsageError
from prontuario_cli.inventory import Inventory, Node
from prontuario_cli.models.nodes import manifest_file, manifest_named, remote, store_of
from prontuario_cli.report import Table


@dataclass(frozen=True)
class SyncReport:
    name: str
    version: str
    source: str
    target: str
    rsync: dict
    target_previous: str | None
    files: int
    bytes: int
    reused_files: int
    repaired_files: int
    received_bytes: int
    literal_bytes: int
    seconds: float
    message: str

    def tables(self) -> list[Table]:
        rows = (
            ("model", f"{self.name} {self.version}"),
            ("from → to", f"{self.source} → {self.target}"),
            ("files", f"{self.files} ({self.reused_files} reused, {self.repaired_files} repaired)"),
            ("over the network", f"{self.received_bytes} bytes ({self.literal_bytes} of file data) of {self.bytes}"),
            ("took", f"{self.seconds:.2f} s"),
            ("rsync", ", ".join(f"{k} {v}" for k, v in self.rsync.items())),
        )
        return [Table("", ("", ""), rows)]


def plan(inventory: Inventory, name: str, source: Node, target: Node) -> list[str]:
    manifest = manifest_named(inventory, name)
    return [
        f"check rsync (≥ 3.1, not openrsync) on {source.name} and {target.name}",
        f"verify {name} {manifest.version} on {source.name} (its active version must be the manifest's)",
        f"on {target.name}: rsync from {source.name}:{store_of(inventory, source)}/{name}/{manifest.version}/ into staging "
        "(files already here intact are reused, damaged ones sent as deltas), verify, make it active",
    ]


def sync(inventory: Inventory, name: str, source: Node, target: Node, *, accept_new: bool = False, say: Callable[[str], None] | None = None) -> SyncReport:
    from prontuario_cli.cluster.nodes import Gate, node_access
    from prontuario_cli.connect.rsync import check_rsync

    say = say or (lambda text: None)
    if source.name == target.name:
        raise UsageError("--from and --to name the same node")
    manifest = manifest_named(inventory, name)
    access = node_access(inventory)

    # At once: the source's rsync and verified version, and the receive on the target,
    # started now but held at its first line until the source verified (its start-up
    # overlaps the source's answer; nothing on the target moves before the gate opens).
    def rsync_on(node: Node) -> str:
        result = access.run(node.name, [inventory.models.rsync, "--version"], timeout_s=30)
        return check_rsync(result.stdout + result.stderr, f"{node.name}: {inventory.models.rsync}")

    peer = inventory.models.peer_ssh
    args = [
        "receive", name, "--manifest", str(manifest_file(inventory, name)),
        "--from-host", source.address, "--from-port", str(source.ssh.port), "--from-user", peer.user or source.ssh.user,
        "--from-path", f"{store_of(inventory, source)}/{name}/{manifest.version}",
        "--key", peer.key, "--known-hosts", peer.known_hosts, "--rsync", inventory.models.rsync, "--timeout", str(inventory.models.timeout_s),
        "--wait-go", "--yes",
    ] + (["--accept-new"] if accept_new else [])  # fmt: skip
    gate = Gate()
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="sync") as pool:
        receiving = pool.submit(remote, inventory, target, args, gate=gate)
        try:
            looks = {"rsync": pool.submit(rsync_on, source), "source": pool.submit(remote, inventory, source, ["verify", name])}
            source_rsync = looks["rsync"].result()
            checked = looks["source"].result()
            _source_verified(checked, name, manifest.version, source)
        except BaseException:
            gate.stop()  # the receive ends without touching the target's store
            raise
        say(f"rsync {source_rsync} on {source.name}; {source.name}: {name} {manifest.version} verified")
        gate.go()
        answer = receiving.result()
    if answer["_exit"] != 0 or "version" not in answer:
        message = answer.get("message") or "no answer"
        raise IntegrityError(f"{target.name}: receiving {name} failed: {message}")
    versions = {source.name: source_rsync, target.name: answer.get("rsync") or "?"}
    return SyncReport(
        name, manifest.version, source.name, target.name, versions, answer.get("previous"), int(answer["files"]), int(answer["bytes"]),
        int(answer["reused_files"]), int(answer["repaired_files"]), int(answer["received_bytes"]), int(answer["literal_bytes"]),
        float(answer["seconds"]), answer.get("message", ""),
    )


def _source_verified(checked: dict, name: str, version: str, source: Node) -> None:
    """Refuse a source whose active version does not verify or is not the manifest's."""
    check = next((c for c in checked.get("checks") or () if c.get("name") == name), None)
    if check is None or check.get("status") != "ok":
        why = (check or {}).get("note") or "not verified"
        raise IntegrityError(f"{source.name}: {name} does not verify there ({why}): it cannot be the source", hint=f"prontuario models verify {name} --node {source.name}")
    if check.get("version") != version:
        raise IntegrityError(
            f"{source.name}: the active version of {name} is {check.get('version')}, the manifest's is {version}",
            hint=f"activate {version} there first, or lock the manifest again",
        )
