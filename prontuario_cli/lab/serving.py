"""The lab's models for ``--with-serve``: built here, locked, pulled into each Mac's store.

The lab sits below the models capability, so it installs them the way an operator
would, with the command line: ``prontuario -i LAB/cluster.yaml models lock`` writes each
manifest into ``LAB/model-manifests`` (the lab inventory's ``models.manifests``), and
``prontuario -i ... models pull --store LAB/models/NODE`` copies, verifies and activates
it in each Mac's store. ``-i`` sends their audit entries to the lab's audit log. Each
command is bounded and its output appended to ``LAB/logs/models.log``.

Idempotent: a model already built is not built again, a manifest is written again only
when its model was just built, and a Mac whose server for a model already runs is not
pulled into again.
"""

from __future__ import annotations

import subprocess
from typing import Callable

from prontuario_cli.errors import OperationFailed, UnavailableError
from prontuario_cli.lab.procs import log_tail, running_pid
from prontuario_cli.lab.spec import MACS, LabSpec
from prontuario_cli.poll import Progress, reported

Say = Callable[[str], None]

BUILD_TIMEOUT = 300  # three tiny models: seconds on a laptop, more on a loaded 2-core machine
COMMAND_TIMEOUT = 120  # one lock or pull of a tiny model
ORIGIN = "tiny random model built by 'prontuario lab up --with-serve'"


def models_log(spec: LabSpec):
    return spec.log_dir / "models.log"


def run_models_command(spec: LabSpec, args: list[str]) -> None:
    """``prontuario -i LAB/cluster.yaml --json models ARGS --yes``; OperationFailed naming the log on failure."""
    argv = [spec.prontuario, "-i", str(spec.inventory_path), "--json", "models", *args, "--yes"]
    log = models_log(spec)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n=== {' '.join(argv)}\n".encode())
        out.flush()
        try:
            result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise UnavailableError(f"prontuario models {args[0]} {args[1]} did not finish within {COMMAND_TIMEOUT} s (log: {log})") from None
        except OSError as exc:
            raise OperationFailed(f"cannot run {argv[0]}: {exc.strerror}", hint="is prontuario installed in the lab's Python environment?") from None
    if result.returncode != 0:
        tail = log_tail(log, 2).replace("\n", " | ")
        raise OperationFailed(f"prontuario models {args[0]} {args[1]} failed (exit {result.returncode}; log: {log}): {tail}")


def install_models(spec: LabSpec, say: Say, progress: Progress | None = None) -> None:
    """Build the tiny models once, lock them, and pull each into every Mac whose server is not running."""
    from prontuario_cli.lab.components import components
    from prontuario_cli.lab.tiny_models import build_lab_models, lab_models

    comps = components(spec)
    wanted = [(name, role) for name, role, _ in lab_models()]
    missing = {name for name, _ in wanted if not (spec.models_src_dir / name).is_dir()}
    if missing:
        say(f"lab: building the tiny models ({', '.join(sorted(missing))}) in {spec.models_src_dir}")
    with reported(progress, "models: build the tiny models", BUILD_TIMEOUT):
        sources = build_lab_models(spec.models_src_dir)
    for name, role in wanted:
        manifest = spec.manifests_dir / f"{name}.yaml"
        if name in missing or not manifest.exists():
            with reported(progress, f"models: lock {name}", COMMAND_TIMEOUT):
                run_models_command(spec, ["lock", name, "--from-dir", str(sources[name]), "--role", role, "--origin", ORIGIN])
        for node in MACS:
            server = comps[f"serve-{role}-{node}"]
            if running_pid(server.proc) and name not in missing:
                continue
            with reported(progress, f"models: pull {name} into {node}'s store", COMMAND_TIMEOUT):
                run_models_command(spec, ["pull", name, "--from-dir", str(sources[name]), "--store", str(spec.store_dir(node))])
    say(f"lab: models installed in {', '.join(str(spec.store_dir(n)) for n in MACS)}")
