"""The operator's side: run the models commands on each Mac and bring their answers together.

A Mac's store is only ever touched by prontuario running on that Mac: this module runs
``prontuario models <command> --store DIR --json`` there through the node-access seam
(:func:`~prontuario_cli.cluster.nodes.node_access`: the lab's processes here, real nodes
over SSH with verified host keys), concurrently for several nodes, and turns the JSON
back into the same reports a local run gives.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prontuario_cli.errors import ConfigError, OperationFailed, ProntuarioError
from prontuario_cli.inventory import Inventory, Node
from prontuario_cli.models.local import ModelCheck, ModelState, StatusReport, VerifyReport
from prontuario_cli.models.manifest import Manifest, load_manifest
from prontuario_cli.models.verify import FileProblem
from prontuario_cli.report import Status


def store_of(inventory: Inventory, node: Node) -> str:
    from prontuario_cli.render.apps import model_store

    return model_store(inventory, node)


def manifests_dir(inventory: Inventory) -> Path:
    """``models.manifests``, else ``models/`` beside the inventory file."""
    if inventory.models.manifests:
        return Path(inventory.models.manifests).expanduser()
    return Path(inventory.source or ".").resolve().parent / "models"


def manifest_file(inventory: Inventory, name: str) -> Path:
    return manifests_dir(inventory) / f"{name}.yaml"


def manifest_named(inventory: Inventory, name: str) -> Manifest:
    manifest = load_manifest(manifest_file(inventory, name))
    if manifest.name != name:
        raise ConfigError(f"{manifest.origin_path}: names model {manifest.name!r}, not {name!r}", hint="the file name is the model's name")
    return manifest


def known_models(inventory: Inventory) -> list[str]:
    directory = manifests_dir(inventory)
    return sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []


def macs(inventory: Inventory, names: list[str] | None = None) -> list[Node]:
    """The nodes asked for (default: both Macs), in inventory order."""
    if names:
        return [inventory.node(name) for name in names]
    return list(inventory.macs)


def remote(inventory: Inventory, node: Node, args: list[str], *, timeout_s: float | None = None, gate=None) -> dict[str, Any]:
    """Run ``prontuario models ARGS --store STORE --json`` on ``node``; its JSON answer.

    Exit codes that come with a JSON report (65 damage found) are answers, not failures;
    anything else without JSON is an OperationFailed naming the node and its stderr.
    """
    from prontuario_cli.cluster.nodes import node_access

    argv = [inventory.models.prontuario, "models", *args, "--store", store_of(inventory, node), "--json"]
    result = node_access(inventory).run(node.name, argv, timeout_s=timeout_s or inventory.models.timeout_s, gate=gate)
    try:
        data = json.loads(result.stdout) if result.stdout.strip() else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        tail = (result.stderr.strip().splitlines() or [f"exit {result.exit_status}, no output"])[-1]
        raise OperationFailed(f"{node.name}: prontuario models {args[0]} failed: {tail[:300]}")
    data["_exit"] = result.exit_status
    data["_stderr"] = result.stderr
    return data


def fan_out(nodes: list[Node], call) -> dict[str, Any]:
    """``call(node)`` for every node at once; ``{node name: value or the ProntuarioError}``."""
    with ThreadPoolExecutor(max_workers=max(1, len(nodes)), thread_name_prefix="models") as pool:
        futures = {node.name: pool.submit(call, node) for node in nodes}
        out: dict[str, Any] = {}
        for name, future in futures.items():
            try:
                out[name] = future.result()
            except ProntuarioError as exc:
                out[name] = exc
        return out


def _status(value: str | None) -> Status:
    try:
        return Status[str(value or "unknown").upper()]
    except KeyError:
        return Status.UNKNOWN


def check_from(node: str, d: dict[str, Any]) -> ModelCheck:
    return ModelCheck(
        node=node,
        name=d["name"],
        version=d.get("version"),
        status=_status(d.get("status")),
        files=int(d.get("files") or 0),
        bytes=int(d.get("bytes") or 0),
        hashed_bytes=int(d.get("hashed_bytes") or 0),
        cached_files=int(d.get("cached_files") or 0),
        seconds=float(d.get("seconds") or 0.0),
        problems=tuple(FileProblem(p["path"], p["kind"], p.get("detail", "")) for p in d.get("problems") or ()),
        note=d.get("note") or "",
    )


def verify_on(inventory: Inventory, nodes: list[Node], names: list[str] | None, deep: bool) -> VerifyReport:
    args = ["verify", *(names or [])] + (["--deep"] if deep else [])
    answers = fan_out(nodes, lambda node: remote(inventory, node, args))
    checks: list[ModelCheck] = []
    for node in nodes:
        answer = answers[node.name]
        if isinstance(answer, ProntuarioError):
            for name in names or ["(all)"]:
                checks.append(ModelCheck(node.name, name, None, Status.UNKNOWN, note=answer.one_line()))
            continue
        checks += [check_from(node.name, c) for c in answer.get("checks") or ()]
    return VerifyReport(tuple(checks), deep)


def status_on(inventory: Inventory, nodes: list[Node], timeout_s: float = 60.0) -> StatusReport:
    answers = fan_out(nodes, lambda node: remote(inventory, node, ["status"], timeout_s=timeout_s))
    states: list[ModelState] = []
    for node in nodes:
        answer = answers[node.name]
        if isinstance(answer, ProntuarioError):
            states.append(ModelState(node.name, "(store)", None, None, (), (), None, None, Status.UNKNOWN, answer.one_line()))
            continue
        for m in answer.get("models") or ():
            states.append(
                ModelState(node.name, m["name"], m.get("current"), m.get("previous"), tuple(m.get("versions") or ()),
                           tuple(m.get("quarantined") or ()), m.get("bytes"), m.get("last_verified"), _status(m.get("status")), m.get("note") or "")
            )
    for name in known_models(inventory):  # a model with a manifest that a Mac lacks
        for node in nodes:
            if not isinstance(answers[node.name], ProntuarioError) and not any(s.node == node.name and s.name == name for s in states):
                states.append(ModelState(node.name, name, None, None, (), (), None, None, Status.CRITICAL, "not installed on this node"))
    agree = {}
    for name in sorted({s.name for s in states}):
        active = {s.current for s in states if s.name == name}
        agree[name] = len(active) == 1 and None not in active and len([s for s in states if s.name == name]) == len(nodes)
    states = [s if agree.get(s.name, True) or s.status != Status.OK else _disagree(s) for s in states]
    return StatusReport(tuple(sorted(states, key=lambda s: (s.name, s.node))), agree)


def _disagree(state: ModelState) -> ModelState:
    from dataclasses import replace

    return replace(state, status=Status.WARNING, note="the Macs do not run the same version: sync it")
