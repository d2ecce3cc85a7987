"""Connectors: every network call prontuario makes, bounded by a timeout.

Each connector converts its library's errors where they happen into
:class:`~prontuario_cli.errors.ProntuarioError` subclasses, so core code never sees
a psycopg, redis, httpx or socket exception. The libraries are imported inside the
functions that use them (fast start for the CLI).
"""

from __future__ import annotations

from typing import Any

from prontuario_cli.errors import UnavailableError


class TimedOut(UnavailableError):
    """The service accepted the connection (or nothing) but did not answer in time.

    Different from a refused connection: a hung process (SIGSTOP, a stuck disk)
    looks like this, and a check reports it as UNKNOWN rather than down.
    """


class Refused(UnavailableError):
    """Nothing listens there (connection refused or reset): the service is down."""


class InFlight(UnavailableError):
    """The connection broke while a write was in flight: it may or may not have been applied.

    A drill counts such a write as *unknown*, never as failed (it may have committed).
    """


def _number(value: Any, kind: type) -> Any:
    if value is None or isinstance(value, bool):
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def as_int(value: Any) -> int | None:
    """A number from a service's answer as int; None when absent or not a number."""
    return _number(value, int)


def as_float(value: Any) -> float | None:
    """A number from a service's answer as float; None when absent or not a number."""
    return _number(value, float)


def warm_up(*libraries: str) -> None:
    """Import client libraries and their connectors before a deadline starts: a first
    import costs tens of milliseconds that are not network time (and probe threads
    importing at once wait on each other's import locks)."""
    import importlib

    for name in libraries:
        importlib.import_module(name)
        connector = {"httpx": "http", "psycopg": "postgres", "redis": "redis"}.get(name)
        if connector:
            importlib.import_module(f"prontuario_cli.connect.{connector}")
    importlib.import_module("prontuario_cli.connect.haproxy")
