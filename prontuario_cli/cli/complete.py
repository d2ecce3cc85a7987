"""Shell-completion helpers: fast (no heavy imports), silent on any error."""

from __future__ import annotations

import os


def node_names(ctx, args, incomplete: str) -> list[str]:
    """Node names from the inventory given on the command line (or the default one)."""
    from prontuario_cli.inventory import load_inventory

    explicit = None
    root = ctx.find_root() if ctx is not None else None
    if root is not None:
        explicit = root.params.get("inventory")
    try:
        inventory = load_inventory(explicit or os.environ.get("PRONTUARIO_INVENTORY"))
    except Exception:  # completion must never print an error into the shell
        return []
    return [n.name for n in inventory.nodes if n.name.startswith(incomplete)]
