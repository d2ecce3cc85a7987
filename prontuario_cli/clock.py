"""The one clock format prontuario writes: UTC, ISO 8601, milliseconds, ``Z``."""

from __future__ import annotations

import datetime as _dt


def utc_now() -> str:
    """Now, e.g. ``2026-11-29T03:12:45.120Z``."""
    return iso(_dt.datetime.now(_dt.timezone.utc).timestamp())


def iso(epoch: float) -> str:
    """A Unix time in the same format as :func:`utc_now`."""
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
