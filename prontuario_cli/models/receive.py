"""The receiving Mac's half of a sync: pull a version from the other Mac with rsync, verify, activate.

Runs on the target node (``prontuario models receive``, started there by ``models sync``).

0. This node's rsync is checked (3.1 or later, not openrsync: ``connect/rsync.py``).
1. If the version is already here and verifies: activate it; nothing moves.
2. Stage ``NAME/.staging/VERSION/`` (kept across runs: an interrupted sync resumes). Every
   file this node already holds in a version that verifies, with the same sha256, is
   hard-linked in (it costs nothing); a file that failed verification is copied in with
   an old mtime, so that rsync's quick check (size + mtime) cannot take it for current and
   its delta transfer sends only the blocks that differ.
3. ``rsync -a --delete --partial-dir`` from the source's version directory over SSH (host
   key checked against known_hosts; the source's rsync given by ``--rsync-path``): rsync
   writes each file to a temporary name and renames it once its own checksum matched.
4. Verify the staged version against the manifest, put it in place, switch ``current``.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from prontuario_cli.connect.rsync import check_rsync, host_key_refused, ssh_transport
from prontuario_cli.connect.rsync import stat_number as _stat_number
from prontuario_cli.errors import IntegrityError, OperationFailed
from prontuario_cli.models.manifest import Manifest
from prontuario_cli.models.store import Store
from prontuario_cli.models.verify import verify_directory

PARTIAL_DIR = ".rsync-partial"
OLD_MTIME = 1  # a basis copy's mtime: never equal to the source's


@dataclass(frozen=True)
class Peer:
    """Where the source version is and how to reach it over SSH (from the target)."""

    user: str
    host: str
    port: int
    path: str  # the source's version directory
    key: str
    known_hosts: str
    rsync: str = "rsync"  # on the source
    accept_new: bool = False

    def ssh_command(self) -> str:
        return ssh_transport(self.key, self.port, self.known_hosts, accept_new=self.accept_new)


@dataclass(frozen=True)
class Received:
    """What a receive did (the JSON ``models sync`` reads back)."""

    name: str
    version: str
    previous: str | None
    files: int
    bytes: int
    reused_files: int  # hard-linked from a version this node already had
    repaired_files: int  # damaged here, sent as a delta
    received_bytes: int  # what came over the network (rsync's "Total bytes received")
    literal_bytes: int  # file data sent as is (the rest matched blocks already here)
    seconds: float
    rsync_seconds: float
    message: str
    rsync: str = ""  # this node's rsync version


DONE_MARK = "prontuario-received: "


class EarlyHash:
    """Hash each file while rsync moves the next one (the receiver names a file once it is in place).

    A file's hash is remembered in the stat cache only when the file did not change while
    it was read (same inode, size, mtime and ctime before and after) and matches the
    manifest: the staging verify then skips it. Anything else is simply hashed again there.
    """

    def __init__(self, staging: Path, manifest: Manifest, cache):
        from concurrent.futures import ThreadPoolExecutor

        self.staging = staging
        self.expected = {f.path: f.sha256 for f in manifest.files}
        self.cache = cache
        self.pool = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1), thread_name_prefix="early-sha256")

    def __enter__(self) -> "EarlyHash":
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True, cancel_futures=exc[0] is not None)

    def line(self, stream: str, text: str) -> None:
        if stream == "stdout" and text.startswith(DONE_MARK):
            path = text[len(DONE_MARK):]
            if path in self.expected:
                self.pool.submit(self._hash, path)

    def _hash(self, path: str) -> None:
        from prontuario_cli.models.verify import sha256_file

        target = self.staging / path
        try:
            before = os.lstat(target)
            digest, _ = sha256_file(target)
            after = os.lstat(target)
        except OSError:
            return
        same = (before.st_ino, before.st_size, before.st_mtime_ns, before.st_ctime_ns) == (after.st_ino, after.st_size, after.st_mtime_ns, after.st_ctime_ns)
        if same and digest == self.expected[path]:
            self.cache.remember(path, after, digest)


def receive(store: Store, manifest: Manifest, peer: Peer, *, rsync: str = "rsync", timeout_s: float = 3600.0, say=None) -> Received:
    from prontuario_cli.cluster.nodes import run_local

    started = time.monotonic()
    name, version = manifest.name, manifest.version
    say = say or (lambda text: None)
    here = run_local([rsync, "--version"], timeout_s=30, where=f"{rsync} --version")
    rsync_here = check_rsync(here.stdout + here.stderr, f"this node: {rsync}")
    with store.locked(name, f"models receive {name} {version}"):
        store.write_manifest(manifest)
        old = store.pointer(name)
        if version in store.versions(name) and version not in store.quarantined(name):
            verdict = store.verify(name, version)
            if verdict.ok:
                store.activate(name, version)
                return Received(name, version, old, verdict.files, verdict.bytes, verdict.files, 0, 0, 0,
                                round(time.monotonic() - started, 3), 0.0, f"{name} {version} already here and verified: nothing moved", rsync_here)
        staging = store.staging_dir(name, version)
        staging.mkdir(parents=True, exist_ok=True)
        cache = store.cache(name, version)
        reused, repaired = _seed_staging(store, manifest, staging, cache)
        argv = [
            rsync, "-a", "--delete", f"--partial-dir={PARTIAL_DIR}", "--stats", "--no-human-readable", f"--out-format={DONE_MARK}%n",
            "-e", peer.ssh_command(), f"--rsync-path={peer.rsync}",
            f"{peer.user}@{peer.host}:{peer.path.rstrip('/')}/", f"{staging}/",
        ]  # fmt: skip
        say(f"rsync from {peer.host}:{peer.port} {peer.path} ({reused} files reused, {repaired} to repair)")
        t0 = time.monotonic()
        with EarlyHash(staging, manifest, cache) as early:
            result = run_local(argv, timeout_s=timeout_s, where=f"rsync from {peer.host}", on_output=early.line)
        rsync_s = time.monotonic() - t0
        if result.exit_status != 0:
            tail = " | ".join(result.stderr.strip().splitlines()[-3:])[:400]
            if host_key_refused(result.stderr):
                raise IntegrityError(f"rsync from {peer.host}:{peer.port}: the host key does not match {peer.known_hosts}: refused", hint="check the host; never just delete the line")
            raise OperationFailed(f"rsync from {peer.host}:{peer.port} exited {result.exit_status}: {tail}", hint="run the sync again: it resumes where it stopped")
        received = _stat_number(result.stdout, "Total bytes received")
        literal = _stat_number(result.stdout, "Literal data")
        shutil.rmtree(staging / PARTIAL_DIR, ignore_errors=True)
        verdict = verify_directory(staging, manifest, cache=cache)
        if not verdict.ok:
            listed = "; ".join(f"{p.path}: {p.kind}" for p in verdict.problems[:5])
            raise IntegrityError(f"{name} {version} copied from {peer.host} does not verify here: {listed}", hint="verify the source: prontuario models verify --node SOURCE")
        store.save_cache(name, version, cache)  # a rename keeps inodes and ctimes: activate's verify hits it
        _replace_version(store, name, version)
        store.release(name, version)
        store.activate(name, version)
    return Received(name, version, old, len(manifest.files), manifest.total_bytes, reused, repaired, received, literal,
                    round(time.monotonic() - started, 3), round(rsync_s, 3),
                    f"{name} {version} received from {peer.host}, verified and active ({received} bytes over the network)", rsync_here)


def _seed_staging(store: Store, manifest: Manifest, staging: Path, cache) -> tuple[int, int]:
    """Hard-link the files this node already holds intact; copy damaged ones in as delta bases.

    A hard link shares the verified file's inode (the same bytes), but link() changes its
    ctime: the staged copy's cache entry is written again here, under the store lock, so
    the staging verify hashes only what rsync wrote.
    """
    name = manifest.name
    reused = repaired = 0
    good: dict[str, Path] = {}  # sha256 -> a verified file here
    damaged: dict[str, Path] = {}  # manifest path -> this node's damaged copy
    for version in store.versions(name):
        try:
            theirs = store.manifest(name, version)
        except IntegrityError:
            continue
        directory = store.version_dir(name, version)
        seen = store.cache(name, version)
        verdict = verify_directory(directory, theirs, cache=seen)
        store.save_cache(name, version, seen)
        bad = {p.path for p in verdict.problems}
        for f in theirs.files:
            path = directory / f.path
            if f.path not in bad:
                good.setdefault(f.sha256, path)
            elif path.is_file() and not path.is_symlink():
                damaged.setdefault(f.path, path)
    for f in manifest.files:
        target = staging / f.path
        if target.exists() or target.is_symlink():
            continue  # from an earlier, interrupted run: rsync compares it
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.sha256 in good:
            try:
                os.link(good[f.sha256], target)
                cache.remember(f.path, os.lstat(target), f.sha256)
            except OSError:
                shutil.copy2(good[f.sha256], target)  # another file system: a copy, hashed by the staging verify
            reused += 1
        elif f.path in damaged:
            shutil.copyfile(damaged[f.path], target)
            os.utime(target, (OLD_MTIME, OLD_MTIME))  # never mistaken for current by the quick check
            repaired += 1
    return reused, repaired


def _replace_version(store: Store, name: str, version: str) -> None:
    """Put the verified staged version in place; a damaged copy of it moves aside first."""
    final = store.version_dir(name, version)
    if final.exists():
        aside = store.model_dir(name) / ".damaged" / f"{version}.{int(time.time())}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        os.replace(final, aside)
        store.promote_staged(name, version)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        store.promote_staged(name, version)
