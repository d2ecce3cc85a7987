"""Small helpers shared by the renderers."""

from __future__ import annotations

HEADER = "# Rendered by prontuario from the inventory; edits are overwritten."
HEADER_REWRITTEN = "# Rendered by prontuario from the inventory for a fresh node; {note}."


def to_yaml(data) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def seconds(value: float) -> str:
    """HAProxy time: whole seconds as ``5s``, fractions as milliseconds."""
    return f"{int(value)}s" if float(value).is_integer() else f"{round(value * 1000)}ms"
