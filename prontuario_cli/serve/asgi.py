"""What the Whisper and FaceNet servers share, on Starlette + uvicorn (one process, one model).

- ``/health``: liveness (the process answers); ``/ready``: the model is loaded **and** a
  real probe (one clip, one image) passed since start — what HAProxy checks; ``/status``:
  what ``serve status`` shows (state, model and digest, resident memory, uptime, queue
  depth, requests served).
- One worker thread runs the model; requests wait in a bounded queue, and a request that
  finds it full gets 503 with ``Retry-After`` at once.
- A body larger than the limit gets 413 before it is read to the end.
- The access log has method, path, status, latency and response size — never a query
  string, a header value, a request or a response body: patient audio and faces must not
  reach a log (LGPD).
- uvicorn finishes in-flight requests on SIGTERM (graceful shutdown, bounded).

Imported only inside the server processes: Starlette, uvicorn and the model runtimes
never load for ``prontuario --help``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

ACCESS = logging.getLogger("prontuario.serve.access")
LOG = logging.getLogger("prontuario.serve")


class Busy(Exception):
    """The queue is full: answer 503 with Retry-After."""


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict:
    """OpenAI's error shape: ``{"error": {"message", "type", "code"}}``."""
    return {"error": {"message": message, "type": kind, "code": code}}


@dataclass
class ServerState:
    kind: str  # llm | stt | face
    model: str
    version: str
    path: str
    started: float = field(default_factory=time.monotonic)
    ready: bool = False
    ready_reason: str = "loading the model"
    requests: int = 0
    failed: int = 0
    worker: "Worker | None" = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, ok: bool) -> None:
        with self._lock:
            self.requests += 1
            if not ok:
                self.failed += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "state": "ready" if self.ready else "not-ready",
            "ready": self.ready,
            "reason": "" if self.ready else self.ready_reason,
            "model": self.model,
            "version": self.version,
            "path": self.path,
            "pid": os.getpid(),
            "rss_bytes": resident_bytes(),
            "uptime_s": round(time.monotonic() - self.started, 1),
            "queue_depth": self.worker.waiting if self.worker else 0,
            "queue_limit": self.worker.limit if self.worker else 0,
            "requests": self.requests,
            "failed": self.failed,
        }


def resident_bytes() -> int | None:
    """This process's resident memory now (Linux: /proc; macOS: the peak, from getrusage)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # bytes on macOS
    except (ImportError, OSError):
        return None


class Worker:
    """One thread runs the model; at most ``limit`` requests wait for it (then: Busy)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.waiting = 0  # queued or running
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self._lock:
            if self.waiting >= self.limit:
                raise Busy()
            self.waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            with self._lock:
                self.waiting -= 1

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` on the model thread now and wait for it, outside the queue (load and probe at start:
        MLX streams are per thread, so the model is loaded on the thread that will run it)."""
        return self._pool.submit(fn, *args).result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class AccessLog:
    """ASGI middleware: one line per request — method, path, status, latency, size. No bodies."""

    def __init__(self, app, state: ServerState, paths: frozenset[str] = frozenset()):
        self.app = app
        self.state = state
        self.paths = paths  # the routes served; any other path is client text and is logged as "(other)"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.monotonic()
        seen = {"status": 500, "bytes": 0}

        async def sending(message):
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope.get("path", "")
            if self.paths and path not in self.paths:
                path = "(other)"
            if path not in ("/health", "/ready", "/status"):
                self.state.count(seen["status"] < 400)
            ACCESS.info("%s %s %d %.1fms %dB", scope.get("method", "-"), path, seen["status"], (time.monotonic() - started) * 1000, seen["bytes"])


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes (declared or counted as it arrives)."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await _json(send, 413, error_body(f"the request body is larger than {self.limit} bytes", code="request_too_large"))
        received = 0

        async def counting():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, counting, send)
        except _TooLarge:
            await _json(send, 413, error_body(f"the request body is larger than {self.limit} bytes", code="request_too_large"))


class _TooLarge(Exception):
    pass


async def _json(send, status: int, body: dict, headers: list | None = None) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": payload})


def build_app(state: ServerState, routes: list, *, load: Callable[[], None], probe: Callable[[], None], limit_bytes: int, queue: int,
              unload: Callable[[], None] | None = None):
    """The Starlette app: the model's routes, /health, /ready, /status; load then probe at start;
    ``unload`` (optional) runs on the model thread at shutdown, after the last request."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    state.worker = Worker(queue)

    async def health(request):
        return JSONResponse({"status": "ok"})

    async def ready(request):
        if state.ready:
            return JSONResponse({"ready": True, "model": state.model, "version": state.version})
        return JSONResponse({"ready": False, "reason": state.ready_reason}, status_code=503)

    async def status(request):
        return JSONResponse(state.snapshot())

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        def start() -> None:
            try:
                state.ready_reason = "loading the model"
                load()
                state.ready_reason = "running the readiness probe"
                probe()
                state.ready, state.ready_reason = True, ""
                LOG.info("ready: %s %s", state.model, state.version)
            except Exception as exc:  # the process stays up, not ready, and says why
                state.ready_reason = f"{type(exc).__name__}: {exc}"[:300]
                LOG.error("not ready: %s", state.ready_reason)

        threading.Thread(target=start, name="load", daemon=True).start()
        yield
        if unload is not None:
            try:
                state.worker.call(unload)
            except Exception as exc:  # noqa: BLE001 - stopping anyway: say why, once
                LOG.warning("unload failed: %s", type(exc).__name__)
        state.worker.shutdown()

    every = [*routes, Route("/health", health), Route("/ready", ready), Route("/status", status)]
    paths = frozenset(getattr(route, "path", "") for route in every)
    return Starlette(
        routes=every,
        middleware=[Middleware(AccessLog, state=state, paths=paths), Middleware(BodyLimit, limit=limit_bytes)],
        lifespan=lifespan,
    )


async def run_model(state: ServerState, fn: Callable[..., Any], *args: Any):
    """Run ``fn`` on the model's worker; a JSONResponse 503 (queue full) or the result."""
    from starlette.responses import JSONResponse

    if not state.ready:
        return JSONResponse(error_body(f"the model is not ready: {state.ready_reason}", "server_error", "not_ready"), status_code=503,
                            headers={"Retry-After": "5"})
    try:
        return await state.worker.run(fn, *args)
    except Busy:
        return JSONResponse(error_body("the server is busy: the queue is full", "server_error", "queue_full"), status_code=503,
                            headers={"Retry-After": "2"})


def configure_logging(log_file: str | None) -> None:
    """Our own log lines only (uvicorn's access log is off: it would log query strings)."""
    handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def serve(app, host: str, port: int, *, graceful_s: float = 30.0) -> None:
    """uvicorn, one process, a deep listen backlog, graceful shutdown on SIGTERM (then exit 0)."""
    import signal

    import uvicorn

    # uvicorn re-raises the signal that stopped it once it has shut down; under SIGTERM's
    # default action the process would die (143) after a clean stop. uvicorn puts this
    # no-op handler back before re-raising, so serve() returns and the process exits 0.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(app, host=host, port=port, workers=1, access_log=False, log_config=None, backlog=512,
                timeout_graceful_shutdown=graceful_s, server_header=False, date_header=False)
