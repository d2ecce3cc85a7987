"""``prontuario models``: sha256 manifests, offline verify, Mac-to-Mac sync, atomic activation.

Every command works on the Macs of the inventory (run there through SSH, or in the
lab's processes), or, with ``--store DIR``, on this machine's store directly: that is
what the Macs run when the operator's command reaches them.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from prontuario_cli.cli.common import audited, confirm, emit, get_env, output_options
from prontuario_cli.errors import IntegrityError, UsageError

app = typer.Typer(
    help=(
        "Keep MedGemma, Whisper and FaceNet identical and intact on both Macs: sha256 manifests, "
        "parallel offline verify, Mac-to-Mac sync with rsync, atomic activation and rollback."
        "\n\nExit codes: 0 done or every model verified, 65 a file is damaged (the version is quarantined), "
        "64 usage, 69 a node unreachable, 75 another models command holds the store's lock."
        "\n\nExample: prontuario models verify --format nagios"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)

STORE_HELP = "Work on this machine's store at DIR (what each Mac runs) instead of the inventory's Macs."
NODE_HELP = "A node of the inventory (repeat for several; default: both Macs)."


def complete_model(ctx, args, incomplete: str) -> list[str]:
    """Model names from the manifests directory (shell completion; never an error)."""
    try:
        from prontuario_cli.models.nodes import known_models

        return [name for name in known_models(get_env(ctx).inventory()) if name.startswith(incomplete)]
    except Exception:
        return []


def _store(directory: Path):
    from prontuario_cli.models.store import Store

    return Store(directory)


def _progress_bar(total, what: str):
    """A rich progress bar (bytes, rate, ETA) on a terminal's stderr; None otherwise.

    ``total`` is called only on a terminal: from cron or a monitoring check nothing extra is read.
    """
    env = get_env()
    if not env.interactive:
        return None
    total = total()
    if total <= 0:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    progress = Progress(f"[bold]{what}", BarColumn(), DownloadColumn(binary_units=True), TransferSpeedColumn(), TimeRemainingColumn(),
                        console=Console(file=env.stderr), transient=True)
    task = progress.add_task(what, total=total)
    return progress, lambda n: progress.advance(task, n)


@app.command("verify")
@output_options(nagios=True)
def verify(
    names: Optional[List[str]] = typer.Argument(None, help="Models to verify (default: all).", autocompletion=complete_model),
    deep: bool = typer.Option(False, "--deep", help="Hash every file again, ignoring the stat cache."),
    node: Optional[List[str]] = typer.Option(None, "--node", "-n", help=NODE_HELP),
    store: Optional[Path] = typer.Option(None, "--store", metavar="DIR", help=STORE_HELP),
) -> None:
    """Verify every file of each model's active version against its manifest (sha256, in parallel).

    A file unchanged since it last verified (size, mtime, ctime, inode) is not read again
    unless --deep. Finds missing, truncated, grown, zeroed, bit-flipped (corrupted), swapped
    and extra files; a version that fails is quarantined: never activated, never served.
    Exit 0 all verified, 65 damage found, 1 a model has no active version, 3 a node did not answer.

    Example: prontuario models verify medgemma-4b --deep
    """
    from prontuario_cli.models import local

    env = get_env()
    if store is not None:
        s = _store(store)
        bar = _progress_bar(lambda: local.bytes_to_verify(s, names, deep), "verifying")
        if bar is None:
            report = local.verify(s, names, deep=deep)
        else:
            with bar[0]:
                report = local.verify(s, names, deep=deep, progress=bar[1])
    else:
        from prontuario_cli.models.nodes import macs, verify_on

        inventory = env.inventory()
        report = verify_on(inventory, macs(inventory, node), names, deep)
    _audit_quarantines(report)
    # As a Nagios plugin it exits with the Nagios status (2 for damage), else 65 says "damaged".
    emit(report, int(report.status) if env.output_format == "nagios" else None)


def _audit_quarantines(report) -> None:
    """A verify that quarantined a version changed the store: that is audited."""
    bad = [c for c in report.checks if c.problems]
    if not bad:
        return
    args = {"models": [f"{c.node or 'here'}:{c.name}:{c.version}" for c in bad]}
    with audited("models quarantine", args) as details:
        details["found"] = {f"{c.node or 'here'}:{c.name}": c.note for c in bad}


@app.command("status")
@output_options
def status(
    node: Optional[List[str]] = typer.Option(None, "--node", "-n", help=NODE_HELP),
    store: Optional[Path] = typer.Option(None, "--store", metavar="DIR", help=STORE_HELP),
) -> None:
    """Per node and model: the active and previous version, size, last verified, quarantined versions, and whether the Macs agree.

    Example: prontuario models status
    """
    from prontuario_cli.models import local

    if store is not None:
        emit(local.status(_store(store)))
        return
    from prontuario_cli.models.nodes import macs, status_on

    inventory = get_env().inventory()
    emit(status_on(inventory, macs(inventory, node)))


@app.command("lock")
@output_options
def lock(
    name: str = typer.Argument(..., help="The model's name (the manifest is NAME.yaml)."),
    from_dir: Path = typer.Option(..., "--from-dir", metavar="PATH", help="A directory holding exactly the model's files."),
    role: str = typer.Option(..., "--role", help="llm, stt or face."),
    hub: Optional[str] = typer.Option(None, "--hub", metavar="REPO@REVISION", help="Where it came from on the Hub, e.g. google/medgemma-4b-it@1f2e3d4."),
    origin: Optional[str] = typer.Option(None, "--origin", metavar="TEXT", help="Where it came from, when not the Hub."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Manifest file to write (default: the inventory's manifests directory)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Replace an existing manifest without asking."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Hash and show the manifest; write nothing."),
) -> None:
    """Write a model's manifest from a directory: every file's path, size and sha256.

    Example: prontuario models lock medgemma-4b --from-dir /Volumes/usb/medgemma-4b-it --role llm --hub google/medgemma-4b-it@1f2e3d4
    """
    from prontuario_cli.models.manifest import NAME, RUNTIME_OF_ROLE, HubSource, Manifest, Source, manifest_text, parse_manifest
    from prontuario_cli.models.verify import hash_directory

    if role not in RUNTIME_OF_ROLE:
        raise UsageError(f"--role {role!r} is not one of: {', '.join(RUNTIME_OF_ROLE)}")
    if not NAME.match(name):
        raise UsageError(f"{name!r} is not a model name (lower-case letters, digits, '.', '_', '-')")
    if (hub is None) == (origin is None):
        raise UsageError("give exactly one of --hub REPO@REVISION or --origin TEXT")
    source = Source(origin=origin)
    if hub is not None:
        repo, sep, revision = hub.partition("@")
        if not sep or not repo or not revision:
            raise UsageError(f"--hub {hub!r}: expected REPO@REVISION (a revision pins the bytes)")
        source = Source(hub=HubSource(repo, revision))
    if output is None:
        from prontuario_cli.models.nodes import manifest_file

        output = manifest_file(get_env().inventory(), name)
    if output.exists() and not dry_run:
        confirm(f"replace the manifest {output}?", yes=yes)
    bar = _progress_bar(lambda: sum(p.stat().st_size for p in from_dir.rglob("*") if p.is_file() and not p.is_symlink()) if from_dir.is_dir() else 0, "hashing")
    if bar is None:
        files = hash_directory(from_dir)
    else:
        with bar[0]:
            files = hash_directory(from_dir, bar[1])
    manifest = Manifest(name, role, RUNTIME_OF_ROLE[role], source, tuple(files))
    text = manifest_text(manifest)
    parse_manifest(text, str(output))  # what is written must read back
    from prontuario_cli.models.local import Change

    change = Change("lock", name, manifest.version, files=len(files), bytes=manifest.total_bytes, path=str(output),
                    message=f"{'would write' if dry_run else 'wrote'} {output}: {name} {manifest.version}, {len(files)} files")
    args = {"name": name, "from_dir": str(from_dir), "output": str(output)}
    with audited("models lock", args, dry_run=dry_run) as details:
        if not dry_run:
            from prontuario_cli.files import write_atomically

            output.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(output, text, 0o644)
        details.update(version=manifest.version, files=len(files), bytes=manifest.total_bytes)
    emit(change)


@app.command("pull")
@output_options
def pull(
    name: str = typer.Argument(..., help="The model to install.", autocompletion=complete_model),
    from_dir: Optional[Path] = typer.Option(None, "--from-dir", metavar="PATH", help="Where its files are (on the node): the offline way."),
    from_hub: bool = typer.Option(False, "--from-hub", help="Fetch the manifest's files at its pinned revision from the Hugging Face Hub (the node must be online)."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", metavar="FILE", help="Its manifest (default: the inventory's manifests directory)."),
    node: Optional[List[str]] = typer.Option(None, "--node", "-n", help=NODE_HELP),
    store: Optional[Path] = typer.Option(None, "--store", metavar="DIR", help=STORE_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be installed; change nothing."),
) -> None:
    """Install a model from a directory (offline) or, only when asked, the Hub: copy into staging while hashing, verify, activate.

    Nothing reaches the store unless every file matches the manifest's sha256; the
    previous version stays for 'models rollback'. --from-hub fetches exactly the
    manifest's files at its pinned revision (HF_TOKEN for a gated model; HF_ENDPOINT
    for a mirror); an interrupted download resumes.

    Example: prontuario models pull whisper-large-v3 --from-dir /Volumes/usb/whisper-large-v3 --node mac-studio-1
    """
    from prontuario_cli.models import local
    from prontuario_cli.models.manifest import load_manifest

    if (from_dir is None) == (not from_hub):
        raise UsageError("give exactly one of --from-dir PATH (offline) or --from-hub")
    source_text = str(from_dir) if from_dir is not None else "the Hub"
    if store is not None:
        m = load_manifest(manifest) if manifest is not None else _manifest_from_inventory(name)
        _check_name(m, name)
        if from_hub:
            from prontuario_cli.models.hub import check_asked

            check_asked(m)  # a refusal comes before any plan
            source_text = f"the Hub ({m.source.hub.repo}@{m.source.hub.revision})"
        args = {"name": name, "version": m.version, "from": source_text, "store": str(store)}
        if dry_run:
            with audited("models pull", args, dry_run=True):
                emit(local.Change("pull", name, m.version, files=len(m.files), bytes=m.total_bytes, path=str(store),
                                  message=f"would copy {len(m.files)} files from {source_text} into {store}, verify and activate {m.version}"))
            return
        confirm(f"install {name} {m.version} from {source_text} into {store} and make it active?", yes=yes)
        with audited("models pull", args) as details:
            target = _store(store)
            if from_hub:
                from prontuario_cli.models import hub

                from_dir = hub.download(target, m)
            change = _pull_with_progress(target, m, from_dir)
            if from_hub:
                hub.discard(target, m)
            details.update(copied_bytes=change.copied_bytes, previous=change.previous)
        emit(change)
        return
    _on_nodes("pull", name, node, ["--from-dir", str(from_dir)] if from_dir is not None else ["--from-hub"], yes=yes, dry_run=dry_run, manifest=manifest)


def _pull_with_progress(target, m, from_dir: Path):
    """``local.pull`` with a progress bar on a terminal; a download that does not match is thrown away."""
    from prontuario_cli.models import local

    bar = _progress_bar(lambda: m.total_bytes, "copying")
    try:
        if bar is None:
            return local.pull(target, m, from_dir)
        with bar[0]:
            return local.pull(target, m, from_dir, progress=bar[1])
    except IntegrityError:
        from prontuario_cli.models.hub import discard, download_dir

        if Path(from_dir) == download_dir(target, m):
            discard(target, m)
        raise


@app.command("activate")
@output_options
def activate(
    name: str = typer.Argument(..., help="The model.", autocompletion=complete_model),
    version: str = typer.Argument(..., help="The version to make active (see 'models status')."),
    node: Optional[List[str]] = typer.Option(None, "--node", "-n", help=NODE_HELP),
    store: Optional[Path] = typer.Option(None, "--store", metavar="DIR", help=STORE_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change; change nothing."),
) -> None:
    """Point a model's 'current' at a version, atomically, after verifying it (refused if it does not verify or is quarantined).

    Example: prontuario models activate medgemma-4b 3f9a1c2b7d4e
    """
    from prontuario_cli.models import local

    if store is not None:
        args = {"name": name, "version": version, "store": str(store)}
        if dry_run:
            with audited("models activate", args, dry_run=True):
                emit(local.Change("activate", name, version, message=f"would verify {name} {version} in {store} and make it active"))
            return
        confirm(f"make {name} {version} active in {store}?", yes=yes)
        with audited("models activate", args) as details:
            change = local.activate(_store(store), name, version)
            details["previous"] = change.previous
        emit(change)
        return
    _on_nodes("activate", name, node, [version], yes=yes, dry_run=dry_run)


@app.command("rollback")
@output_options
def rollback(
    name: str = typer.Argument(..., help="The model.", autocompletion=complete_model),
    node: Optional[List[str]] = typer.Option(None, "--node", "-n", help=NODE_HELP),
    store: Optional[Path] = typer.Option(None, "--store", metavar="DIR", help=STORE_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change; change nothing."),
) -> None:
    """Go back to the previous version of a model (verified first, like any activation).

    Example: prontuario models rollback medgemma-4b --node mac-studio-2
    """
    from prontuario_cli.models import local

    if store is not None:
        args = {"name": name, "store": str(store)}
        s = _store(store)
        if dry_run:
            with audited("models rollback", args, dry_run=True):
                emit(local.Change("rollback", name, s.pointer(name, "previous") or "-", message=f"would make {name} {s.pointer(name, 'previous')} active again in {store}"))
            return
        confirm(f"roll {name} back to {s.pointer(name, 'previous') or '(none)'} in {store}?", yes=yes)
        with audited("models rollback", args) as details:
            change = local.rollback(s, name)
            details.update(version=change.version, previous=change.previous)
        emit(change)
        return
    _on_nodes("rollback", name, node, [], yes=yes, dry_run=dry_run)


def _manifest_from_inventory(name: str):
    from prontuario_cli.models.nodes import manifest_named

    return manifest_named(get_env().inventory(), name)


def _check_name(manifest, name: str) -> None:
    if manifest.name != name:
        raise UsageError(f"the manifest {manifest.origin_path} is for {manifest.name!r}, not {name!r}")


def _on_nodes(command: str, name: str, nodes: Optional[List[str]], extra: list[str], *, yes: bool, dry_run: bool, manifest: Optional[Path] = None) -> None:
    """Run a changing models command on each node (one after the other: never both Macs at once)."""
    from prontuario_cli.models.nodes import macs, manifest_file, remote, store_of

    env = get_env()
    inventory = env.inventory()
    targets = macs(inventory, nodes)
    path = manifest or manifest_file(inventory, name)
    args = [command, name, *extra] + (["--manifest", str(path)] if command == "pull" else [])
    where = ", ".join(n.name for n in targets)
    audit_args = {"name": name, "nodes": [n.name for n in targets], **({"args": extra} if extra else {})}
    if dry_run:
        with audited(f"models {command}", audit_args, dry_run=True):
            from prontuario_cli.report import Message

            emit(Message(f"would run on {where}: prontuario models {' '.join(args)} --store <node store>",
                         {"nodes": {n.name: store_of(inventory, n) for n in targets}, "args": args}))
        return
    confirm(f"{command} {name} on {where}?", yes=yes)
    results = []
    with audited(f"models {command}", audit_args) as details:
        for node in targets:
            answer = remote(inventory, node, [*args, "--yes"])
            if answer["_exit"] != 0:
                from prontuario_cli.errors import OperationFailed

                said = answer["_stderr"].strip().splitlines()
                why = answer.get("message") or (said[-1] if said else f"exit {answer['_exit']}")
                raise OperationFailed(f"{node.name}: models {command} {name} failed: {why}")
            results.append({"node": node.name, **{k: v for k, v in answer.items() if not k.startswith("_")}})
            env.say(f"{node.name}: {answer.get('message', 'done')}")
        details["results"] = results
    from prontuario_cli.report import Message

    emit(Message("; ".join(f"{r['node']}: {r.get('message', 'done')}" for r in results), {"results": results}))


@app.command("sync")
@output_options
def sync(
    name: str = typer.Argument(..., help="The model.", autocompletion=complete_model),
    source: str = typer.Option(..., "--from", metavar="NODE", help="The Mac whose verified version is copied."),
    target: str = typer.Option(..., "--to", metavar="NODE", help="The Mac that receives it."),
    accept_new: bool = typer.Option(False, "--accept-new", help="Let the target trust the source's host key the first time (never a changed one)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; change nothing."),
) -> None:
    """Copy a verified model version from one Mac to the other with rsync over SSH, verify it there, activate it.

    Only what differs travels (rsync's delta transfer; files the target already holds
    intact are reused); a damaged file is repaired by sending the blocks that differ.
    An interrupted sync resumes when run again. Host keys are checked.

    Example: prontuario models sync medgemma-4b --from mac-studio-1 --to mac-studio-2 --yes
    """
    from prontuario_cli.models import sync as syncing

    env = get_env()
    inventory = env.inventory()
    src, dst = inventory.node(source), inventory.node(target)
    if src.name == dst.name:
        raise UsageError("--from and --to name the same node")
    steps = syncing.plan(inventory, name, src, dst)
    args = {"name": name, "from": src.name, "to": dst.name, "accept_new": accept_new}
    if dry_run:
        with audited("models sync", args, dry_run=True):
            from prontuario_cli.report import Message

            emit(Message("plan:\n" + "\n".join(f"  {i}. {s}" for i, s in enumerate(steps, 1)), {"plan": steps}))
        return
    confirm(f"sync {name} from {src.name} to {dst.name}?", yes=yes)
    with audited("models sync", args) as details:
        report = syncing.sync(inventory, name, src, dst, accept_new=accept_new, say=env.say)
        details.update(version=report.version, received_bytes=report.received_bytes, previous=report.target_previous)
    emit(report)


@app.command("receive", hidden=True)
@output_options
def receive(
    name: str = typer.Argument(...),
    manifest: Path = typer.Option(..., "--manifest"),
    store: Path = typer.Option(..., "--store"),
    from_host: str = typer.Option(..., "--from-host"),
    from_port: int = typer.Option(22, "--from-port"),
    from_user: str = typer.Option(..., "--from-user"),
    from_path: str = typer.Option(..., "--from-path"),
    key: str = typer.Option(..., "--key"),
    known_hosts: str = typer.Option(..., "--known-hosts"),
    rsync: str = typer.Option("rsync", "--rsync"),
    timeout: float = typer.Option(3600.0, "--timeout"),
    accept_new: bool = typer.Option(False, "--accept-new"),
    wait_go: bool = typer.Option(False, "--wait-go", help="Wait for a 'go' line on stdin first (end of file: stop, change nothing)."),
    yes: bool = typer.Option(False, "--yes", "-y"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be received; change nothing."),
) -> None:
    """The receiving Mac's half of 'models sync' (started there by it): pull with rsync, verify, activate.

    With --wait-go it starts at once and waits for 'models sync' to say the source
    verified: anything but a 'go' line ends it with nothing changed (exit 12).

    Example: prontuario models receive tiny --manifest models/tiny.yaml --store /opt/prontuario/models --from-host 10.0.0.11 --from-user prontuario --from-path /opt/prontuario/models/tiny/3f9a1c2b7d4e --key ~/.ssh/id_ed25519 --known-hosts ~/.ssh/known_hosts --dry-run
    """
    from prontuario_cli.models.manifest import load_manifest
    from prontuario_cli.models.receive import Peer
    from prontuario_cli.models.receive import receive as run_receive

    m = load_manifest(manifest)
    _check_name(m, name)
    if dry_run:
        from prontuario_cli.report import Message

        with audited("models receive", {"name": name, "version": m.version, "from": f"{from_host}:{from_port}", "store": str(store)}, dry_run=True):
            emit(Message(f"would pull {name} {m.version} from {from_user}@{from_host}:{from_path} with rsync into {store}, verify and activate it"))
        return
    if wait_go and get_env().stdin.readline().strip() != "go":
        from prontuario_cli.errors import AbortedError

        raise AbortedError(f"receive {name} {m.version}: stopped before anything changed (the source did not verify)")
    confirm(f"receive {name} {m.version} from {from_host} into {store}?", yes=yes)
    peer = Peer(from_user, from_host, from_port, from_path, key, known_hosts, rsync, accept_new)
    with audited("models receive", {"name": name, "version": m.version, "from": f"{from_host}:{from_port}", "store": str(store)}) as details:
        done = run_receive(_store(store), m, peer, rsync=rsync, timeout_s=timeout, say=get_env().say)
        details.update(received_bytes=done.received_bytes, previous=done.previous)
    emit(done)
