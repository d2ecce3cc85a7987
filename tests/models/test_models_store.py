"""Manifests, verification and the store, on files made here: every corruption is found."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from prontuario_cli.errors import ConfigError, IntegrityError
from prontuario_cli.models.manifest import Manifest, Source, manifest_text, parse_manifest, version_of
from prontuario_cli.models.store import Store
from prontuario_cli.models.verify import hash_directory, verify_directory


def make_model(directory: Path, sizes: dict[str, int], seed: int = 1) -> Path:
    """Files of random-looking bytes (deterministic per name and seed)."""
    import random

    directory.mkdir(parents=True, exist_ok=True)
    for rel, size in sizes.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random.Random(f"{seed}:{rel}").randbytes(size))
    return directory


SIZES = {"config.json": 300, "weights/a.safetensors": 3 << 20, "weights/b.safetensors": 3 << 20, "tokenizer.json": 5000}


def manifest_for(directory: Path, name: str = "tiny-llm") -> Manifest:
    return Manifest(name, "llm", "mlx-lm", Source(origin="built in the tests"), tuple(hash_directory(directory)))


@pytest.fixture
def model(tmp_path) -> tuple[Path, Manifest]:
    directory = make_model(tmp_path / "src", SIZES)
    return directory, manifest_for(directory)


# --------------------------------------------------------------------------- manifests


def test_a_manifest_round_trips_and_its_version_is_its_files(model):
    _, manifest = model
    again = parse_manifest(manifest_text(manifest), "tiny-llm.yaml")
    assert again.files == manifest.files and again.version == manifest.version and len(again.version) == 12
    changed = list(manifest.files)
    changed[0] = type(changed[0])(changed[0].path, changed[0].size, "0" * 64)
    assert version_of(changed) != manifest.version


@pytest.mark.parametrize(
    "path, why",
    [("../etc/passwd", "leaves the model directory"), ("/etc/passwd", "is absolute"), ("a/../../b", "leaves the model directory"),
     ("a//b", "leaves the model directory"), (".prontuario-x", "reserved"), ("a\\b", "backslash")],
)
def test_unsafe_paths_are_refused_with_file_line_and_key(path, why):
    text = f"""format: 1
name: tiny
role: llm
runtime: mlx-lm
source: {{origin: tests}}
files:
  - {{path: ok.bin, size: 1, sha256: {"a" * 64}}}
  - {{path: '{path}', size: 1, sha256: {"b" * 64}}}
"""
    with pytest.raises(ConfigError) as caught:
        parse_manifest(text, "tiny.yaml")
    assert any(d.startswith("tiny.yaml:8: files[1].path:") and why in d for d in caught.value.problems), caught.value.problems


def test_every_manifest_problem_is_listed_at_once():
    text = """format: 1
name: Tiny Model
role: stt
runtime: mlx-lm
source: {hub: {repo: x/y, revision: abc}, origin: both}
files:
  - {path: a.bin, size: -1, sha256: XYZ, colour: red}
  - {path: A.bin, size: "12", sha256: abc}
"""
    with pytest.raises(ConfigError) as caught:
        parse_manifest(text, "m.yaml")
    details = "\n".join(caught.value.problems)
    assert "m.yaml:7: files[0].colour: unknown key" in details
    assert "m.yaml:8: files[1].size: expected an integer, got str '12'" in details


def test_semantic_problems_after_a_clean_conversion():
    text = f"""format: 1
name: Tiny Model
role: stt
runtime: mlx-lm
source: {{hub: {{repo: x/y, revision: abc}}, origin: both}}
files:
  - {{path: a.bin, size: -1, sha256: XYZ}}
  - {{path: A.bin, size: 1, sha256: {"c" * 64}}}
"""
    with pytest.raises(ConfigError) as caught:
        parse_manifest(text, "m.yaml")
    details = "\n".join(caught.value.problems)
    for expected in ("m.yaml:2: name:", "m.yaml:4: runtime: a stt model runs on mlx-whisper", "m.yaml:5: source: give exactly one",
                     "m.yaml:7: files[0].size", "m.yaml:7: files[0].sha256", "m.yaml:8: files[1].path: 'A.bin' is listed twice"):
        assert expected in details, details


def test_malformed_yaml_is_one_line_with_its_line():
    with pytest.raises(ConfigError, match=r"^m.yaml:3: malformed YAML"):
        parse_manifest("name: x\nfiles: [a, b\n", "m.yaml")


def test_lock_refuses_a_symlink_in_the_directory(tmp_path):
    directory = make_model(tmp_path / "m", {"a.bin": 10})
    os.symlink("/etc/passwd", directory / "escape.bin")
    with pytest.raises(IntegrityError, match="not a regular file"):
        hash_directory(directory)


# --------------------------------------------------------------------------- verification


def corrupt(directory: Path, kind: str) -> str:
    """Damage one file the way ``kind`` says; return the path that was damaged."""
    a, b = directory / "weights/a.safetensors", directory / "weights/b.safetensors"
    if kind == "missing":
        a.unlink()
    elif kind == "truncated":
        os.truncate(a, 1 << 20)
    elif kind == "grown":
        with open(a, "ab") as f:
            f.write(b"x")
    elif kind == "zeroed":
        size = a.stat().st_size
        a.write_bytes(bytes(size))
    elif kind == "corrupted":  # one flipped bit, the old mtime put back
        st = a.stat()
        with open(a, "r+b") as f:
            f.seek(12345)
            byte = f.read(1)[0]
            f.seek(12345)
            f.write(bytes([byte ^ 1]))
        os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif kind == "swapped":
        tmp = directory / "tmp"
        os.replace(a, tmp)
        os.replace(b, a)
        os.replace(tmp, b)
    elif kind == "extra":
        (directory / "weights/c.safetensors").write_bytes(b"not ours")
        return "weights/c.safetensors"
    elif kind == "not-a-file":
        a.unlink()
        os.symlink(b, a)
    return "weights/a.safetensors"


@pytest.mark.parametrize("kind", ["missing", "truncated", "grown", "zeroed", "corrupted", "swapped", "extra", "not-a-file"])
def test_every_kind_of_damage_is_found_and_named(model, kind):
    directory, manifest = model
    assert verify_directory(directory, manifest).ok
    damaged = corrupt(directory, kind)
    verdict = verify_directory(directory, manifest)
    assert not verdict.ok
    assert (damaged, kind) in [(p.path, p.kind) for p in verdict.problems], verdict.problems


def test_the_stat_cache_skips_unchanged_files_and_sees_a_rewrite_with_the_old_mtime(model):
    from prontuario_cli.models.verify import StatCache

    directory, manifest = model
    cache = StatCache()
    first = verify_directory(directory, manifest, cache=cache)
    assert first.ok and first.hashed_bytes == manifest.total_bytes and first.cached_files == 0
    again = verify_directory(directory, manifest, cache=cache)
    assert again.ok and again.hashed_bytes == 0 and again.cached_files == len(manifest.files)
    deep = verify_directory(directory, manifest, cache=cache, deep=True)
    assert deep.hashed_bytes == manifest.total_bytes
    corrupt(directory, "corrupted")  # same size, same mtime: only ctime tells
    verdict = verify_directory(directory, manifest, cache=cache)
    assert [(p.path, p.kind) for p in verdict.problems] == [("weights/a.safetensors", "corrupted")]


# --------------------------------------------------------------------------- the store


def stored(tmp_path, model) -> tuple[Store, Manifest]:
    directory, manifest = model
    store = Store(tmp_path / "store")
    store.write_manifest(manifest)
    shutil.copytree(directory, store.staging_dir(manifest.name, manifest.version))
    assert store.verify(manifest.name, manifest.version, staged=True).ok
    store.promote_staged(manifest.name, manifest.version)
    return store, manifest


def test_activate_switches_current_and_keeps_previous(tmp_path, model):
    store, m1 = stored(tmp_path, model)
    store.activate(m1.name, m1.version)
    assert store.pointer(m1.name) == m1.version and store.pointer(m1.name, "previous") is None
    directory = make_model(tmp_path / "src2", SIZES, seed=2)
    m2 = manifest_for(directory)
    store.write_manifest(m2)
    shutil.copytree(directory, store.staging_dir(m2.name, m2.version))
    store.promote_staged(m2.name, m2.version)
    store.activate(m2.name, m2.version)
    assert (store.pointer(m2.name), store.pointer(m2.name, "previous")) == (m2.version, m1.version)
    assert (store.model_dir(m1.name) / "current" / "config.json").read_bytes() == (directory / "config.json").read_bytes()


def test_a_version_that_does_not_verify_is_quarantined_and_never_activated(tmp_path, model):
    store, manifest = stored(tmp_path, model)
    corrupt(store.version_dir(manifest.name, manifest.version), "zeroed")
    with pytest.raises(IntegrityError, match="does not verify .*1 zeroed.*quarantined"):
        store.activate(manifest.name, manifest.version)
    assert store.pointer(manifest.name) is None
    assert manifest.version in store.quarantined(manifest.name)
    with pytest.raises(IntegrityError, match="is quarantined"):
        store.activate(manifest.name, manifest.version)


def test_a_full_disk_is_one_line_and_leaves_nothing_behind(tmp_path, model):
    """A store on a 4 MiB tmpfs cannot take a 6 MiB model: a clear error, no staging left, nothing active."""
    import subprocess

    from prontuario_cli.errors import OperationFailed
    from prontuario_cli.models.local import pull

    directory, manifest = model
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)], capture_output=True, text=True)
    assert mounted.returncode == 0, f"cannot mount a tmpfs here: {mounted.stderr}"
    try:
        store = Store(small / "store")
        with pytest.raises(OperationFailed, match="No space left on device"):
            pull(store, manifest, directory)
        assert store.pointer(manifest.name) is None and store.versions(manifest.name) == []
        assert not store.staging_dir(manifest.name, manifest.version).exists()
    finally:
        subprocess.run(["umount", str(small)], check=False)


@pytest.mark.parametrize(
    "text, supported",
    [("rsync  version 3.2.7  protocol version 31\n", "3.2.7"), ("rsync  version v3.5.0  protocol version 32", "3.5.0"),
     ("openrsync: protocol version 29\nrsync version 2.6.9 compatible", None), ("rsync  version 3.0.9  protocol version 30", None)],
)
def test_rsync_versions_prontuario_supports(text, supported):
    from prontuario_cli.models.receive import check_rsync

    if supported:
        assert check_rsync(text, "mac-studio-1") == supported
    else:
        with pytest.raises(ConfigError, match="mac-studio-1: (unsupported rsync|rsync 3.0.9 is older)"):
            check_rsync(text, "mac-studio-1")


def test_a_server_is_only_ever_given_a_verified_version(tmp_path, model):
    from prontuario_cli.models.local import servable

    store, manifest = stored(tmp_path, model)
    with pytest.raises(IntegrityError, match="no active version"):
        servable(store, manifest.name)
    store.activate(manifest.name, manifest.version)
    path, version = servable(store, manifest.name)
    assert version == manifest.version and path == store.version_dir(manifest.name, manifest.version)
    corrupt(path, "zeroed")
    with pytest.raises(IntegrityError, match="does not verify .*zeroed.*not served"):
        servable(store, manifest.name)
    with pytest.raises(IntegrityError, match="is quarantined"):
        servable(store, manifest.name)
