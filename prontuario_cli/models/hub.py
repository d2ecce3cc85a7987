"""``models pull --from-hub``: a manifest's files fetched from the Hugging Face Hub, only when asked.

The Macs are offline on the hospital network, so ``--from-dir`` is the default and this
path runs only when an operator asks for it on a node that can reach the Hub. It fetches
exactly the manifest's files at the manifest's pinned revision (never "main"), through
``huggingface_hub`` (its token, redirects, resumable downloads), into a download
directory beside the store; ``models.local.pull`` then copies them into staging while
hashing, so the Hub is trusted for nothing: a file whose sha256 is not the manifest's is
refused like any other source, and its download is thrown away.

Refused before anything moves: a manifest whose source is a local origin, ``HF_HUB_OFFLINE``
set, a Hub that does not answer within the timeout, a revision it does not know.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from prontuario_cli.errors import ConfigError, IntegrityError, UnavailableError, UsageError
from prontuario_cli.models.manifest import Manifest
from prontuario_cli.models.store import Store

WORKERS = 4
OFFLINE_VALUES = {"1", "true", "yes", "on"}


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def check_asked(manifest: Manifest) -> None:
    """The refusals that need no network: a local-origin manifest, the Hub switched off here."""
    if manifest.source.hub is None:
        raise UsageError(f"{manifest.name}'s manifest has a local origin ({manifest.source.origin}), not a Hub repository: use --from-dir")
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(variable, "").strip().lower() in OFFLINE_VALUES:
            raise UnavailableError(f"the Hub is switched off on this node ({variable}={os.environ[variable]})", hint="copy the model over and use --from-dir")


def download_dir(store: Store, manifest: Manifest) -> Path:
    """Kept across runs until the pull succeeds: an interrupted download resumes."""
    return store.model_dir(manifest.name) / ".hub" / manifest.version


def download(store: Store, manifest: Manifest, *, timeout_s: float = 10.0) -> Path:
    """Fetch the manifest's files at its revision into :func:`download_dir`; the directory."""
    check_asked(manifest)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # read when huggingface_hub is imported: nothing but the files is asked for
    try:
        import huggingface_hub
        from huggingface_hub import errors as hub_errors
    except ImportError:
        raise ConfigError("pulling from the Hub needs huggingface_hub on this node", hint="pip install 'prontuario[serve]'") from None
    hub = manifest.source.hub
    where = f"{endpoint()} ({hub.repo}@{hub.revision})"
    api = huggingface_hub.HfApi(endpoint=endpoint())
    try:
        api.model_info(hub.repo, revision=hub.revision, timeout=timeout_s)
    except hub_errors.RevisionNotFoundError:
        raise UsageError(f"{where}: the Hub has no revision {hub.revision} of {hub.repo}", hint="the manifest pins a revision the Hub does not know") from None
    except hub_errors.RepositoryNotFoundError:
        raise UsageError(f"{where}: no such repository, or it is gated and HF_TOKEN is not set", hint="set HF_TOKEN for a gated model") from None
    except (hub_errors.HfHubHTTPError, OSError, ValueError) as exc:
        raise UnavailableError(f"cannot reach the Hub at {where} within {timeout_s:g} s: {_short(exc)}", hint="offline? copy the model over and use --from-dir") from None
    except Exception as exc:  # noqa: BLE001 -- httpx's transport errors (connection refused, timeouts) are not OSErrors
        raise UnavailableError(f"cannot reach the Hub at {where} within {timeout_s:g} s: {_short(exc)}", hint="offline? copy the model over and use --from-dir") from None
    into = download_dir(store, manifest)
    into.mkdir(parents=True, exist_ok=True)

    failures: dict[str, BaseException] = {}
    slots = threading.Semaphore(WORKERS)

    def fetch(path: str) -> None:
        with slots:
            try:
                huggingface_hub.hf_hub_download(hub.repo, path, revision=hub.revision, local_dir=into, endpoint=endpoint(), etag_timeout=timeout_s)
            except BaseException as exc:  # noqa: BLE001 -- reported by the main thread, file by file
                failures[path] = exc

    # Daemon threads: Ctrl-C ends the pull at once (what finished stays for the next run).
    threads = [threading.Thread(target=fetch, args=(f.path,), name=f"hub {f.path}", daemon=True) for f in manifest.files]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
    for f in manifest.files:
        exc = failures.get(f.path)
        if isinstance(exc, hub_errors.RemoteEntryNotFoundError):
            raise IntegrityError(f"{where}: the Hub has no file {f.path}: the manifest does not describe this revision", hint="lock the manifest again")
        if exc is not None:
            raise UnavailableError(f"{where}: downloading {f.path} failed: {_short(exc)}", hint="run the pull again: finished files are kept")
    return into


def discard(store: Store, manifest: Manifest) -> None:
    shutil.rmtree(download_dir(store, manifest), ignore_errors=True)
    parent = download_dir(store, manifest).parent
    if parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:240]
