"""serve stt: OpenAI's /v1/audio/transcriptions over mlx-whisper, as a real `prontuario serve stt` process
on a tiny random Whisper; plus the pure pieces (WAV decoding, subtitle rendering) in-process."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import uuid
import wave
from pathlib import Path

import httpx
import pytest

from tests.helpers import poll
from tests.serve.harness import install_model, logs_of, refused_at_start, start_server
from tests.serve.tiny_stt import MODEL_NAME, longer_wav, speech, tiny_stt, wav_bytes  # noqa: F401 - fixtures

TRANSCRIPTIONS = "/v1/audio/transcriptions"
SRT_TIME = re.compile(r"^\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}$")
VTT_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}$")
WITHIN_S = 60.0  # any one HTTP request


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_stt) -> Path:  # noqa: F811
    """A model store holding the tiny Whisper as ``whisper-tiny`` (active, verified)."""
    root = tmp_path_factory.mktemp("store")
    install_model(root, MODEL_NAME, "stt", tiny_stt)
    return root


@pytest.fixture(scope="module")
def shared(tmp_path_factory, store):
    """One server for the tests that only read (health, formats, client errors); stopped by PID at the end."""
    where = tmp_path_factory.mktemp("shared-server")
    with pytest.MonkeyPatch.context() as patch:  # never the machine's state dir or audit log
        patch.setenv("PRONTUARIO_STATE_DIR", str(where / "state"))
        patch.setenv("PRONTUARIO_AUDIT_LOG", str(where / "state" / "audit.jsonl"))
        server = start_server("stt", store, MODEL_NAME, where)
    assert server.proc.poll() is None, server.proc.stderr.read()
    yield server
    assert server.stop() == 0


def client_for(server):
    """The official OpenAI client, pointed at the server (no retries: every answer is seen)."""
    from openai import OpenAI

    return OpenAI(base_url=f"{server.url}/v1", api_key="not-checked", max_retries=0, timeout=WITHIN_S)


def post(server, files: dict | None = None, data: dict | None = None, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}{TRANSCRIPTIONS}", files=files, data=data, timeout=WITHIN_S, **kwargs)


def error_of(answer: httpx.Response) -> dict:
    """The OpenAI error object of an answer (asserting its shape)."""
    body = answer.json()
    assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"]), body
    return body["error"]


def clip_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as reader:
        return reader.getnframes() / reader.getframerate()


# ------------------------------------------------------------------------------- the real server


def test_health_and_ready_answer_200_once_the_probe_ran(shared):
    assert httpx.get(f"{shared.url}/health", timeout=5).status_code == 200
    ready = httpx.get(f"{shared.url}/ready", timeout=5)
    assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["model"] == MODEL_NAME
    status = httpx.get(f"{shared.url}/status", timeout=5).json()
    assert status["kind"] == "stt" and status["state"] == "ready" and status["queue_limit"] == 4


def test_openai_client_transcribes_speech_under_the_served_name_and_the_alias(shared, speech):  # noqa: F811
    client = client_for(shared)
    for model in (MODEL_NAME, "whisper-1"):
        with speech.open("rb") as audio:
            result = client.audio.transcriptions.create(model=model, file=audio, language="pt", temperature=0)
        assert isinstance(result.text, str)  # random weights: nonsense, but text


def test_each_response_format_has_its_shape_and_subtitles_are_timed_by_the_segments(shared, speech):  # noqa: F811
    client = client_for(shared)
    data = speech.read_bytes()

    def create(fmt: str):
        return client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", data, "audio/wav"), language="pt",
                                                  temperature=0, response_format=fmt)

    text = create("text")
    assert isinstance(text, str) and text.endswith("\n")
    assert isinstance(create("json").text, str)

    verbose = create("verbose_json")
    assert verbose.language == "portuguese" and isinstance(verbose.text, str)
    assert verbose.duration == pytest.approx(clip_seconds(speech), abs=0.01)
    segments = verbose.segments
    assert segments, "the tiny model's clip has segments"
    for n, segment in enumerate(segments):
        assert segment.id == n and isinstance(segment.start, float) and isinstance(segment.end, float)
        assert isinstance(segment.text, str) and segment.text.strip() and isinstance(segment.tokens, list)

    def seconds(stamp: str) -> float:
        hours, minutes, rest = stamp.replace(",", ".").split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(rest)

    srt = create("srt")
    blocks = [b.split("\n") for b in srt.strip("\n").split("\n\n")]
    assert len(blocks) == len(segments)
    for n, (block, segment) in enumerate(zip(blocks, segments), start=1):
        assert block[0] == str(n) and SRT_TIME.match(block[1]), block
        start, end = block[1].split(" --> ")
        assert seconds(start) == pytest.approx(segment.start, abs=0.001)
        assert seconds(end) == pytest.approx(max(segment.end, segment.start), abs=0.001)
        assert block[2] == segment.text.strip()

    vtt = create("vtt")
    assert vtt.startswith("WEBVTT\n\n")
    cues = [b.split("\n") for b in vtt.strip("\n").split("\n\n")[1:]]
    assert len(cues) == len(segments)
    for cue, segment in zip(cues, segments):
        assert VTT_TIME.match(cue[0]), cue
        assert seconds(cue[0].split(" --> ")[0]) == pytest.approx(segment.start, abs=0.001)


def test_not_audio_empty_truncated_or_missing_file_is_400_with_an_openai_error(shared, speech, tmp_path):  # noqa: F811
    wav = speech.read_bytes()
    cases = {
        "a text file": (b"Paciente: dor no peito.\n", "invalid_audio"),
        "an empty file": (b"", "invalid_audio"),
        "a WAV header cut at 30 bytes": (wav[:30], "invalid_audio"),
        "a WAV header without its data chunk": (wav[:36], "invalid_audio"),
        "an MP3": (b"ID3\x04\x00" + bytes(200), "unsupported_audio_format"),
    }
    for what, (content, code) in cases.items():
        answer = post(shared, files={"file": ("clip.wav", content, "audio/wav")}, data={"model": "whisper-1"})
        assert answer.status_code == 400, what
        assert error_of(answer)["code"] == code, what
        assert error_of(answer)["type"] == "invalid_request_error"
    missing = post(shared, data={"model": "whisper-1", "language": "pt"}, files={"other": ("x.txt", b"x", "text/plain")})
    assert missing.status_code == 400 and error_of(missing)["code"] == "missing_file"
    not_multipart = httpx.post(f"{shared.url}{TRANSCRIPTIONS}", json={"model": "whisper-1"}, timeout=WITHIN_S)
    assert not_multipart.status_code == 400 and error_of(not_multipart)["code"] == "missing_file"

    import openai

    text_file = tmp_path / "notes.txt"
    text_file.write_text("not audio\n")
    with pytest.raises(openai.BadRequestError) as raised, text_file.open("rb") as handle:
        client_for(shared).audio.transcriptions.create(model="whisper-1", file=handle)
    assert raised.value.status_code == 400


def test_bad_options_are_400(shared, speech):  # noqa: F811
    files = {"file": ("speech.wav", speech.read_bytes(), "audio/wav")}
    for fields, code in [
        ({"model": "whisper-1", "response_format": "xml"}, "invalid_value"),
        ({"model": "whisper-1", "temperature": "1.5"}, "invalid_value"),
        ({"model": "whisper-1", "language": "klingon"}, "invalid_value"),
        ({"model": "whisper-1", "prompt": "<|endoftext|>"}, "invalid_value"),
        ({"model": "whisper-1", "timestamp_granularities[]": "word"}, "unsupported_parameter"),
        ({}, "missing_model"),
    ]:
        answer = post(shared, files=files, data=fields)
        assert answer.status_code == 400 and error_of(answer)["code"] == code, fields


def test_a_foreign_model_name_is_404_and_the_pinned_model_keeps_serving(shared, speech):  # noqa: F811
    import openai

    client = client_for(shared)
    for foreign in ("whisper-large-v3-turbo", "gpt-4o-transcribe", "/etc/passwd", str(Path(shared.log).parent)):
        with pytest.raises(openai.NotFoundError) as raised, speech.open("rb") as audio:
            client.audio.transcriptions.create(model=foreign, file=audio, language="pt", temperature=0)
        assert raised.value.status_code == 404 and raised.value.body["code"] == "model_not_found"
    status = httpx.get(f"{shared.url}/status", timeout=5).json()
    assert status["model"] == MODEL_NAME and status["ready"]
    with speech.open("rb") as audio:
        assert isinstance(client.audio.transcriptions.create(model="whisper-1", file=audio, language="pt", temperature=0).text, str)


def test_a_full_queue_answers_503_with_retry_after(servers, store, speech, tmp_path):  # noqa: F811
    server = start_server("stt", store, MODEL_NAME, tmp_path, "--queue", "1")
    servers.append(server)
    clip = longer_wav(speech, tmp_path / "long.wav", 20).read_bytes()  # ~56 s: two 30 s windows per request
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def one() -> None:
        answer = post(server, files={"file": ("long.wav", clip, "audio/wav")}, data={"model": "whisper-1", "language": "pt", "temperature": "0"})
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WITHIN_S * 2)
    assert len(answers) == 4
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
    for busy in (a for a in answers if a.status_code == 503):
        assert busy.headers["Retry-After"].isdigit() and error_of(busy)["code"] == "queue_full"


def test_a_body_over_max_bytes_is_413(servers, store, speech, tmp_path):  # noqa: F811
    server = start_server("stt", store, MODEL_NAME, tmp_path, "--max-bytes", "65536")
    servers.append(server)
    big = longer_wav(speech, tmp_path / "big.wav", 2).read_bytes()
    assert len(big) > 65536
    declared = post(server, files={"file": ("big.wav", big, "audio/wav")}, data={"model": "whisper-1"})
    assert declared.status_code == 413 and error_of(declared)["code"] == "request_too_large"

    boundary = "prontuario-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + big + f"\r\n--{boundary}--\r\n".encode()

    def chunks():  # no Content-Length: the limit is counted as the body arrives
        for at in range(0, len(body), 8192):
            yield body[at:at + 8192]

    streamed = httpx.post(f"{server.url}{TRANSCRIPTIONS}", content=chunks(), timeout=WITHIN_S,
                          headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert streamed.status_code == 413
    small = post(server, files={"file": ("s.wav", wav_bytes([0.0] * 16000), "audio/wav")}, data={"model": "whisper-1", "language": "pt", "temperature": "0"})
    assert small.status_code == 200


def test_no_multipart_field_reaches_a_log(servers, store, speech, tmp_path):  # noqa: F811
    marker = f"MARCADOR-{uuid.uuid4().hex}"
    server = start_server("stt", store, MODEL_NAME, tmp_path)
    servers.append(server)
    audio = speech.read_bytes()
    client = client_for(server)
    import openai

    for fmt in ("json", "verbose_json", "srt"):
        client.audio.transcriptions.create(model="whisper-1", file=(f"{marker}.wav", audio, "audio/wav"), prompt=f"Paciente {marker}",
                                           language="pt", temperature=0, response_format=fmt)
    for bad in [{"language": marker}, {"response_format": marker}, {"temperature": marker}, {"prompt": f"<|{marker}|>"}]:
        answer = post(server, files={"file": (f"{marker}.wav", audio, "audio/wav")}, data={"model": "whisper-1", **bad})
        assert answer.status_code == 400
    assert post(server, files={"file": (f"{marker}.wav", marker.encode(), "audio/wav")}, data={"model": "whisper-1"}).status_code == 400
    with pytest.raises(openai.NotFoundError):
        client.audio.transcriptions.create(model=marker, file=(f"{marker}.wav", audio, "audio/wav"))
    assert server.stop() == 0
    stdout, stderr = server.proc.communicate(timeout=10)
    logs = logs_of(tmp_path)
    assert "POST /v1/audio/transcriptions 200" in logs and "POST /v1/audio/transcriptions 400" in logs  # the log is not empty
    assert marker not in logs and marker not in stdout and marker not in stderr


def test_a_model_that_verifies_but_does_not_load_leaves_the_server_up_and_not_ready(servers, tmp_path, speech):  # noqa: F811
    broken = tmp_path / "broken-whisper"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"n_mels": 128}))  # locked as it is: it verifies, it cannot load
    (broken / "weights.safetensors").write_bytes(b"not safetensors")
    install_model(tmp_path / "store", MODEL_NAME, "stt", broken)
    server = start_server("stt", tmp_path / "store", MODEL_NAME, tmp_path, expect_ready=False)
    servers.append(server)
    assert server.proc.poll() is None

    def failure() -> str:
        reason = httpx.get(f"{server.url}/ready", timeout=5).json()["reason"]
        return "" if reason in ("loading the model", "running the readiness probe") else reason

    assert "Error" in poll(failure, 60, "the load failing", every=0.05)  # the exception's type and message: why it is not ready
    assert httpx.get(f"{server.url}/ready", timeout=5).status_code == 503
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
    answer = post(server, files={"file": ("speech.wav", speech.read_bytes(), "audio/wav")}, data={"model": "whisper-1"})
    assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit() and error_of(answer)["code"] == "not_ready"


def test_a_corrupt_model_is_refused_at_start_with_65(tmp_path, tiny_stt):  # noqa: F811
    root = tmp_path / "store"
    version = install_model(root, MODEL_NAME, "stt", tiny_stt)
    weights = root / MODEL_NAME / version / "weights.safetensors"
    damaged = bytearray(weights.read_bytes())
    damaged[len(damaged) // 2:len(damaged) // 2 + 64] = bytes(64)
    weights.write_bytes(bytes(damaged))
    code, err = refused_at_start("stt", root, MODEL_NAME, tmp_path)
    assert code == 65, err
    assert "does not verify" in err


def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(servers, store, speech, tmp_path):  # noqa: F811
    server = start_server("stt", store, MODEL_NAME, tmp_path)
    servers.append(server)
    clip = longer_wav(speech, tmp_path / "long.wav", 30).read_bytes()  # ~84 s: three 30 s windows, a few seconds of work
    answers: list[httpx.Response] = []
    request = threading.Thread(target=lambda: answers.append(post(server, files={"file": ("long.wav", clip, "audio/wav")},
                                                                  data={"model": "whisper-1", "language": "pt", "temperature": "0"})))
    request.start()
    poll(lambda: httpx.get(f"{server.url}/status", timeout=5).json()["queue_depth"] >= 1, 30, "the request reaching the model", every=0.05)
    server.proc.send_signal(signal.SIGTERM)
    request.join(WITHIN_S)
    assert answers and answers[0].status_code == 200 and isinstance(answers[0].json()["text"], str)
    assert server.proc.wait(30) == 0, server.proc.stderr.read()[-2000:]


# ------------------------------------------------------------------------------- in-process


def test_the_model_loads_once_before_the_first_request(tiny_stt, monkeypatch):  # noqa: F811
    import importlib

    import numpy as np

    from prontuario_cli.serve.stt import Fields, Transcriber

    transcriber = Transcriber(str(tiny_stt))
    transcriber.load()
    assert "pt" in transcriber.languages and len(transcriber.languages) == 100

    def no_second_load(*args, **kwargs):
        raise AssertionError("the model was loaded again by a request")

    upstream = importlib.import_module("mlx_whisper.transcribe")  # the module: the package exports a function of that name
    monkeypatch.setattr(upstream, "load_model", no_second_load)
    result = transcriber.transcribe(np.zeros(16000, dtype=np.float32), Fields("pt", None, (0.0,), "json"))
    assert isinstance(result["text"], str)


def _wav(frames: bytes, channels: int, rate: int, bits: int, tag: int = 1, extensible: bool = False) -> bytes:
    import struct

    block = channels * bits // 8
    if extensible:
        fmt = struct.pack("<HHIIHHHHI16s", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0, struct.pack("<H", tag) + bytes(14))
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"LIST" + struct.pack("<I", 3) + b"abc\x00" + b"data" + struct.pack("<I", len(frames)) + frames
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def test_wav_decoding_reads_the_common_sample_formats_as_16k_mono():
    import numpy as np

    from prontuario_cli.serve.stt import decode_wav

    tone = np.sin(np.linspace(0, 2 * np.pi * 440, 8000, endpoint=False)) * 0.5  # 1 s at 8 kHz
    stereo = np.stack([tone, tone], axis=1)
    cases = {
        "16-bit stereo": _wav((stereo * 32767).astype("<i2").tobytes(), 2, 8000, 16),
        "8-bit": _wav((tone * 127 + 128).astype(np.uint8).tobytes(), 1, 8000, 8),
        "24-bit": _wav(b"".join(int(v).to_bytes(3, "little", signed=True) for v in (tone * 8388607).astype(np.int32)), 1, 8000, 24),
        "32-bit int": _wav((tone * 2147483647).astype("<i4").tobytes(), 1, 8000, 32),
        "32-bit float": _wav(tone.astype("<f4").tobytes(), 1, 8000, 32, tag=3),
        "64-bit float, extensible": _wav(tone.astype("<f8").tobytes(), 1, 8000, 64, tag=3, extensible=True),
    }
    for what, data in cases.items():
        audio = decode_wav(data)
        assert audio.dtype == np.float32 and audio.shape == (16000,), what
        assert 0.3 < float(np.abs(audio[2000:14000]).max()) < 0.6, what
    assert decode_wav(_wav(bytes(32000), 1, 16000, 16)).shape == (16000,)
    cut = _wav((tone * 32767).astype("<i2").tobytes(), 1, 8000, 16)[:-401]  # a recording cut short keeps what arrived
    assert 15000 < decode_wav(cut).shape[0] < 16000


def test_wav_decoding_refuses_what_it_cannot_read():
    from prontuario_cli.serve.stt import BadRequest, decode_wav

    for data, code in [
        (_wav(bytes(100), 1, 8000, 16, tag=2), "unsupported_audio_format"),  # ADPCM
        (_wav(bytes(100), 1, 8000, 12), "invalid_audio"),
        (_wav(b"", 1, 8000, 16), "invalid_audio"),
        (b"fLaC" + bytes(100), "unsupported_audio_format"),
        (b"RIFF\x00\x00\x00\x00WAVE", "invalid_audio"),
    ]:
        with pytest.raises(BadRequest) as raised:
            decode_wav(data)
        assert raised.value.code == code and raised.value.status == 400


def test_subtitles_and_verbose_json_from_segments():
    from prontuario_cli.serve.stt import Fields, render, timestamp

    assert timestamp(3725.5, ",") == "01:02:05,500" and timestamp(-1.0, ".") == "00:00:00.000" and timestamp(float("nan"), ".") == "00:00:00.000"
    result = {"text": " Olá. Tudo bem?", "language": "pt", "segments": [
        {"id": 0, "seek": 0, "start": 0.0, "end": 1.5, "text": " Olá.", "tokens": [1], "temperature": 0.0, "avg_logprob": float("nan"),
         "compression_ratio": 1.0, "no_speech_prob": 0.1},
        {"id": 1, "seek": 0, "start": 1.5, "end": 1.5, "text": "", "tokens": [], "temperature": 0.0, "avg_logprob": -0.2,
         "compression_ratio": 1.0, "no_speech_prob": 0.1},
        {"id": 2, "seek": 0, "start": 2.0, "end": 1.8, "text": " Tudo bem?", "tokens": [2], "temperature": 0.0, "avg_logprob": -0.3,
         "compression_ratio": 1.0, "no_speech_prob": 0.1},
    ]}

    def body(fmt: str) -> str:
        return render(result, Fields("pt", None, (0.0,), fmt), 2.5)[1].decode()

    assert body("srt") == "1\n00:00:00,000 --> 00:00:01,500\nOlá.\n\n2\n00:00:02,000 --> 00:00:02,000\nTudo bem?\n"
    assert body("vtt") == "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nOlá.\n\n00:00:02.000 --> 00:00:02.000\nTudo bem?\n"
    assert body("text") == "Olá. Tudo bem?\n" and json.loads(body("json")) == {"text": "Olá. Tudo bem?"}
    verbose = json.loads(body("verbose_json"))
    assert verbose["language"] == "portuguese" and verbose["duration"] == 2.5 and verbose["task"] == "transcribe"
    assert [s["id"] for s in verbose["segments"]] == [0, 1] and verbose["segments"][0]["avg_logprob"] is None


def test_importing_the_server_module_loads_no_heavy_runtime():
    heavy = ("mlx", "mlx_whisper", "numpy", "scipy", "starlette", "uvicorn")
    code = f"import sys, prontuario_cli.serve.stt; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"

