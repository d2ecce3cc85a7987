"""What runs on the node that holds the store: lock, pull, verify, activate, rollback, status.

Every function here works on a :class:`~prontuario_cli.models.store.Store` on this
machine. The operator's commands reach a Mac's store by running the same command there
(``prontuario models verify --store DIR --json``) through the node-access seam; this
module never opens a connection.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from prontuario_cli.errors import ExitCode, IntegrityError, OperationFailed, UsageError
from prontuario_cli.models.manifest import Manifest, ModelFile
from prontuario_cli.models.store import Store
from prontuario_cli.models.verify import CHUNK, FileProblem, Verdict, describe
from prontuario_cli.report import Nagios, Perf, Status, Table, human_bytes

Progress = Callable[[int], None]


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class ModelCheck:
    """One model on one node, as a verification found it."""

    node: str
    name: str
    version: str | None  # the active version (None: nothing active)
    status: Status
    files: int = 0
    bytes: int = 0
    hashed_bytes: int = 0
    cached_files: int = 0
    seconds: float = 0.0
    problems: tuple[FileProblem, ...] = ()
    note: str = ""

    @staticmethod
    def of(node: str, verdict: Verdict) -> "ModelCheck":
        status = Status.OK if verdict.ok else Status.CRITICAL
        note = "" if verdict.ok else f"{describe(verdict.problems)}: quarantined"
        return ModelCheck(node, verdict.name, verdict.version, status, verdict.files, verdict.bytes, verdict.hashed_bytes,
                          verdict.cached_files, verdict.seconds, verdict.problems, note)


@dataclass(frozen=True)
class VerifyReport:
    checks: tuple[ModelCheck, ...]
    deep: bool = False

    @property
    def status(self) -> Status:
        return Status.worst([c.status for c in self.checks]) if self.checks else Status.UNKNOWN

    def exit_code(self) -> ExitCode:
        """0 every model verified; 65 damage found (quarantined); 3 something could not be checked."""
        if any(c.problems for c in self.checks):
            return ExitCode.INTEGRITY
        return ExitCode(int(self.status)) if self.status != Status.OK else ExitCode.OK

    def nagios(self) -> Nagios:
        bad = [c for c in self.checks if c.status != Status.OK]
        if not self.checks:
            text = "no models to verify"
        elif bad:
            text = "; ".join(f"{c.node + ': ' if c.node else ''}{c.name} {c.version or '-'}: {c.note}" for c in bad)
        else:
            text = f"{len(self.checks)} models verified ({human_bytes(sum(c.bytes for c in self.checks))})"
        perf = (Perf("models_bad", len(bad), "", crit=0, min=0, max=len(self.checks)),
                Perf("hashed_bytes", sum(c.hashed_bytes for c in self.checks), "B", min=0))
        return Nagios(self.status, text, perf)

    def tables(self) -> list[Table]:
        rows = tuple(
            (c.node or "here", c.name, c.version or "-", c.status, c.files, human_bytes(c.bytes), human_bytes(c.hashed_bytes), c.cached_files, f"{c.seconds:.2f} s", c.note)
            for c in self.checks
        )
        out = [Table("model verification" + (" (deep)" if self.deep else ""), ("node", "model", "version", "status", "files", "size", "hashed", "cached", "took", "note"), rows)]
        problems = tuple((c.node or "here", c.name, p.path, p.kind, p.detail) for c in self.checks for p in c.problems)
        if problems:
            out.append(Table("damaged files", ("node", "model", "file", "found", "detail"), problems))
        return out


@dataclass(frozen=True)
class ModelState:
    """One model in one node's store (``models status``)."""

    node: str
    name: str
    current: str | None
    previous: str | None
    versions: tuple[str, ...]
    quarantined: tuple[str, ...]
    bytes: int | None
    last_verified: str | None
    status: Status
    note: str = ""


@dataclass(frozen=True)
class StatusReport:
    models: tuple[ModelState, ...]
    agree: dict[str, bool] = field(default_factory=dict)  # model -> every node has the same active version

    @property
    def status(self) -> Status:
        return Status.worst([m.status for m in self.models]) if self.models else Status.OK

    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def tables(self) -> list[Table]:
        rows = tuple(
            (m.node or "here", m.name, m.current or "-", m.previous or "-", human_bytes(m.bytes, "-"), m.last_verified or "never",
             ", ".join(m.quarantined) or "-", "yes" if self.agree.get(m.name, True) else "NO", m.status, m.note)
            for m in self.models
        )
        return [Table("models", ("node", "model", "active", "previous", "size", "last verified", "quarantined", "Macs agree", "status", "note"), rows)]


@dataclass(frozen=True)
class Change:
    """What a changing command did (lock, pull, activate, rollback)."""

    action: str
    name: str
    version: str
    node: str = ""
    files: int = 0
    bytes: int = 0
    copied_bytes: int = 0
    seconds: float = 0.0
    path: str = ""
    previous: str | None = None
    message: str = ""


# --------------------------------------------------------------------------- commands


def verify(store: Store, names: list[str] | None = None, *, deep: bool = False, node: str = "", progress: Progress | None = None) -> VerifyReport:
    """Verify the active version of each model (all in the store when ``names`` is empty)."""
    names = names or store.names()
    checks = []
    for name in names:
        if name not in store.names():
            checks.append(ModelCheck(node, name, None, Status.CRITICAL, note=f"not installed in {store.root}"))
            continue
        version = store.pointer(name)
        if version is None:
            checks.append(ModelCheck(node, name, None, Status.WARNING, note="no active version"))
            continue
        with store.locked(name, f"models verify {name}"):
            verdict = store.verify(name, version, deep=deep, progress=progress)
        checks.append(ModelCheck.of(node, verdict))
    return VerifyReport(tuple(checks), deep)


def bytes_to_verify(store: Store, names: list[str] | None, deep: bool) -> int:
    """What a verify will read (for a progress bar's total): the files the cache will not skip."""
    total = 0
    for name in names or store.names():
        version = store.pointer(name)
        if version is None:
            continue
        try:
            manifest = store.manifest(name, version)
        except IntegrityError:
            continue
        cache = store.cache(name, version)
        for f in manifest.files:
            try:
                st = os.lstat(store.version_dir(name, version) / f.path)
            except OSError:
                continue
            if deep or not cache.hit(f.path, st, f.sha256):
                total += st.st_size
    return total


def activate(store: Store, name: str, version: str, *, node: str = "") -> Change:
    with store.locked(name, f"models activate {name} {version}"):
        old = store.pointer(name)
        verdict = store.activate(name, version)
    return Change("activate", name, version, node, verdict.files, verdict.bytes, 0, verdict.seconds, previous=old,
                  message=f"{name} {version} verified and active" + (f" (was {old})" if old and old != version else ""))


def rollback(store: Store, name: str, *, node: str = "") -> Change:
    previous = store.pointer(name, "previous")
    if previous is None:
        raise UsageError(f"{name} has no previous version to roll back to in {store.model_dir(name)}")
    change = activate(store, name, previous, node=node)
    return Change("rollback", name, previous, node, change.files, change.bytes, 0, change.seconds, previous=change.previous,
                  message=f"{name} rolled back to {previous}" + (f" (was {change.previous})" if change.previous else ""))


def status(store: Store, node: str = "") -> StatusReport:
    states = []
    for name in store.names():
        current = store.pointer(name)
        quarantined = tuple(sorted(store.quarantined(name)))
        size = last = None
        note = ""
        if current is not None:
            try:
                size = store.manifest(name, current).total_bytes
            except IntegrityError as exc:
                note = exc.message
            seen = store.cache(name, current).entries.values()
            if seen:
                from prontuario_cli.clock import iso

                last = iso(min(s.verified_at for s in seen))  # the file verified longest ago
        if current is None:
            state, note = Status.WARNING, note or "no active version"
        elif current in quarantined:
            state, note = Status.CRITICAL, "the active version is quarantined: roll back or repair it"
        else:
            state = Status.CRITICAL if note else Status.OK
        states.append(ModelState(node, name, current, store.pointer(name, "previous"), tuple(store.versions(name)), quarantined, size, last, state, note))
    return StatusReport(tuple(states))


def pull(store: Store, manifest: Manifest, from_dir: Path, *, node: str = "", progress: Progress | None = None) -> Change:
    """Copy a model in from a directory on this machine while hashing it, verify, activate.

    The copy goes into the staging directory; the version appears in the store only once
    every file's sha256 matches, and ``current`` switches only then. A source that does
    not match the manifest leaves nothing behind but an error naming its files.
    """
    started = time.monotonic()
    from_dir = Path(from_dir)
    if not from_dir.is_dir():
        raise UsageError(f"{from_dir} is not a directory")
    name, version = manifest.name, manifest.version
    copied = 0
    with store.locked(name, f"models pull {name}"):
        store.write_manifest(manifest)
        if version not in store.versions(name):
            staging = store.staging_dir(name, version)
            if staging.exists():
                shutil.rmtree(staging)
            staging.mkdir(parents=True)
            cache = store.cache(name, version)
            try:
                problems = _copy_hashing(manifest.files, from_dir, staging, cache, progress)
            except OSError as exc:
                store.discard_staging(name, version)
                where = exc.filename or store.root
                raise OperationFailed(f"cannot copy {name} into {store.root}: {exc.strerror or exc} ({where})", hint="nothing was installed; free space or choose another store") from None
            except BaseException:
                store.discard_staging(name, version)
                raise
            if problems:
                store.discard_staging(name, version)
                listed = "; ".join(f"{p.path}: {p.kind} ({p.detail})" for p in problems[:5])
                raise IntegrityError(f"{from_dir} does not match the manifest of {name} {version}: {listed}", hint="nothing was installed")
            store.save_cache(name, version, cache)
            store.promote_staged(name, version)
            copied = manifest.total_bytes
        old = store.pointer(name)
        verdict = store.activate(name, version)
    return Change("pull", name, version, node, verdict.files, verdict.bytes, copied, round(time.monotonic() - started, 3),
                  path=str(store.version_dir(name, version)), previous=old,
                  message=f"{name} {version} installed and active" if copied else f"{name} {version} was already in the store; active")


def _copy_hashing(files: tuple[ModelFile, ...], source: Path, target: Path, cache, progress: Progress | None) -> list[FileProblem]:
    """Copy each file (one thread per file, up to the cores) hashing the bytes as they pass."""
    import hashlib

    from prontuario_cli.models.manifest import path_problem

    lock = threading.Lock()

    def one(f: ModelFile) -> FileProblem | None:
        if path_problem(f.path):
            return FileProblem(f.path, "not-a-file", path_problem(f.path))
        src = source / f.path
        if src.is_symlink() or not src.is_file():
            return FileProblem(f.path, "missing" if not src.exists() else "not-a-file", f"{src} is not a regular file")
        dst = target / f.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        size = 0
        with open(src, "rb", buffering=0) as reader, open(dst, "wb", buffering=0) as writer:
            while True:
                n = reader.readinto(buf)
                if not n:
                    break
                digest.update(view[:n])
                writer.write(view[:n])
                size += n
                if progress is not None:
                    progress(n)
            os.fsync(writer.fileno())
        got = digest.hexdigest()
        if size != f.size:
            return FileProblem(f.path, "truncated" if size < f.size else "grown", f"{size} bytes, the manifest says {f.size}")
        if got != f.sha256:
            return FileProblem(f.path, "corrupted", f"sha256 {got[:12]}…, the manifest says {f.sha256[:12]}…")
        with lock:
            cache.remember(f.path, os.lstat(dst), f.sha256)
        return None

    ordered = sorted(files, key=lambda f: -f.size)  # largest first: the pool ends together
    with ThreadPoolExecutor(max_workers=max(1, min(len(files), os.cpu_count() or 1)), thread_name_prefix="pull") as pool:
        return [p for p in pool.map(one, ordered) if p is not None]


def servable(store: Store, name: str) -> tuple[Path, str]:
    """(the directory a server may load, its version): the active version, verified now.

    What a server start goes through: refused — IntegrityError, nothing to load — when
    there is no active version, when it is quarantined, or when it does not verify (it is
    then quarantined). Unchanged files cost a stat each (the stat cache).
    """
    version = store.pointer(name)
    if version is None:
        raise IntegrityError(f"{name} has no active version in {store.root}", hint=f"prontuario models pull {name} --from-dir PATH")
    if version in store.quarantined(name):
        raise IntegrityError(f"{name} {version} is quarantined: it is not served", hint=f"prontuario models rollback {name}, or sync it from the other Mac")
    with store.locked(name, f"verify {name} before serving"):
        verdict = store.verify(name, version)
    if not verdict.ok:
        raise IntegrityError(f"{name} {version} does not verify ({describe(verdict.problems)}): quarantined, not served",
                             hint=f"prontuario models rollback {name}, or sync it from the other Mac")
    return store.version_dir(name, version), version
