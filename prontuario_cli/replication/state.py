"""Small state files in prontuario's state dir that the replication check reads or keeps.

``replication-timeline.json`` (written by ``replication check``)
    ``{"scope": ..., "timeline": 3, "leader": "mac-studio-1", "recorded_at": ISO}``: the
    timeline seen by the last check, so a failover nobody noticed (a new timeline) is
    reported once, as WARNING ``timeline 2→3``.

``gcp-fallback.json`` (written by ``gcp promote`` / ``gcp failback``)
    The emergency-mode flag; its one reader is :mod:`prontuario_cli.cluster.fallback`
    (``fallback_active`` feeds ``gcp_fallback_active``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

TIMELINE_FILE = "replication-timeline.json"


@dataclass(frozen=True)
class TimelineState:
    scope: str
    timeline: int
    leader: str | None = None
    recorded_at: str | None = None


def read_timeline(state_dir: Path, scope: str) -> TimelineState | None:
    """The last recorded timeline of ``scope``; None if never recorded (or unreadable)."""
    try:
        data = json.loads((state_dir / TIMELINE_FILE).read_text(encoding="utf-8"))
        if data.get("scope") != scope:
            return None
        return TimelineState(scope=scope, timeline=int(data["timeline"]), leader=data.get("leader"), recorded_at=data.get("recorded_at"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def record_timeline(state_dir: Path, state: TimelineState) -> None:
    """Write the timeline state atomically (temp file + rename). Raises OSError."""
    body = json.dumps(
        {"scope": state.scope, "timeline": state.timeline, "leader": state.leader, "recorded_at": state.recorded_at},
        indent=2,
    )
    write_atomically(state_dir / TIMELINE_FILE, body + "\n")


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never half."""
    from prontuario_cli.files import write_atomically as write

    write(path, text, mode)
