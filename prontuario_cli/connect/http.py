"""HTTP through httpx, bounded by the deadline, errors converted: the one HTTP client.

Patroni's REST API, etcd's health, the stats pages and the lab's stand-in are all
called through :func:`request` (or its GET shorthands). Environment proxies are
ignored (``trust_env=False``): these calls stay on the hospital network. The Cloud SQL
Admin API, which must honour a proxy, has its own client in ``connect/cloudsql.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prontuario_cli.connect import Refused, TimedOut
from prontuario_cli.errors import OperationFailed, UnavailableError


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status code and body."""

    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self, url: str = "") -> Any:
        import json

        try:
            return json.loads(self.body)
        except ValueError:
            raise OperationFailed(f"{url or 'HTTP'}: HTTP {self.status}, the answer is not JSON") from None


def host_for_url(address: str) -> str:
    """An address as it goes in a URL (IPv6 in brackets)."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def url_of(address: str, port: int, path: str) -> str:
    return f"http://{host_for_url(address)}:{port}{path}"


def request(
    method: str,
    url: str,
    deadline: float,
    *,
    json_body: Any = None,
    auth: tuple[str, str] | None = None,
    accept_status: tuple[int, ...] | None = (),
) -> Answer:
    """One request, bounded by ``deadline`` (``time.monotonic()``).

    Any 2xx is accepted, plus the codes in ``accept_status``; ``accept_status=None``
    accepts every status (the caller reads it, e.g. a health endpoint's 200/503).
    Raises Refused (nothing listens), TimedOut (no answer in time), UnavailableError
    (any other transport failure) or OperationFailed (an unaccepted status).
    """
    import httpx

    left = deadline - time.monotonic()
    if left <= 0:
        raise TimedOut(f"{url}: no time left")
    try:
        # httpx's timeout applies per phase (connect, read); the caller's deadline caps the rest.
        with httpx.Client(timeout=httpx.Timeout(left), trust_env=False) as client:
            response = client.request(method, url, json=json_body, auth=auth, headers={"Accept": "application/json, text/plain"})
    except httpx.ConnectError as exc:
        if "refused" in str(exc).lower():
            raise Refused(f"{url}: connection refused", hint="is the service running there?") from None
        raise UnavailableError(f"{url}: cannot connect: {exc}") from None
    except httpx.TimeoutException:
        raise TimedOut(f"{url}: no answer within the timeout") from None
    except httpx.HTTPError as exc:
        raise UnavailableError(f"{url}: {type(exc).__name__}: {exc}") from None
    answer = Answer(response.status_code, response.content)
    if accept_status is not None and not (200 <= answer.status < 300 or answer.status in accept_status):
        detail = answer.text.strip()[:200]
        raise OperationFailed(f"{url}: HTTP {answer.status}" + (f" {detail}" if detail else ""))
    return answer


def get_json(url: str, deadline: float, *, accept_status: tuple[int, ...] = ()) -> tuple[int, Any]:
    """GET ``url``; return (status code, parsed JSON body).

    Any 2xx is accepted, plus the codes in ``accept_status`` (Patroni answers 503
    with a JSON body on some endpoints). Raises as :func:`request`.
    """
    answer = request("GET", url, deadline, accept_status=accept_status)
    return answer.status, answer.json(url)


def get_text(url: str, deadline: float) -> str:
    """GET ``url``; return the body as text (2xx only). Errors as :func:`request`."""
    return request("GET", url, deadline).text


def get_status(url: str, deadline: float) -> int:
    """The status code of a GET, whatever it is (health endpoints answer 200 or 503)."""
    return request("GET", url, deadline, accept_status=None).status
