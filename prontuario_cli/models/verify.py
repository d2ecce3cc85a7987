"""Verify a model directory against its manifest: every file hashed, in parallel across files.

``hashlib.sha256`` releases the GIL while it hashes a buffer, so one thread per file (up
to the number of cores, largest files first) hashes several files at once; a single
file goes as fast as one core allows. Reads are 1 MiB ``readinto`` a reused buffer.

What is found, per file (:data:`KINDS`): ``missing``; ``truncated`` / ``grown`` (size);
``zeroed`` (right size, all zero bytes); ``swapped`` (its bytes are another file's of the
manifest); ``corrupted`` (any other hash mismatch: a flipped bit); ``extra`` (a file the
manifest does not list); ``not-a-file`` (a symlink, device or directory where a file is
expected: nothing in a verified version may point elsewhere); ``unreadable``.

A stat cache (:class:`StatCache`) remembers, per version and file, the size, mtime_ns,
ctime_ns and inode that were last verified: an unchanged file is not read again (unless
``deep``). Any write changes ctime, even one that puts the old mtime back.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from prontuario_cli.models.manifest import Manifest, ModelFile

CHUNK = 1 << 20
KINDS = ("missing", "truncated", "grown", "zeroed", "swapped", "corrupted", "extra", "not-a-file", "unreadable")

Progress = Callable[[int], None]  # bytes just hashed (called from the hashing threads)


@dataclass(frozen=True)
class FileProblem:
    path: str
    kind: str
    detail: str


@dataclass(frozen=True)
class Verdict:
    """What a verification found (one version of one model)."""

    name: str
    version: str
    files: int
    bytes: int
    hashed_bytes: int  # read and hashed this time (0 when every file hit the cache)
    cached_files: int
    seconds: float
    problems: tuple[FileProblem, ...] = ()
    sums: dict[str, str] = field(default_factory=dict, compare=False)  # path -> sha256 seen (hashed files)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Seen:
    """A file as it was when it was verified (what the stat cache compares)."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    sha256: str
    verified_at: float

    @staticmethod
    def of(st: os.stat_result, sha256: str) -> "Seen":
        return Seen(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, sha256, time.time())

    def matches(self, st: os.stat_result, sha256: str) -> bool:
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode, self.sha256) == (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, sha256)


class StatCache:
    """``{path: Seen}`` for one version; loaded and saved by the store."""

    def __init__(self, entries: dict[str, Seen] | None = None):
        self.entries = dict(entries or {})
        self._lock = threading.Lock()

    def hit(self, path: str, st: os.stat_result, sha256: str) -> bool:
        seen = self.entries.get(path)
        return seen is not None and seen.matches(st, sha256)

    def remember(self, path: str, st: os.stat_result, sha256: str) -> None:
        with self._lock:
            self.entries[path] = Seen.of(st, sha256)

    def forget(self, path: str) -> None:
        with self._lock:
            self.entries.pop(path, None)


def describe(problems) -> str:
    """``1 zeroed, 2 missing``: what a verification found, by kind."""
    kinds: dict[str, int] = {}
    for p in problems:
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in kinds.items())


def sha256_file(path: Path | str, progress: Progress | None = None, buffer: bytearray | None = None) -> tuple[str, int]:
    """(sha256 hex, bytes read) of one file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    buf = buffer if buffer is not None else bytearray(CHUNK)
    view = memoryview(buf)
    total = 0
    with open(path, "rb", buffering=0) as handle:
        while True:
            n = handle.readinto(buf)
            if not n:
                break
            digest.update(view[:n])
            total += n
            if progress is not None:
                progress(n)
    return digest.hexdigest(), total


def all_zero(path: Path) -> bool:
    with open(path, "rb", buffering=0) as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                return True
            if chunk.count(0) != len(chunk):
                return False


def listed_files(directory: Path) -> list[str]:
    """Every non-directory entry under ``directory`` (relative POSIX paths), symlinks included, not followed."""
    out = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        rel = os.path.relpath(root, directory)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            out.append(name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
    return out


def workers_for(files: list[ModelFile]) -> int:
    return max(1, min(len(files), os.cpu_count() or 1))


def verify_directory(
    directory: Path,
    manifest: Manifest,
    *,
    cache: StatCache | None = None,
    deep: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
) -> Verdict:
    """Check ``directory`` against ``manifest`` (see the module docstring for what is found)."""
    started = time.monotonic()
    directory = Path(directory)
    by_sum = {f.sha256: f.path for f in manifest.files}
    problems: list[FileProblem] = []
    to_hash: list[tuple[ModelFile, os.stat_result]] = []
    cached = 0
    for f in manifest.files:
        path = directory / f.path
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            problems.append(FileProblem(f.path, "missing", "not in the directory"))
            continue
        except OSError as exc:
            problems.append(FileProblem(f.path, "unreadable", exc.strerror or str(exc)))
            continue
        if not stat.S_ISREG(st.st_mode):
            what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            problems.append(FileProblem(f.path, "not-a-file", what))
            continue
        if st.st_size != f.size and not any(o.size == st.st_size for o in manifest.files):
            kind = "truncated" if st.st_size < f.size else "grown"
            problems.append(FileProblem(f.path, kind, f"{st.st_size} bytes, the manifest says {f.size}"))
            continue
        if not deep and cache is not None and cache.hit(f.path, st, f.sha256):
            cached += 1
            continue
        to_hash.append((f, st))

    listed = {f.path for f in manifest.files}
    for extra in sorted(set(listed_files(directory)) - listed):
        problems.append(FileProblem(extra, "extra", "not in the manifest"))

    sums: dict[str, str] = {}
    hashed = [0]
    lock = threading.Lock()

    def count(n: int) -> None:
        with lock:
            hashed[0] += n
        if progress is not None:
            progress(n)

    def check(item: tuple[ModelFile, os.stat_result]) -> FileProblem | None:
        f, st = item
        path = directory / f.path
        try:
            got, _ = sha256_file(path, count, bytearray(CHUNK))
        except OSError as exc:
            return FileProblem(f.path, "unreadable", exc.strerror or str(exc))
        sums[f.path] = got
        if got == f.sha256 and st.st_size == f.size:
            if cache is not None:
                cache.remember(f.path, os.lstat(path), f.sha256)
            return None
        if cache is not None:
            cache.forget(f.path)
        if got in by_sum and by_sum[got] != f.path:
            return FileProblem(f.path, "swapped", f"holds the bytes of {by_sum[got]}")
        if st.st_size != f.size:
            kind = "truncated" if st.st_size < f.size else "grown"
            return FileProblem(f.path, kind, f"{st.st_size} bytes, the manifest says {f.size}")
        if f.size and all_zero(path):
            return FileProblem(f.path, "zeroed", "the right size, every byte zero")
        return FileProblem(f.path, "corrupted", f"sha256 {got[:12]}…, the manifest says {f.sha256[:12]}…")

    to_hash.sort(key=lambda item: -item[0].size)  # largest first: the pool ends together
    if to_hash:
        with ThreadPoolExecutor(max_workers=workers or workers_for([f for f, _ in to_hash]), thread_name_prefix="sha256") as pool:
            problems += [p for p in pool.map(check, to_hash) if p is not None]
    order = {f.path: i for i, f in enumerate(manifest.files)}
    problems.sort(key=lambda p: (order.get(p.path, len(order)), p.path))
    return Verdict(
        name=manifest.name,
        version=manifest.version,
        files=len(manifest.files),
        bytes=manifest.total_bytes,
        hashed_bytes=hashed[0],
        cached_files=cached,
        seconds=round(time.monotonic() - started, 3),
        problems=tuple(problems),
        sums=sums,
    )


def hash_directory(directory: Path, progress: Progress | None = None) -> list[ModelFile]:
    """Every regular file under ``directory`` as a ModelFile (for ``models lock``); a symlink
    or anything else that is not a regular file is refused."""
    from prontuario_cli.errors import IntegrityError, UsageError
    from prontuario_cli.models.manifest import path_problem

    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    paths = sorted(listed_files(directory))
    items = []
    for rel in paths:
        st = os.lstat(directory / rel)
        if not stat.S_ISREG(st.st_mode):
            raise IntegrityError(f"{directory / rel} is not a regular file (a symlink?): a model directory holds only files")
        problem = path_problem(rel)
        if problem:
            raise IntegrityError(f"{directory / rel}: the path {problem}")
        items.append((rel, st.st_size))
    if not items:
        raise UsageError(f"{directory} holds no files")

    def one(item: tuple[str, int]) -> ModelFile:
        rel, size = item
        digest, read = sha256_file(directory / rel, progress)
        if read != size:
            raise IntegrityError(f"{directory / rel} changed while it was read ({size} then {read} bytes)")
        return ModelFile(rel, size, digest)

    ordered = sorted(items, key=lambda item: -item[1])
    with ThreadPoolExecutor(max_workers=max(1, min(len(items), os.cpu_count() or 1)), thread_name_prefix="sha256") as pool:
        files = list(pool.map(one, ordered))
    return sorted(files, key=lambda f: f.path)
