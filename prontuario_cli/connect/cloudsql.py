"""The Cloud SQL Admin API v1 over httpx, and the two ways to reach a Cloud SQL database.

Credentials rule
    An ``http://`` base URL on a loopback host (127.0.0.1, ::1, localhost) is the lab's
    stand-in: requests go out **anonymous** and no Google library is imported. Any
    other base URL must be ``https://`` and is called with google-auth credentials:
    the service-account JSON named by ``cloud.credentials_file``, else Application
    Default Credentials. Tokens are refreshed before they expire.

Errors
    Every HTTP status and transport failure becomes a ProntuarioError naming what
    failed and what to try: 401 (which credential), 403 (which credential and which
    IAM permission), 404 (which instance or operation), 409 (an operation is already
    running), 429/5xx (Google unavailable), timeouts.

Database sessions
    :func:`dsn_session` is a bounded read-write psycopg connection to a DSN (the lab,
    or a private IP); :class:`ConnectorSession` goes through the Cloud SQL Python
    Connector with the pg8000 driver (production). Both answer ``execute(sql, params)``
    with a list of dict rows and raise only ProntuarioError subclasses.
"""

from __future__ import annotations

import ipaddress
import json
import math
import time
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import urlparse

from prontuario_cli.connect import Refused, TimedOut
from prontuario_cli.errors import (
    ConfigError,
    LockedError,
    OperationFailed,
    PermissionProblem,
    ProntuarioError,
    SecretError,
    UnavailableError,
)

SCOPES = ("https://www.googleapis.com/auth/sqlservice.admin",)
LOOPBACK_NAMES = ("localhost",)


class ApiError(OperationFailed):
    """An HTTP error answer of the Admin API (``status`` and Google's ``reason``)."""

    def __init__(self, message: str, *, status: int, reason: str = "", hint: str | None = None, exit_code=None):
        super().__init__(message, hint=hint, exit_code=exit_code)
        self.status = status
        self.reason = reason


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """409: another operation is running on the instance."""


class Denied(ApiError):
    """401 or 403."""


def is_loopback_http(base_url: str) -> bool:
    """True for ``http://`` on 127.0.0.0/8, ::1 or localhost (the lab's stand-in)."""
    url = urlparse(base_url)
    if url.scheme != "http" or not url.hostname:
        return False
    if url.hostname in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(url.hostname).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- credentials


class Credentials:
    """Who the Admin API calls are made as; ``headers()`` gives a fresh bearer token."""

    def __init__(self, google_credentials=None, description: str = "anonymous (lab stand-in)"):
        self._creds = google_credentials
        self.description = description

    @property
    def anonymous(self) -> bool:
        return self._creds is None

    @property
    def google(self):
        return self._creds

    def headers(self, timeout_s: float) -> dict[str, str]:
        if self._creds is None:
            return {}
        if not self._creds.valid:
            self.refresh(timeout_s)
        return {"Authorization": f"Bearer {self._creds.token}"}

    def refresh(self, timeout_s: float) -> None:
        from google.auth import exceptions as gexc

        try:
            self._creds.refresh(_HttpxAuthRequest(timeout_s))
        except gexc.RefreshError as exc:
            raise PermissionProblem(
                f"cannot get an access token for {self.description}: {_first_line(exc)}",
                hint="check that the key is valid and not revoked (or run: gcloud auth application-default login)",
            ) from None
        except gexc.TransportError as exc:
            raise UnavailableError(f"cannot reach Google's token endpoint for {self.description}: {_first_line(exc)}") from None


def load_credentials(base_url: str, credentials_file: str | None) -> Credentials:
    """Credentials for ``base_url`` following the rule in the module docstring."""
    if is_loopback_http(base_url):
        return Credentials(None)
    if not base_url.startswith("https://"):
        raise ConfigError(
            f"cloud.api_base_url {base_url!r}: plain http is only allowed on a loopback address (the lab)",
            hint="use https://sqladmin.googleapis.com",
        )
    import os
    from pathlib import Path

    from google.auth import exceptions as gexc

    if credentials_file:
        from google.oauth2 import service_account

        from prontuario_cli.secrets import read_secret_file

        path = os.path.expanduser(credentials_file)
        # A private key: the same rule as every other secret file (regular, owner-only, bounded).
        try:
            text = read_secret_file(Path(path), "cloud.credentials_file")
        except SecretError as exc:
            hint = "copy the service-account JSON key there (mode 0600)" if "does not exist" in exc.message else exc.hint
            raise ConfigError(exc.message, hint=hint) from None
        try:
            info = json.loads(text)
            if not isinstance(info, dict):
                raise TypeError("not a JSON object")
            creds = service_account.Credentials.from_service_account_info(info, scopes=list(SCOPES))
        except (ValueError, TypeError, KeyError, gexc.GoogleAuthError) as exc:
            raise ConfigError(f"cloud.credentials_file {path} is not a service-account JSON key: {_first_line(exc)}") from None
        email = getattr(creds, "service_account_email", None) or "unknown"
        return Credentials(creds, f"service account {email} (key {path})")
    try:
        import google.auth

        creds, project = google.auth.default(scopes=list(SCOPES))
    except gexc.DefaultCredentialsError as exc:
        raise ConfigError(
            f"no Google credentials: cloud.credentials_file is not set and Application Default Credentials were not found ({_first_line(exc)})",
            hint="set cloud.credentials_file to a service-account key, or run: gcloud auth application-default login",
        ) from None
    who = getattr(creds, "service_account_email", None) or type(creds).__name__
    return Credentials(creds, f"application default credentials ({who}{', project ' + project if project else ''})")


class _HttpxAuthRequest:
    """google-auth's transport interface on httpx (token refresh goes through httpx too)."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        import httpx
        from google.auth import exceptions as gexc

        try:
            with httpx.Client(timeout=timeout or self.timeout_s, trust_env=True) as client:
                response = client.request(method, url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise gexc.TransportError(f"{type(exc).__name__}: {exc}") from None
        return _AuthResponse(response.status_code, dict(response.headers), response.content)


@dataclass
class _AuthResponse:
    status: int
    headers: dict
    data: bytes


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- the Admin API

PERMISSIONS = {
    "instances.get": "cloudsql.instances.get",
    "instances.promoteReplica": "cloudsql.instances.promoteReplica",
    "operations.get": "cloudsql.instances.get",
    "operations.list": "cloudsql.instances.get",
}


class AdminApi:
    """Raw calls: ``call(method_name, http_method, path)`` -> parsed JSON, errors mapped."""

    def __init__(self, base_url: str, credentials: Credentials, *, project: str, timeout_s: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.project = project
        self.timeout_s = timeout_s

    def url(self, path: str) -> str:
        return f"{self.base_url}/v1/projects/{self.project}/{path.lstrip('/')}"

    def call(self, api_method: str, http_method: str, path: str, *, subject: str, params: dict | None = None,
             timeout_s: float | None = None) -> dict:
        """One request. ``subject`` names the instance or operation for error messages."""
        import httpx

        timeout = timeout_s or self.timeout_s
        url = self.url(path)
        headers = {"Accept": "application/json", **self.credentials.headers(timeout)}
        try:
            with httpx.Client(timeout=httpx.Timeout(timeout), trust_env=not self.credentials.anonymous) as client:
                if http_method == "POST":
                    response = client.post(url, headers=headers, params=params, content=b"")
                else:
                    response = client.request(http_method, url, headers=headers, params=params)
        except httpx.TimeoutException:
            raise TimedOut(
                f"Cloud SQL Admin API {api_method} ({subject}): no answer within {timeout:g} s from {self.base_url}",
                hint="Google may be slow or unreachable from here; check the network path (proxy, firewall)",
            ) from None
        except httpx.ConnectError as exc:
            if "refused" in str(exc).lower():
                raise Refused(f"Cloud SQL Admin API {api_method}: connection refused by {self.base_url}", hint="check cloud.api_base_url") from None
            raise UnavailableError(f"Cloud SQL Admin API {api_method}: cannot connect to {self.base_url}: {exc}") from None
        except httpx.HTTPError as exc:
            raise UnavailableError(f"Cloud SQL Admin API {api_method}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise self.map_error(api_method, subject, response.status_code, response.content)
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise OperationFailed(f"Cloud SQL Admin API {api_method} ({subject}): the answer is not JSON (HTTP {response.status_code})") from None

    def map_error(self, api_method: str, subject: str, status: int, body: bytes) -> ProntuarioError:
        """The HTTP error ``status`` of ``api_method`` as a ProntuarioError the on-call can act on."""
        message, reason = _google_error(body)
        who = self.credentials.description
        detail = f": {message}" if message else ""
        where = f"project {self.project}"
        if status == 401:
            return Denied(
                f"Cloud SQL Admin API {api_method}: not authenticated (401) as {who}{detail}",
                status=status, reason=reason, exit_code=PermissionProblem.exit_code,
                hint="the token was refused: check cloud.credentials_file (or application default credentials) and the key's validity",
            )
        if status == 403:
            permission = PERMISSIONS.get(api_method, "cloudsql.instances.get")
            return Denied(
                f"Cloud SQL Admin API {api_method} on {subject}: permission denied (403) for {who}{detail}",
                status=status, reason=reason, exit_code=PermissionProblem.exit_code,
                hint=f"grant IAM permission {permission} in {where} (role Cloud SQL Admin, or a custom role), and check the Admin API is enabled",
            )
        if status == 404:
            return NotFound(
                f"Cloud SQL Admin API {api_method}: {subject} not found in {where} (404){detail}",
                status=status, reason=reason, exit_code=ConfigError.exit_code,
                hint="check cloud.project, cloud.sql_instance / cloud.drill_instance (or --instance)",
            )
        if status == 409:
            return Conflict(
                f"Cloud SQL Admin API {api_method}: another operation is already running on {subject} (409){detail}",
                status=status, reason=reason, exit_code=LockedError.exit_code,
                hint="wait for it to finish (prontuario gcp status), then run the command again with --resume",
            )
        if status == 429 or status >= 500:
            return ApiError(
                f"Cloud SQL Admin API {api_method} ({subject}): Google is unavailable (HTTP {status}){detail}",
                status=status, reason=reason, exit_code=UnavailableError.exit_code,
                hint="retry in a minute; see https://status.cloud.google.com",
            )
        return ApiError(f"Cloud SQL Admin API {api_method} ({subject}): HTTP {status}{detail}", status=status, reason=reason)


def _google_error(body: bytes) -> tuple[str, str]:
    """(message, reason) from Google's JSON error body; empty strings if it is not one."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return (body[:200].decode(errors="replace").strip(), "")
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return ("", "")
    reasons = [e.get("reason", "") for e in error.get("errors") or [] if isinstance(e, dict)]
    return (str(error.get("message") or "").strip(), reasons[0] if reasons else str(error.get("status") or ""))


# --------------------------------------------------------------------------- database sessions


@dataclass(frozen=True)
class DsnTarget:
    host: str
    port: int
    user: str
    dbname: str
    password: str | None = None

    @property
    def where(self) -> str:
        return f"Cloud SQL PostgreSQL {self.host}:{self.port}/{self.dbname}"


def dsn_session(target: DsnTarget, deadline: float, application_name: str = "prontuario-gcp"):
    """A bounded read-write session to a DSN: ``with dsn_session(t, deadline) as s: s.execute(...)``.

    The same bounded session as every other PostgreSQL call (statement timeout, TCP
    user timeout, a watchdog at the deadline), without the read-only default.
    """
    from prontuario_cli.connect.postgres import PgTarget, session

    pg = PgTarget(target.host, target.port, target.user, target.dbname, target.password, application_name)
    return session(pg, deadline, read_only=False)


class ConnectorSession:
    """A session through the Cloud SQL Python Connector (pg8000 driver, private IP)."""

    def __init__(self, connection_name: str, user: str, dbname: str, password: str | None, credentials: Credentials, deadline: float):
        self.connection_name = connection_name
        self.user = user
        self.dbname = dbname
        self.password = password
        self.credentials = credentials
        self.deadline = deadline
        self.connector = None
        self.conn = None

    @property
    def where(self) -> str:
        return f"Cloud SQL {self.connection_name}/{self.dbname} (connector, private IP)"

    def __enter__(self) -> "ConnectorSession":
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimedOut(f"{self.where}: no time left to connect")
        try:
            from google.cloud.sql.connector import Connector, IPTypes
        except ImportError:
            raise ConfigError(
                "the Cloud SQL Python Connector is not installed",
                hint="pip install 'cloud-sql-python-connector[pg8000]' (./install.sh does it)",
            ) from None
        try:
            self.connector = Connector(ip_type=IPTypes.PRIVATE, timeout=max(1, math.ceil(left)), credentials=self.credentials.google)
            kwargs: dict[str, Any] = dict(user=self.user, db=self.dbname, timeout=max(1, math.ceil(left)))
            if self.password is not None:
                kwargs["password"] = self.password
            self.conn = self.connector.connect(self.connection_name, "pg8000", **kwargs)
            self.conn.autocommit = True
        except Exception as exc:  # noqa: BLE001 - the connector raises many unrelated types
            self.__exit__(None, None, None)
            raise self._convert(exc) from None
        return self

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        # pg8000 uses the %s paramstyle of psycopg ("format"), so the SQL is shared.
        if time.monotonic() >= self.deadline:
            raise TimedOut(f"{self.where}: no time left")
        try:
            cur = self.conn.cursor()
            cur.execute(sql, tuple(params) if params else None)
            if not cur.description:
                return []
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        except Exception as exc:  # noqa: BLE001
            raise self._convert(exc) from None

    def _convert(self, exc: BaseException) -> ProntuarioError:
        text = _first_line(exc)
        lowered = text.lower()
        if isinstance(exc, ProntuarioError):
            return exc
        if "timeout" in lowered or "timed out" in lowered:
            return TimedOut(f"{self.where}: no answer in time ({text})")
        if "password authentication failed" in lowered or "28p01" in lowered:
            return PermissionProblem(f"{self.where}: login refused for {self.user}", hint="check cloud.data.user and cloud.data.password")
        if "403" in lowered or "not authorized" in lowered or "permission" in lowered:
            return PermissionProblem(
                f"{self.where}: the connector was refused as {self.credentials.description}: {text}",
                hint="grant cloudsql.instances.connect (role Cloud SQL Client) to that principal",
            )
        if type(exc).__module__.startswith("pg8000") and "DatabaseError" in type(exc).__name__:
            return OperationFailed(f"{self.where}: query failed: {text}")
        return UnavailableError(f"{self.where}: {type(exc).__name__}: {text}")

    def __exit__(self, *exc_info) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001
                pass
            self.conn = None
        if self.connector is not None:
            try:
                self.connector.close()
            except Exception:  # noqa: BLE001
                pass
            self.connector = None
