"""The model store on one node: versioned directories, an atomic ``current`` pointer.

Layout under the store root (``models.store`` in the inventory, or a node's
``models_dir``)::

    NAME/
      VERSION/                 the model's files, exactly the manifest's, nothing else
      current -> VERSION       what the servers load (a symlink, switched by rename)
      previous -> VERSION      what ``models rollback`` goes back to
      .staging/VERSION/        a version being copied in (kept across runs: resumable)
      .meta/VERSION.yaml       the manifest of each version
      .meta/verified.json      the stat cache: {version: {path: seen}}
      .meta/quarantine.json    {version: {at, problems}}: never activated, never served
      .lock                    one writer at a time

A version directory is only created by renaming a staged directory that verified,
and ``current`` only ever points at a version that verified just before the switch
and is not quarantined: a server that follows ``current`` never sees a partial or
unverified model.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

from prontuario_cli.clock import utc_now
from prontuario_cli.errors import IntegrityError, UsageError
from prontuario_cli.files import exclusive_lock, write_atomically
from prontuario_cli.models.manifest import Manifest, load_manifest, manifest_text
from prontuario_cli.models.verify import FileProblem, Seen, StatCache, Verdict, describe, verify_directory

CURRENT, PREVIOUS, STAGING, META = "current", "previous", ".staging", ".meta"


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ------------------------------------------------------------------ paths

    def model_dir(self, name: str) -> Path:
        return self.root / name

    def version_dir(self, name: str, version: str) -> Path:
        return self.root / name / version

    def staging_dir(self, name: str, version: str) -> Path:
        return self.root / name / STAGING / version

    def meta_dir(self, name: str) -> Path:
        return self.root / name / META

    def manifest_path(self, name: str, version: str) -> Path:
        return self.meta_dir(name) / f"{version}.yaml"

    @contextmanager
    def locked(self, name: str, what: str) -> Iterator[None]:
        """One writer per model (a sync and a person never interleave): a second one exits 75."""
        from prontuario_cli.errors import LockedError

        self.model_dir(name).mkdir(parents=True, exist_ok=True)

        def busy(holder: str) -> LockedError:
            return LockedError(f"the model store of {name} is busy: {holder}", hint="wait for it to finish, then run this again")

        with exclusive_lock(self.model_dir(name) / ".lock", what, busy):
            yield

    # ------------------------------------------------------------------ reading

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def versions(self, name: str) -> list[str]:
        d = self.model_dir(name)
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))

    def pointer(self, name: str, which: str = CURRENT) -> str | None:
        """The version ``current`` (or ``previous``) points at, or None."""
        try:
            target = os.readlink(self.model_dir(name) / which)
        except (FileNotFoundError, OSError):
            return None
        return Path(target).name

    def manifest(self, name: str, version: str) -> Manifest:
        path = self.manifest_path(name, version)
        if not path.exists():
            raise IntegrityError(f"{name} {version}: no manifest in the store ({path})", hint="pull or sync the model again")
        return load_manifest(path)

    def quarantined(self, name: str) -> dict[str, dict]:
        return _read_json(self.meta_dir(name) / "quarantine.json")

    def cache(self, name: str, version: str) -> StatCache:
        raw = _read_json(self.meta_dir(name) / "verified.json").get(version, {})
        entries = {}
        for path, seen in raw.items():
            try:
                entries[path] = Seen(**seen)
            except TypeError:
                continue  # a cache entry from another format: hash again
        return StatCache(entries)

    # ------------------------------------------------------------------ writing (under the lock)

    def save_cache(self, name: str, version: str, cache: StatCache) -> None:
        path = self.meta_dir(name) / "verified.json"
        data = _read_json(path)
        data[version] = {p: asdict(s) for p, s in sorted(cache.entries.items())}
        data = {v: entries for v, entries in data.items() if (self.version_dir(name, v).is_dir() or self.staging_dir(name, v).is_dir())}
        write_atomically(path, json.dumps(data, indent=1, sort_keys=True) + "\n", 0o644)

    def write_manifest(self, manifest: Manifest) -> None:
        self.meta_dir(manifest.name).mkdir(parents=True, exist_ok=True)
        write_atomically(self.manifest_path(manifest.name, manifest.version), manifest_text(manifest), 0o644)

    def quarantine(self, name: str, version: str, problems: tuple[FileProblem, ...]) -> None:
        path = self.meta_dir(name) / "quarantine.json"
        data = _read_json(path)
        data[version] = {"at": utc_now(), "problems": [asdict(p) for p in problems]}
        self.meta_dir(name).mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(data, indent=1, sort_keys=True) + "\n", 0o644)

    def release(self, name: str, version: str) -> None:
        """Lift a quarantine (a version that verified again after a repair)."""
        path = self.meta_dir(name) / "quarantine.json"
        data = _read_json(path)
        if data.pop(version, None) is not None:
            write_atomically(path, json.dumps(data, indent=1, sort_keys=True) + "\n", 0o644)

    def verify(self, name: str, version: str, *, deep: bool = False, staged: bool = False, progress=None) -> Verdict:
        """Verify a version (or a staged one) against its manifest; remember what verified;
        quarantine a version that does not (a staged one is only reported)."""
        manifest = self.manifest(name, version)
        directory = self.staging_dir(name, version) if staged else self.version_dir(name, version)
        cache = self.cache(name, version)
        verdict = verify_directory(directory, manifest, cache=cache, deep=deep, progress=progress)
        self.save_cache(name, version, cache)
        if not staged:
            if verdict.ok:
                self.release(name, version)
            else:
                self.quarantine(name, version, verdict.problems)
        return verdict

    def promote_staged(self, name: str, version: str) -> None:
        """Rename a staged version that verified into place (atomic on one file system)."""
        final = self.version_dir(name, version)
        if final.exists():
            raise IntegrityError(f"{name} {version} already exists in the store ({final})")
        os.replace(self.staging_dir(name, version), final)
        _fsync_dir(final.parent)

    def activate(self, name: str, version: str, *, deep: bool = False) -> Verdict:
        """Verify ``version`` and point ``current`` at it (the old one becomes ``previous``).

        Refused — nothing changes — when the version is quarantined or does not verify.
        """
        if version not in self.versions(name):
            known = ", ".join(self.versions(name)) or "none"
            raise UsageError(f"{name} has no version {version} in {self.model_dir(name)} (versions: {known})")
        if version in self.quarantined(name):
            raise IntegrityError(
                f"{name} {version} is quarantined: it failed verification and is never activated",
                hint=f"repair it (prontuario models sync {name} --from NODE --to NODE) or activate another version",
            )
        verdict = self.verify(name, version, deep=deep)
        if not verdict.ok:
            raise IntegrityError(f"{name} {version} does not verify ({describe(verdict.problems)}); now quarantined, not activated")
        old = self.pointer(name)
        if old == version:
            return verdict
        self._point(name, CURRENT, version)
        if old is not None:
            self._point(name, PREVIOUS, old)
        return verdict

    def _point(self, name: str, which: str, version: str) -> None:
        """Switch a pointer atomically: a new symlink beside it, renamed over it."""
        d = self.model_dir(name)
        temporary = d / f".{which}.{os.getpid()}.{time.monotonic_ns()}"
        os.symlink(version, temporary)
        os.replace(temporary, d / which)
        _fsync_dir(d)

    def discard_staging(self, name: str, version: str) -> None:
        shutil.rmtree(self.staging_dir(name, version), ignore_errors=True)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"{path}: unreadable ({exc})", hint="remove it to start that record afresh") from None
    return data if isinstance(data, dict) else {}


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
