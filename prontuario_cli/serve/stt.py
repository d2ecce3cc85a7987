"""Whisper (mlx-whisper) behind OpenAI's ``POST /v1/audio/transcriptions``: one model, one worker.

The contract, as OpenAI's clients send it (multipart/form-data):

- ``file`` (required): a WAV file — PCM 8/16/24/32-bit or IEEE float 32/64-bit, any sample
  rate (resampled to 16 kHz), any channel count (averaged to mono). It is decoded in the
  process, so no ``ffmpeg`` is needed. A missing ``file``, an empty file, a file that is not
  audio, a truncated WAV header, or another audio format (MP3, FLAC, Ogg, MP4/M4A, WebM) gets
  400 with OpenAI's error JSON (``code``: ``missing_file``, ``invalid_audio``,
  ``unsupported_audio_format``).
- ``model`` (required): the served model's name or the alias ``whisper-1``. Another name gets
  **404** ``model_not_found`` (what OpenAI answers for a model it does not have) and never
  loads anything: the server is pinned to the verified directory it started with.
- ``language``: an ISO-639-1 code (or a language's English name) the model knows; absent:
  detected from the first 30 s.
- ``prompt``: text that conditions the first window (Whisper's ``initial_prompt``).
- ``temperature`` (0 to 1): given, decoding uses exactly that temperature (0: greedy and
  reproducible); absent, Whisper's fallback schedule 0, 0.2 … 1.0 runs (OpenAI's "auto").
- ``response_format``: ``json`` (``{"text"}``, the default), ``text`` (plain text),
  ``verbose_json`` (task, language name, duration, text, segments), ``srt`` and ``vtt``
  (one cue per segment that has text, timed from the segments).
- ``timestamp_granularities[]``: ``segment`` only (word timestamps are not served: 400);
  ``stream=true``: 400.

Other answers: 413 for a body over ``--max-bytes`` (before it is read to the end), 503 with
``Retry-After`` while loading or when the queue is full, 500 (``transcription_failed``) when
the model raises. Logs name the exception type only: neither audio, prompt, file name nor
transcript reaches a log, and uploads stay in memory (never a temporary file).

The model is loaded once, on the worker thread that runs it (MLX streams are per thread),
through mlx-whisper's own model cache, so the first request pays no load; readiness is a
real transcription of 1 s of silence. Heavy modules (mlx, mlx_whisper, numpy, scipy,
Starlette) are imported inside functions: ``prontuario --help`` never loads them.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from prontuario_cli.serve.options import Loaded, ServeOptions

LOG = logging.getLogger("prontuario.serve.stt")

SAMPLE_RATE = 16_000
ALIASES = ("whisper-1",)
FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
MAX_FIELDS = 64
SPECIAL_TOKEN = re.compile(r"<\|[^|<>]*\|>")

# Magic numbers of audio containers we recognise but do not decode (a clearer 400 than "not audio").
OTHER_AUDIO = (
    (0, b"ID3", "MP3"), (0, b"\xff\xfb", "MP3"), (0, b"\xff\xf3", "MP3"), (0, b"\xff\xf2", "MP3"),
    (0, b"fLaC", "FLAC"), (0, b"OggS", "Ogg"), (4, b"ftyp", "MP4/M4A"), (0, b"\x1a\x45\xdf\xa3", "WebM/Matroska"),
)
PCM, IEEE_FLOAT, EXTENSIBLE = 0x0001, 0x0003, 0xFFFE


class BadRequest(Exception):
    """A client error: its status, OpenAI error code and one-line message (for the client; never logged)."""

    def __init__(self, message: str, code: str, status: int = 400):
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


@dataclass(frozen=True)
class Fields:
    """A validated transcription request (the decoded audio travels beside it)."""

    language: str | None
    prompt: str | None
    temperatures: tuple[float, ...]
    response_format: str


# ---------------------------------------------------------------------------------------------
# WAV decoding (stdlib + numpy; scipy for resampling)


def decode_wav(data: bytes):
    """``data`` as float32 mono samples at 16 kHz; BadRequest when it is not a WAV we can read."""
    import numpy as np

    if not data:
        raise BadRequest("the file is empty", "invalid_audio")
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        for offset, magic, name in OTHER_AUDIO:
            if data[offset:offset + len(magic)] == magic:
                raise BadRequest(f"{name} is not decoded here: send WAV (PCM or float)", "unsupported_audio_format")
        raise BadRequest("the file is not audio this server reads (WAV expected)", "invalid_audio")
    fmt, samples = _wav_chunks(data)
    if fmt is None:
        raise BadRequest("the WAV file has no 'fmt ' chunk (truncated header?)", "invalid_audio")
    if samples is None:
        raise BadRequest("the WAV file has no 'data' chunk (truncated?)", "invalid_audio")
    tag, channels, rate, bits = _wav_format(fmt)
    width = bits // 8
    frame = width * channels
    frames = len(samples) // frame
    if frames == 0:
        raise BadRequest("the WAV file holds no samples", "invalid_audio")
    raw = samples[:frames * frame]
    if tag == IEEE_FLOAT:
        audio = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
        audio = np.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0)
    elif bits == 8:
        audio = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif bits == 24:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        values = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        audio = (np.where(values >= 1 << 23, values - (1 << 24), values) / float(1 << 23)).astype(np.float32)
    else:
        audio = np.frombuffer(raw, dtype=f"<i{width}").astype(np.float32) / float(1 << (bits - 1))
    audio = audio.reshape(frames, channels).mean(axis=1, dtype=np.float32)
    return resample(audio, rate)


def _wav_chunks(data: bytes) -> tuple[bytes | None, bytes | None]:
    """(the ``fmt `` chunk, the sample bytes) of a RIFF/RF64 WAVE; a data chunk cut short keeps what arrived."""
    fmt = samples = None
    at = 12
    while at + 8 <= len(data) and samples is None:
        kind, size = data[at:at + 4], int.from_bytes(data[at + 4:at + 8], "little")
        body = at + 8
        if kind == b"data":
            end = len(data) if size in (0, 0xFFFFFFFF) else min(len(data), body + size)
            samples = data[body:end]
        elif kind == b"fmt ":
            if body + size > len(data) or size < 16:
                return None, None
            fmt = data[body:body + size]
        at = body + size + (size & 1)  # chunks are word-aligned
    return fmt, samples if fmt is not None else None


def _wav_format(fmt: bytes) -> tuple[int, int, int, int]:
    """(format tag, channels, sample rate, bits per sample), checked; BadRequest otherwise."""
    tag = int.from_bytes(fmt[0:2], "little")
    channels = int.from_bytes(fmt[2:4], "little")
    rate = int.from_bytes(fmt[4:8], "little")
    bits = int.from_bytes(fmt[14:16], "little")
    if tag == EXTENSIBLE and len(fmt) >= 26:
        tag = int.from_bytes(fmt[24:26], "little")  # the sub-format GUID starts with the tag
    if tag not in (PCM, IEEE_FLOAT):
        raise BadRequest(f"WAV format 0x{tag:04x} is not decoded here: send PCM or float samples", "unsupported_audio_format")
    valid_bits = (8, 16, 24, 32) if tag == PCM else (32, 64)
    if bits not in valid_bits or not 1 <= channels <= 64 or not 1000 <= rate <= 768_000:
        raise BadRequest(f"the WAV header is invalid ({channels} channels, {rate} Hz, {bits} bits)", "invalid_audio")
    return tag, channels, rate, bits


def resample(audio, rate: int):
    """``audio`` at ``rate`` Hz as float32 at 16 kHz (polyphase filter: no aliasing when going down)."""
    import numpy as np

    if rate == SAMPLE_RATE:
        return np.ascontiguousarray(audio, dtype=np.float32)
    from scipy.signal import resample_poly

    common = math.gcd(rate, SAMPLE_RATE)
    return resample_poly(audio, SAMPLE_RATE // common, rate // common).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The model


class Transcriber:
    """The loaded Whisper model, through mlx-whisper's own cache (keyed by the directory's path)."""

    def __init__(self, path: str):
        self.path = path
        self.languages: tuple[str, ...] | None = None  # what the model knows, once loaded

    def load(self) -> None:
        """Load the weights into mlx-whisper's cache, with the dtype its transcribe asks for (fp16)."""
        import mlx.core as mx
        from mlx_whisper.tokenizer import LANGUAGES
        from mlx_whisper.transcribe import ModelHolder

        model = ModelHolder.get_model(self.path, mx.float16)
        self.languages = tuple(LANGUAGES)[:model.num_languages] if model.is_multilingual else ("en",)

    def transcribe(self, audio, fields: Fields) -> dict:
        """mlx-whisper's transcription of ``audio`` (16 kHz float32) on the loaded model."""
        import mlx_whisper

        return mlx_whisper.transcribe(audio, path_or_hf_repo=self.path, verbose=None, language=fields.language,
                                      initial_prompt=fields.prompt, temperature=fields.temperatures, fp16=True)

    def release(self) -> None:
        """At shutdown, on the model thread: drop the model and this thread's MLX streams while Python
        still runs (since mlx 0.32.2 every thread that evaluated must; otherwise the exit can abort)."""
        import mlx.core as mx
        from mlx_whisper.transcribe import ModelHolder

        ModelHolder.model = ModelHolder.model_path = None
        mx.clear_streams()

    def probe(self) -> None:
        """Readiness: a real transcription of 1 s of silence."""
        import numpy as np

        result = self.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32), Fields("en", None, (0.0,), "json"))
        if not isinstance(result.get("text"), str):
            raise TypeError("the probe's transcription has no text")


# ---------------------------------------------------------------------------------------------
# Fields and rendering


def parse_fields(form, served: str, languages: tuple[str, ...] | None) -> tuple[Fields, Any]:
    """The request's options, checked, and the uploaded file's field (read by the caller)."""
    upload = form.get("file")
    if upload is None:
        raise BadRequest("the 'file' field is required (multipart/form-data)", "missing_file")
    if isinstance(upload, str):
        raise BadRequest("'file' must be a file upload, not a text field", "missing_file")
    model = _text(form, "model")
    if not model:
        raise BadRequest("the 'model' field is required", "missing_model")
    if model not in (served, *ALIASES):
        raise BadRequest(f"the model '{model[:80]}' is not served here: use '{served}' or '{ALIASES[0]}'", "model_not_found", 404)
    response_format = (_text(form, "response_format") or "json").lower()
    if response_format not in FORMATS:
        raise BadRequest(f"response_format must be one of {', '.join(FORMATS)}", "invalid_value")
    return Fields(_language(_text(form, "language"), languages), _prompt(_text(form, "prompt")),
                   _temperatures(_text(form, "temperature")), response_format), upload


def unsupported(form) -> None:
    """400 for what is not served: word timestamps, streaming."""
    granularities = [g for key in ("timestamp_granularities[]", "timestamp_granularities") for g in form.getlist(key)]
    if any(g != "segment" for g in granularities if isinstance(g, str)):
        raise BadRequest("only segment timestamps are served (timestamp_granularities: segment)", "unsupported_parameter")
    if (_text(form, "stream") or "false").lower() in ("true", "1"):
        raise BadRequest("streaming is not served: send stream=false", "unsupported_parameter")


def _text(form, key: str) -> str | None:
    value = form.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{key}' must be a text field", "invalid_value")
    return value.strip()


def _language(value: str | None, languages: tuple[str, ...] | None) -> str | None:
    if not value:
        return None
    from mlx_whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE

    code = TO_LANGUAGE_CODE.get(value.lower(), value.lower())
    if code not in (languages or tuple(LANGUAGES)):
        raise BadRequest(f"language '{value[:20]}' is not known to this model: use an ISO-639-1 code such as 'pt' or 'en'", "invalid_value")
    return code


def _prompt(value: str | None) -> str | None:
    if not value:
        return None
    if SPECIAL_TOKEN.search(value):
        raise BadRequest("the prompt may not hold Whisper's special tokens ('<|…|>')", "invalid_value")
    return value


def _temperatures(value: str | None) -> tuple[float, ...]:
    if value is None or value == "":
        return FALLBACK_TEMPERATURES
    try:
        temperature = float(value)
    except ValueError:
        raise BadRequest("temperature must be a number from 0 to 1", "invalid_value") from None
    if not 0.0 <= temperature <= 1.0:
        raise BadRequest("temperature must be a number from 0 to 1", "invalid_value")
    return (temperature,)


def spoken(result: dict) -> list[dict]:
    """The segments that hold text, renumbered from 0, with JSON-safe numbers (NaN/inf -> null)."""
    keys = ("seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob")
    out = []
    for segment in result.get("segments", []):
        if not str(segment.get("text", "")).strip():
            continue
        row: dict[str, Any] = {"id": len(out)}
        for key in keys:
            value = segment.get(key)
            value = value.item() if hasattr(value, "item") else value  # a numpy scalar
            row[key] = None if isinstance(value, float) and not math.isfinite(value) else value
        out.append(row)
    return out


def timestamp(seconds: float, separator: str) -> str:
    """``HH:MM:SS<sep>mmm`` (SRT: comma; WebVTT: dot); negative or undefined times are 0."""
    millis = round(seconds * 1000) if isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0 else 0
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def cues(segments: list[dict], separator: str) -> list[tuple[str, str]]:
    """(``start --> end``, text) per segment; an end before its start is shown as the start (zero length)."""
    out = []
    for segment in segments:
        start = segment["start"] if segment["start"] is not None else 0.0
        end = segment["end"] if segment["end"] is not None and segment["end"] >= start else start
        out.append((f"{timestamp(start, separator)} --> {timestamp(end, separator)}", segment["text"].strip()))
    return out


def render(result: dict, fields: Fields, duration: float) -> tuple[str, bytes]:
    """(content type, body) of a transcription in the requested format."""
    import json

    text = str(result.get("text", "")).strip()
    if fields.response_format == "text":
        return "text/plain; charset=utf-8", (text + "\n").encode()
    if fields.response_format == "json":
        return "application/json", json.dumps({"text": text}, ensure_ascii=False).encode()
    segments = spoken(result)
    if fields.response_format == "verbose_json":
        from mlx_whisper.tokenizer import LANGUAGES

        code = result.get("language") or fields.language or ""
        body = {"task": "transcribe", "language": LANGUAGES.get(code, code), "duration": round(duration, 3), "text": text, "segments": segments}
        return "application/json", json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
    if fields.response_format == "srt":
        blocks = [f"{n}\n{times}\n{line}\n" for n, (times, line) in enumerate(cues(segments, ","), start=1)]
        return "application/x-subrip; charset=utf-8", "\n".join(blocks).encode()
    blocks = [f"{times}\n{line}\n" for times, line in cues(segments, ".")]
    return "text/vtt; charset=utf-8", "\n".join(["WEBVTT\n", *blocks]).encode()


# ---------------------------------------------------------------------------------------------
# The server


def _in_memory_parser(limit: int):
    """Starlette's multipart parser, keeping uploads in memory: the body limit already bounds them."""
    from starlette.formparsers import MultiPartParser

    class InMemoryParser(MultiPartParser):
        spool_max_size = limit

    return InMemoryParser


def make_app(options: ServeOptions, loaded: Loaded):
    """The Starlette app: ``POST /v1/audio/transcriptions`` plus /health, /ready and /status."""
    from starlette.concurrency import run_in_threadpool
    from starlette.formparsers import MultiPartException
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from prontuario_cli.serve.asgi import ServerState, build_app, error_body, run_model

    state = ServerState("stt", loaded.name, loaded.version, str(loaded.path))
    transcriber = Transcriber(str(loaded.path))
    parser_class = _in_memory_parser(options.max_bytes)

    def failed(problem: BadRequest) -> JSONResponse:
        return JSONResponse(error_body(problem.message, "invalid_request_error", problem.code), status_code=problem.status)

    def transcribe_on_worker(audio, fields: Fields):
        try:
            return transcriber.transcribe(audio, fields)
        except Exception as exc:  # noqa: BLE001 - a 500, logged by type only: a message may quote the request
            LOG.error("transcription failed: %s", type(exc).__name__)
            return exc

    async def transcriptions(request):
        if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            return failed(BadRequest("send multipart/form-data with the audio in a 'file' field", "missing_file"))
        try:
            form = await parser_class(request.headers, request.stream(), max_files=1, max_fields=MAX_FIELDS).parse()
        except MultiPartException as exc:
            return failed(BadRequest(f"the multipart body is malformed: {exc.message}", "invalid_multipart"))
        try:
            unsupported(form)
            fields, upload = parse_fields(form, loaded.name, transcriber.languages)
            data = await upload.read()
            audio = await run_in_threadpool(decode_wav, data)
        except BadRequest as problem:
            return failed(problem)
        finally:
            await form.close()
        del data
        result = await run_model(state, transcribe_on_worker, audio, fields)
        if isinstance(result, Response):
            return result
        if isinstance(result, Exception):
            return JSONResponse(error_body(f"the transcription failed ({type(result).__name__})", "server_error", "transcription_failed"),
                                status_code=500)
        content_type, body = render(result, fields, len(audio) / SAMPLE_RATE)
        return Response(body, media_type=content_type)

    return build_app(state, [Route("/v1/audio/transcriptions", transcriptions, methods=["POST"])],
                     load=lambda: state.worker.call(transcriber.load), probe=lambda: state.worker.call(transcriber.probe),
                     unload=transcriber.release, limit_bytes=options.max_bytes, queue=options.queue)


def run(options: ServeOptions, loaded: Loaded) -> None:
    """Serve ``loaded`` (verified) until SIGTERM; returns when stopped."""
    import os

    from prontuario_cli.serve.asgi import configure_logging, serve

    os.environ["HF_HUB_OFFLINE"] = "1"  # the model is a local directory: never ask the hub for anything
    configure_logging(options.log_file)
    serve(make_app(options, loaded), options.host, options.port)
