"""Prometheus text exposition for node_exporter's textfile collector.

Build :class:`Family` objects, render them with :func:`render`, and publish with
:func:`write_textfile`, which replaces the file atomically (node_exporter never
reads half a file). The temporary file starts with a dot and ends in ``.tmp``,
so the collector (which reads ``*.prom``) never picks it up.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path



@dataclass(frozen=True)
class Sample:
    value: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Family:
    """One metric: name, HELP text, TYPE (gauge, counter, untyped) and its samples."""

    name: str
    help: str
    type: str = "gauge"
    samples: tuple[Sample, ...] = ()


def _escape_label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    return str(value)


def render(families: list[Family]) -> str:
    """The exposition text: HELP and TYPE before each family's samples; families without samples are left out."""
    lines: list[str] = []
    for family in families:
        if not family.samples:
            continue
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sample.labels.items())
            lines.append(f"{family.name}{{{labels}}} {_number(sample.value)}" if labels else f"{family.name} {_number(sample.value)}")
    return "\n".join(lines) + "\n" if lines else ""


def write_textfile(path: str | os.PathLike, text: str) -> Path:
    """Replace ``path`` with ``text`` atomically (temp file in the same directory, fsync, rename)."""
    from prontuario_cli.files import write_atomically

    return write_atomically(path, text, 0o644)
