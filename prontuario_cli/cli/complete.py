"""Shell-completion helpers: fast (no heavy imports), silent on any error.

A TAB press must feel instant, so node names are found by a small line scan of the
inventory's ``nodes:`` block as it is normally written (block style, one ``name:``
per item), without PyYAML or the inventory's validation (together they cost more than
Typer itself). Anything the scan does not recognise (flow style, anchors, quoting it
does not expect) goes to the full loader, which is slower but always right.
"""

from __future__ import annotations

import os
import re

_TOP_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")
_NAME = re.compile(r"""^(?P<indent> *)(?P<dash>- +)?name: *(?P<value>[A-Za-z0-9][\w.-]*) *(#.*)?$""")
_MAX_BYTES = 1 << 20


def node_names(ctx, args, incomplete: str) -> list[str]:
    """Node names from the inventory given on the command line (or the default one)."""
    root = ctx.find_root() if ctx is not None else None
    explicit = root.params.get("inventory") if root is not None else None
    try:
        names = _scan_node_names(_inventory_file(explicit))
        if names is None:
            names = _loaded_node_names(explicit)
    except Exception:  # noqa: BLE001 - completion must never print an error into the shell
        return []
    return [name for name in names if name.startswith(incomplete)]


def _inventory_file(explicit: str | None) -> str | None:
    """The first inventory that exists, looked for where :func:`prontuario_cli.inventory.candidate_paths` looks."""
    if explicit:
        candidates = [explicit]
    elif os.environ.get("PRONTUARIO_INVENTORY"):
        candidates = [os.environ["PRONTUARIO_INVENTORY"]]
    else:
        candidates = ["cluster.yaml", "~/.config/prontuario/cluster.yaml"]
    for candidate in candidates:
        path = os.path.expanduser(candidate)
        if os.path.isfile(path):
            return path
    return None


def _scan_node_names(path: str | None) -> list[str] | None:
    """Node names from a block-style ``nodes:`` list; None when the file is not written that way."""
    if path is None:
        return None
    with open(path, "rb") as handle:
        data = handle.read(_MAX_BYTES + 1)
    if len(data) > _MAX_BYTES:
        return None
    lines = data.decode("utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"^nodes\s*:\s*(#.*)?$", line)), None)
    if start is None or any(re.match(r"^nodes\s*:", line) for line in lines[start + 1 :]):
        return None
    names: list[str] = []
    items = 0
    item_indent = key_indent = None
    for line in lines[start + 1 :]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if _TOP_KEY.match(line):
            break  # the next top-level key: the list is over
        indent = len(line) - len(line.lstrip(" "))
        if line.lstrip().startswith("-"):
            if item_indent is None:
                item_indent = indent
            if indent == item_indent:
                items += 1
                after_dash = line[indent + 1 :]
                key_indent = indent + 1 + len(after_dash) - len(after_dash.lstrip(" "))
        found = _NAME.match(line)
        if found and item_indent is not None:
            at = len(found["indent"]) + (len(found["dash"]) if found["dash"] else 0)
            if at == key_indent:
                names.append(found["value"])
    if items == 0 or len(names) != items:
        return None  # an item whose name the scan could not read: let the loader decide
    return names


def _loaded_node_names(explicit: str | None) -> list[str]:
    from prontuario_cli.inventory import load_inventory

    return [node.name for node in load_inventory(explicit).nodes]
