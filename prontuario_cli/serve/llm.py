"""MedGemma on mlx-lm's own server (ModelProvider, ResponseGenerator, APIHandler), pinned to one model.

``run()`` serves the verified directory ``serve.options.resolve()`` handed over, in the
foreground, until SIGTERM or SIGINT. mlx-lm's server loads whatever model a request names
(and unloads the configured one first, even when the other load then fails); here:

- **Pinned.** A request may name the model by its manifest name (``medgemma-4b``), by
  mlx-lm's alias ``default_model``, or not at all. Anything else — another name, a path,
  a draft model, adapters — gets 404/400 in OpenAI's error shape before mlx-lm sees it,
  and the loaded model is never touched. Two layers: a guard in front of mlx-lm's handler
  (it parses the body anyway, to keep malformed bodies out of mlx-lm's log), and a
  ModelProvider that refuses any load but the first one of the pinned directory, so a
  request the guard let through still cannot unload it. Every accepted request is
  normalised to one model description, so the batch generator is never drained for a
  mere change of alias. The guard's cost, measured by ``benchmarks/serve_llm``, is a
  second JSON parse and a few lookups: 2–8 µs for a short chat body (under 0.05 % of an
  8-token completion of the tiny test model), about 0.2 ms for a 77 KiB history (whose
  prefill takes seconds on MedGemma); end to end the pinned server's median was
  0.96–1.04× bare mlx-lm's, i.e. within the noise.
- **Offline.** ``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE`` (an empty private directory) are
  set before mlx-lm is imported; remote code is never trusted. Image parts (mlx-lm would
  fetch an http URL from the server) are refused: MedGemma is served text-only.
- **Readiness.** ``/health`` is liveness (the generation thread is alive), answered on
  its own thread; ``/ready`` is 200 only once the model is loaded **and** a real 1-token
  completion passed since start (503 with the reason before, and while stopping);
  ``/status`` has the keys of :meth:`serve.asgi.ServerState.snapshot`.
- **Limits.** At most ``options.queue`` completions in flight (queued or generating),
  then 503 with ``Retry-After``; a body over ``options.max_bytes`` gets 413 from its
  ``Content-Length`` without being read; a listen backlog of 512 (mlx-lm's 5 overflows
  at 50 clients); no CORS headers at all (mlx-lm allows ``*``).
- **Logs hold no bodies** (LGPD). One access line per request — method, path without the
  query string (a path this server does not serve is logged as ``(other)``: it is client
  text too), status, latency, response size; http.server's own lines are off;
  malformed bodies are answered here, so mlx-lm's "Raw body" line never runs; a filter
  drops mlx-lm's debug records and any line that names a body.
- **Graceful stop.** SIGTERM/SIGINT: the state turns not ready ("stopping"), the listener
  stops accepting, requests in flight finish (at most :data:`GRACEFUL_S`), the generation
  thread stops (at most :data:`GENERATION_STOP_S`), exit 0.

Imported only inside the server process (``prontuario serve llm``): mlx and mlx-lm are
imported by :func:`run`, after the offline settings.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from prontuario_cli.serve.asgi import ACCESS, LOG, ServerState, configure_logging, error_body
from prontuario_cli.serve.options import Loaded, ServeOptions

ALIAS = "default_model"  # mlx-lm's own name for the model it was started with
COMPLETIONS = ("/v1/chat/completions", "/chat/completions", "/v1/completions")
PROBES = ("/health", "/ready", "/status")
BACKLOG = 512
GRACEFUL_S = 30.0  # requests in flight at SIGTERM may finish within this
GENERATION_STOP_S = 10.0
LOAD_WITHIN_S = 900.0  # a 4B model loads in seconds; a stuck load is reported, not waited on forever
SOCKET_TIMEOUT_S = 60.0  # a client that stops sending or reading is dropped
LINGER_S = 1.0  # after a 413: how long unread bytes are drained so the client reads the answer
LINGER_BYTES = 8 << 20
BODY_MARKERS = ("Raw body", "Request Body", "Incoming Request", "Outgoing Response")
LONGEST_LINE = 2000


# --------------------------------------------------------------------------- pure parts


def pin_problem(body: dict, name: str) -> tuple[int, str, str] | None:
    """(status, message, code) when a request asks for anything but the pinned model; None when it may run."""
    model = body.get("model", ALIAS)
    if model not in (name, ALIAS):
        return 404, f"this server serves only the model '{name}'", "model_not_found"
    if body.get("draft_model", ALIAS) not in (ALIAS, None):
        return 400, "this server takes no draft model", "unsupported_parameter"
    if body.get("adapters") is not None:
        return 400, "this server takes no adapters", "unsupported_parameter"
    return None


def shape_problem(body: dict, path: str) -> str | None:
    """Why a completion body cannot run (said in OpenAI's shape rather than mlx-lm's), or None."""
    if path == "/v1/completions":
        return None if isinstance(body.get("prompt"), str) else "'prompt' must be a string"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return "'messages' must be a non-empty list of messages"
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(not isinstance(p, dict) or p.get("type") != "text" for p in content):
            return "only text content is served (no images, audio or files)"
    return None


class Admission:
    """At most ``limit`` completions in flight (queued in mlx-lm's generator or generating)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.waiting = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.waiting >= self.limit:
                return False
            self.waiting += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.waiting -= 1


class InFlight:
    """Requests being handled now (from their request line on: an idle connection is not one), so a stop can wait for them."""

    def __init__(self):
        self.count = 0
        self._idle = threading.Condition()

    def enter(self) -> None:
        with self._idle:
            self.count += 1

    def leave(self) -> None:
        with self._idle:
            self.count -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self.count == 0, timeout=timeout_s)


class NoBodies(logging.Filter):
    """Last line of defence: no mlx-lm debug record, no line naming a body, no overlong line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "root" and record.levelno < logging.INFO:  # mlx-lm logs bodies and tokens at debug
            return False
        message = str(record.msg)
        if any(marker in message for marker in BODY_MARKERS):
            return False
        if len(message) > LONGEST_LINE:
            record.msg, record.args = "a %d-character log line was dropped (it could hold request data)", (len(message),)
        return True


def one_line(text: str, limit: int = 300) -> str:
    """A reason for /ready and the log: one line, bounded."""
    return " ".join(text.split())[:limit]


def mlx_lm_args(path: str) -> argparse.Namespace:
    """What mlx-lm's ``main()`` would parse, for one local directory: its defaults, but no CORS and no remote code."""
    from mlx_lm.generate import DEFAULT_QUANTIZED_KV_START

    return argparse.Namespace(
        model=path, adapter_path=None, draft_model=None, num_draft_tokens=3, trust_remote_code=False,
        allowed_origins=[], chat_template="", use_default_chat_template=False, chat_template_args={},
        temp=0.0, top_p=1.0, top_k=0, min_p=0.0, max_tokens=512,
        decode_concurrency=32, prompt_concurrency=8, prefill_step_size=2048,
        prompt_cache_size=10, prompt_cache_bytes=None,
        kv_bits=None, kv_group_size=64, quantized_kv_start=DEFAULT_QUANTIZED_KV_START, pipeline=False,
    )


def offline_hub() -> tempfile.TemporaryDirectory:
    """Hub access off, and an empty private hub cache, before huggingface_hub reads its settings."""
    early = [name for name in ("huggingface_hub", "transformers", "mlx_lm") if name in sys.modules]
    if early:
        raise RuntimeError(f"{', '.join(early)} imported before the offline settings: they would not apply")
    cache = tempfile.TemporaryDirectory(prefix="prontuario-hf-")
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_CACHE=cache.name)
    return cache


# --------------------------------------------------------------------------- the server


@dataclass
class Pinned:
    """What the handlers share: the pinned model, its state, the limits, the generator."""

    options: ServeOptions
    loaded: Loaded
    state: ServerState
    admission: Admission
    generator: Any = None  # mlx_lm.server.ResponseGenerator
    provider: Any = None  # PinnedProvider
    fingerprint: str = ""
    in_flight: InFlight = field(default_factory=InFlight)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def routes(self) -> tuple[str, ...]:
        return (*COMPLETIONS, *PROBES, "/v1/models", f"/v1/models/{self.loaded.name}")

    def refresh(self) -> None:
        """Not ready once the generation thread has died or a stop began."""
        if self.stopping.is_set():
            self.state.ready, self.state.ready_reason = False, "stopping"
        elif self.generator is not None and not self.generator.generation_available():
            self.state.ready = False
            self.state.ready_reason = self.provider.failure or "the generation thread stopped"


def _classes():
    """mlx-lm's server classes, pinned (built here: mlx-lm is imported only after :func:`offline_hub`)."""
    from http.server import ThreadingHTTPServer

    from mlx_lm import server as upstream

    class NotPinned(RuntimeError):
        pass

    class PinnedProvider(upstream.ModelProvider):
        """Loads the pinned directory once; any other load is refused before the model is dropped."""

        def __init__(self, cli_args: argparse.Namespace, name: str):
            super().__init__(cli_args)
            self.pinned_key = (cli_args.model, None, None)
            self._model_map[name] = cli_args.model
            self._adapter_map[name] = None
            self.loads = 0
            self.failure = ""

        def _load(self, model_path, adapter_path=None, draft_model_path=None):
            if (model_path, adapter_path, draft_model_path) != self.pinned_key or self.loads:
                raise NotPinned("this server is pinned to its model")
            self.loads += 1
            started = time.monotonic()
            try:
                super()._load(model_path, adapter_path, draft_model_path)
            except Exception as exc:
                self.failure = one_line(f"the model did not load: {type(exc).__name__}: {exc}")
                raise
            LOG.info("model loaded (load %d of this process) in %.1f s", self.loads, time.monotonic() - started)

    class PinnedHandler(upstream.APIHandler):
        """mlx-lm's handler behind the pin, the limits, the probes and a body-free access log."""

        timeout = SOCKET_TIMEOUT_S

        def version_string(self) -> str:  # the Server header: no Python or library versions
            return "prontuario-llm"

        def __init__(self, pinned: Pinned, *args, **kwargs):
            self.pinned = pinned
            self._started: float | None = None
            super().__init__(pinned.generator, *args, system_fingerprint=pinned.fingerprint, **kwargs)

        # ---- the access log: method, path, status, latency, size; nothing else
        def setup(self):
            super().setup()
            self.wfile = _Counted(self.wfile)
            self._status, self._path, self._head_bytes = 500, "-", 0

        def parse_request(self):  # runs once the request line is in
            self.pinned.in_flight.enter()
            self._started, self._status, self._path, self._head_bytes = time.monotonic(), 500, "-", 0
            self.wfile.count = 0
            parsed = super().parse_request()
            if parsed:  # a path we do not serve is client text: it is not logged either
                path = self.path.split("?", 1)[0]
                self._path = path if path in self.pinned.routes else "(other)"
            return parsed

        def handle_one_request(self):
            self._started = None
            try:
                super().handle_one_request()
            finally:
                if self._started is not None:
                    self._access()
                    self.pinned.in_flight.leave()

        def _access(self):
            if self._path not in PROBES:
                self.pinned.state.count(self._status < 400)
            size = max(self.wfile.count - self._head_bytes, 0)
            ACCESS.info("%s %s %d %.1fms %dB", self.command or "-", self._path, self._status, (time.monotonic() - self._started) * 1000, size)

        def log_request(self, code="-", size="-"):  # called by send_response: remember the status, log nothing yet
            self._status = int(code) if isinstance(code, int) else 500

        def log_message(self, format, *args):  # http.server's lines carry request lines and query strings
            pass

        def flush_headers(self):
            before = self.wfile.count
            super().flush_headers()
            self._head_bytes += self.wfile.count - before

        def _set_cors_headers(self):  # no CORS: browsers on other origins get nothing
            pass

        # ---- answers of our own
        def _reply(self, status: int, payload: dict, headers: dict | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, code: str, kind: str = "invalid_request_error", headers: dict | None = None) -> None:
            self._reply(status, error_body(message, kind, code), headers)

        def _refuse_unread(self, status: int, message: str, code: str) -> None:
            """Answer before the body is read, then drain a little (bounded) so the client sees the answer, not a reset."""
            self.close_connection = True
            self._error(status, message, code, headers={"Connection": "close"})
            try:
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(0.2)
                deadline, drained = time.monotonic() + LINGER_S, 0
                while time.monotonic() < deadline and drained < LINGER_BYTES:
                    chunk = self.connection.recv(1 << 16)
                    if not chunk:
                        break
                    drained += len(chunk)
            except OSError:
                pass

        def do_GET(self):
            pinned, path = self.pinned, self.path.split("?", 1)[0]
            pinned.refresh()
            if path == "/health":
                alive = pinned.generator.generation_available()
                self._reply(200 if alive else 503, {"status": "ok" if alive else "unavailable"})
            elif path == "/ready":
                if pinned.state.ready:
                    self._reply(200, {"ready": True, "model": pinned.state.model, "version": pinned.state.version})
                else:
                    self._reply(503, {"ready": False, "reason": pinned.state.ready_reason}, {"Retry-After": "5"})
            elif path == "/status":
                self._reply(200, pinned.state.snapshot())
            elif path in ("/v1/models", f"/v1/models/{pinned.loaded.name}"):
                entry = {"id": pinned.loaded.name, "object": "model", "created": self.created, "owned_by": "prontuario"}
                self._reply(200, entry if path != "/v1/models" else {"object": "list", "data": [entry]})
            else:
                self._error(404, "no such endpoint", "not_found")

        def do_OPTIONS(self):
            self._error(405, "no CORS here", "method_not_allowed", headers={"Allow": "GET, POST"})

        def do_POST(self):
            pinned, path = self.pinned, self.path.split("?", 1)[0]
            if path not in COMPLETIONS:
                return self._error(404, "no such endpoint", "not_found")
            declared = self.headers.get("Content-Length")
            if declared is None or self.headers.get("Transfer-Encoding"):
                return self._refuse_unread(411, "send the body with a Content-Length", "length_required")
            if not (declared.isascii() and declared.isdigit()):
                return self._refuse_unread(400, "the Content-Length is not a number", "invalid_content_length")
            if int(declared) > pinned.options.max_bytes:
                return self._refuse_unread(413, f"the request body is larger than {pinned.options.max_bytes} bytes", "request_too_large")
            raw = self.rfile.read(int(declared))
            if len(raw) < int(declared):
                self.close_connection = True
                return self._error(400, "the request body ended early", "incomplete_body")
            try:
                body = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                return self._error(400, "the request body is not UTF-8", "invalid_json")
            except ValueError as exc:  # the position only: never the text
                return self._error(400, f"the request body is not JSON (line {exc.lineno}, column {exc.colno})", "invalid_json")
            if not isinstance(body, dict):
                return self._error(400, "the request body must be a JSON object", "invalid_json")
            problem = pin_problem(body, pinned.loaded.name)
            if problem:
                return self._error(*problem)
            shape = shape_problem(body, path)
            if shape:
                return self._error(400, shape, "invalid_request")
            pinned.refresh()
            if not pinned.state.ready:
                return self._error(503, f"the model is not ready: {pinned.state.ready_reason}", "not_ready", "server_error", {"Retry-After": "5"})
            if not pinned.admission.enter():
                return self._error(503, "the server is busy: the queue is full", "queue_full", "server_error", {"Retry-After": "2"})
            socket_reader, self.rfile, self.path = self.rfile, io.BytesIO(raw), path  # mlx-lm reads the body we checked
            try:
                super().do_POST()
            finally:
                self.rfile = socket_reader
                pinned.admission.leave()

        def handle_completion(self, request, stop_words):
            self.requested_model, self.requested_draft_model, self.adapter = self.pinned.loaded.name, ALIAS, None
            return super().handle_completion(request, stop_words)

    class PinnedHTTPServer(ThreadingHTTPServer):
        """http.server as mlx-lm runs it, with a deep backlog and error lines without request data."""

        request_queue_size = BACKLOG
        daemon_threads = True
        block_on_close = False  # the stop waits for requests itself, bounded

        def __init__(self, address, handler, family):
            self.address_family = family
            super().__init__(address, handler)

        def handle_error(self, request, client_address):
            exc = sys.exc_info()[1]
            if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                LOG.info("a client went away before its answer was sent")
            else:
                LOG.error("a request failed: %s", type(exc).__name__)

    return SimpleNamespace(upstream=upstream, Provider=PinnedProvider, Handler=PinnedHandler, HTTPServer=PinnedHTTPServer, NotPinned=NotPinned)


class _Counted:
    """The handler's socket writer, counting what it sends."""

    def __init__(self, raw):
        self.raw = raw
        self.count = 0

    def write(self, data) -> int:
        written = self.raw.write(data)
        self.count += len(data)
        return written

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        self.raw.close()

    @property
    def closed(self) -> bool:
        return self.raw.closed


def probe_arguments(upstream, name: str, max_tokens: int = 1):
    """Generation arguments for the readiness probe: greedy, ``max_tokens`` tokens, the pinned model."""
    return upstream.GenerationArguments(
        model=upstream.ModelDescription(model=name, draft=ALIAS, adapter=None),
        sampling=upstream.SamplingArguments(temperature=0.0, top_p=1.0, top_k=0, min_p=0.0, xtc_probability=0.0, xtc_threshold=0.0),
        logits=upstream.LogitsProcessorArguments(logit_bias=None, repetition_penalty=0.0, repetition_context_size=20, presence_penalty=0.0,
                                                 presence_context_size=20, frequency_penalty=0.0, frequency_context_size=20),
        stop_words=[], max_tokens=max_tokens, num_draft_tokens=0, logprobs=False, top_logprobs=-1, seed=None, chat_template_kwargs=None,
    )


def become_ready(pinned: Pinned, upstream) -> None:
    """Wait (bounded) for the generation thread to load the model, then run a real 1-token completion."""
    state, deadline = pinned.state, time.monotonic() + LOAD_WITHIN_S
    try:
        while pinned.provider.model is None:
            if not pinned.generator.generation_available():
                raise RuntimeError(pinned.provider.failure or "the generation thread stopped while loading")
            if time.monotonic() > deadline or pinned.stopping.is_set():
                raise RuntimeError(f"the model was not loaded within {LOAD_WITHIN_S:g} s")
            time.sleep(0.05)
        state.ready_reason = "running the readiness probe"
        request = upstream.CompletionRequest("text", "ready", [], None, None)
        context, tokens = pinned.generator.generate(request, probe_arguments(upstream, pinned.loaded.name))
        try:
            produced = sum(1 for _ in tokens)
        finally:
            context.stop()
        if produced != 1:
            raise RuntimeError(f"the readiness probe produced {produced} tokens, not 1")
        if not pinned.stopping.is_set():
            state.ready, state.ready_reason = True, ""
            LOG.info("ready: %s %s", state.model, state.version)
    except Exception as exc:  # noqa: BLE001 - the process stays up, not ready, and says why
        state.ready_reason = one_line(str(exc) if isinstance(exc, RuntimeError) else f"{type(exc).__name__}: {exc}")
        LOG.error("not ready: %s", state.ready_reason)


def _listen(server_class, handler, host: str, port: int):
    from prontuario_cli.errors import OperationFailed

    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        return server_class(address, handler, family)
    except OSError as exc:
        raise OperationFailed(f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint="is another server on that port? (prontuario serve status)") from None


def run(options: ServeOptions, loaded: Loaded) -> None:
    """Serve ``loaded`` with mlx-lm's server, pinned, until SIGTERM or SIGINT; returns after a graceful stop."""
    configure_logging(options.log_file)
    for handler in logging.getLogger().handlers:
        handler.addFilter(NoBodies())
    hub_cache = offline_hub()
    try:
        _serve(options, loaded)
    finally:
        hub_cache.cleanup()


def _serve(options: ServeOptions, loaded: Loaded) -> None:
    pinned_classes = _classes()
    upstream = pinned_classes.upstream
    from mlx_lm.models.cache import LRUPromptCache
    from mlx_lm.utils import maybe_set_recommended_wired_limit

    maybe_set_recommended_wired_limit()  # Apple silicon: keep the weights wired, as mlx-lm's own main() does
    state = ServerState("llm", loaded.name, loaded.version, str(loaded.path))
    admission = Admission(options.queue)
    state.worker = admission  # snapshot() reads queue_depth and queue_limit from it
    pinned = Pinned(options, loaded, state, admission, fingerprint=upstream.get_system_fingerprint())
    cli_args = mlx_lm_args(str(loaded.path))
    pinned.provider = pinned_classes.Provider(cli_args, loaded.name)
    httpd = _listen(pinned_classes.HTTPServer, lambda *a: pinned_classes.Handler(pinned, *a), options.host, options.port)
    pinned.generator = upstream.ResponseGenerator(pinned.provider, LRUPromptCache(cli_args.prompt_cache_size))  # starts loading
    threading.Thread(target=become_ready, args=(pinned, upstream), name="ready", daemon=True).start()

    def stop(signum, frame):
        if not pinned.stopping.is_set():
            pinned.stopping.set()
            pinned.refresh()
            LOG.info("stopping (%s): finishing the requests in flight", signal.Signals(signum).name)
            threading.Thread(target=httpd.shutdown, name="stop", daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    LOG.info("listening on %s:%d (pinned to %s %s, queue %d, max body %d bytes)", options.host, options.port, loaded.name, loaded.version,
             options.queue, options.max_bytes)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        if not pinned.in_flight.wait_idle(GRACEFUL_S):
            LOG.warning("stopped with %d requests still in flight after %g s", pinned.in_flight.count, GRACEFUL_S)
        httpd.server_close()
        _stop_generation(pinned.generator)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    LOG.info("stopped")


def _stop_generation(generator) -> None:
    """Stop mlx-lm's generation thread (it frees the model on its way out); bounded."""
    stopper = threading.Thread(target=generator.stop_and_join, name="stop-generation", daemon=True)
    stopper.start()
    stopper.join(GENERATION_STOP_S)
    if stopper.is_alive():
        LOG.error("the generation thread did not stop within %g s: exiting without it", GENERATION_STOP_S)
        logging.shutdown()
        os._exit(1)
