"""Connectors: every network call prontuario makes, bounded by a timeout.

Each connector converts its library's errors where they happen into
:class:`~prontuario_cli.errors.ProntuarioError` subclasses, so core code never sees
a psycopg, redis, httpx or socket exception. The libraries are imported inside the
functions that use them (fast start for the CLI).
"""

from __future__ import annotations

from prontuario_cli.errors import UnavailableError


class TimedOut(UnavailableError):
    """The service accepted the connection (or nothing) but did not answer in time.

    Different from a refused connection: a hung process (SIGSTOP, a stuck disk)
    looks like this, and a check reports it as UNKNOWN rather than down.
    """


class Refused(UnavailableError):
    """Nothing listens there (connection refused or reset): the service is down."""
