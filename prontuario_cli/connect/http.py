"""HTTP GETs through httpx, bounded by the deadline, errors converted."""

from __future__ import annotations

import time
from typing import Any

from prontuario_cli.connect import Refused, TimedOut
from prontuario_cli.errors import OperationFailed, UnavailableError


def _get(url: str, deadline: float, accept_status: tuple[int, ...]):
    import httpx

    left = deadline - time.monotonic()
    if left <= 0:
        raise TimedOut(f"{url}: no time left")
    try:
        # httpx's timeout applies per phase (connect, read); the caller's deadline caps the rest.
        with httpx.Client(timeout=httpx.Timeout(left), trust_env=False) as client:
            response = client.get(url, headers={"Accept": "application/json, text/plain"})
    except httpx.ConnectError as exc:
        if "refused" in str(exc).lower():
            raise Refused(f"{url}: connection refused", hint="is the service running there?") from None
        raise UnavailableError(f"{url}: cannot connect: {exc}") from None
    except httpx.TimeoutException:
        raise TimedOut(f"{url}: no answer within the health-check timeout") from None
    except httpx.HTTPError as exc:
        raise UnavailableError(f"{url}: {type(exc).__name__}: {exc}") from None
    if not (200 <= response.status_code < 300 or response.status_code in accept_status):
        raise OperationFailed(f"{url}: HTTP {response.status_code}")
    return response


def get_json(url: str, deadline: float, *, accept_status: tuple[int, ...] = ()) -> tuple[int, Any]:
    """GET ``url``; return (status code, parsed JSON body).

    Any 2xx is accepted, plus the codes in ``accept_status`` (Patroni answers 503
    with a JSON body on some endpoints). Raises Refused, TimedOut, UnavailableError
    or OperationFailed.
    """
    response = _get(url, deadline, accept_status)
    try:
        return response.status_code, response.json()
    except ValueError:
        raise OperationFailed(f"{url}: the answer is not JSON") from None


def get_text(url: str, deadline: float) -> str:
    """GET ``url``; return the body as text (2xx only). Errors as :func:`get_json`."""
    return _get(url, deadline, ()).text
