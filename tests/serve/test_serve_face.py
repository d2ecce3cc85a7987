"""`prontuario serve face`: the real server (a real process, onnxruntime, a generated FaceNet-shaped ONNX).

One server is shared by the tests that only read; those that need their own log, model or
limits start their own. Every wait is a bounded poll; every server is stopped by PID.
"""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import subprocess
import sys
import threading
import uuid
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers import poll
from tests.serve.harness import Server, install_model, logs_of, refused_at_start, start_server
from tests.serve.tiny_face import MODEL_FILE, build_facenet, checkerboard, face_like

MAX_BYTES = 256 * 1024
SLOW_WORK = 200  # shared 3x3 conv layers: about a second per picture on 2 cores


def _serve(store: Path, model: str, tmp_path: Path, *extra: str, expect_ready: bool = True) -> Server:
    """``start_server("face", ...)`` with prontuario's state kept in ``tmp_path``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRONTUARIO_STATE_DIR", str(tmp_path / "state"))
        patch.setenv("PRONTUARIO_AUDIT_LOG", str(tmp_path / "state" / "audit.jsonl"))
        return start_server("face", store, model, tmp_path, *extra, expect_ready=expect_ready)


def _installed(tmp_path: Path, name: str = "facenet-tiny", **build) -> tuple[Path, str]:
    """A store in ``tmp_path`` holding a generated model as ``name``; (store, version)."""
    source = tmp_path / f"source-{name}"
    build_facenet(source, **build)
    store = tmp_path / "store"
    return store, install_model(store, name, "face", source)


def _error_of(answer, status: int, code: str | None = None) -> dict:
    """The OpenAI-shaped error of ``answer`` (asserting its status, shape and code)."""
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (its data is one tiny row: it is never decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 4)) + chunk(b"IEND", b"")


def _png_sized(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 90, 60)).save(buffer, "PNG")
    return buffer.getvalue()


def _ready_once(client, wanted):
    """GET /ready; the answer if its ``reason`` satisfies ``wanted``, else None."""
    answer = client.get("/ready")
    return answer if wanted(answer.json().get("reason", "")) else None


def _norm(vector) -> float:
    return float(np.linalg.norm(np.asarray(vector, dtype=np.float64)))


# --------------------------------------------------------------------------- the shared server


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    """One tiny FaceNet server (``--max-bytes`` 256 KiB) for the tests that only read; stopped by PID at the end."""
    tmp_path = tmp_path_factory.mktemp("face")
    store, version = _installed(tmp_path)
    server = _serve(store, "facenet-tiny", tmp_path, "--max-bytes", str(MAX_BYTES))
    try:
        assert server.proc.poll() is None, server.proc.communicate(timeout=10)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            yield server, client, version
    finally:
        assert server.stop() == 0


def test_health_ready_and_status_answer_200_once_the_probe_passed(face):
    server, client, version = face
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True, "model": "facenet-tiny", "version": version}
    status = client.get("/status").json()
    assert status["kind"] == "face" and status["state"] == "ready" and status["version"] == version
    assert status["pid"] == server.proc.pid  # the process we started is the server (no shell between)


def test_embed_returns_512_floats_of_unit_norm(face):
    _, client, version = face
    answer = client.post("/v1/face/embed", files={"file": ("face.jpg", face_like(1), "image/jpeg")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"embedding", "norm", "model", "version"}
    assert len(body["embedding"]) == 512 and all(isinstance(x, float) for x in body["embedding"])
    assert abs(_norm(body["embedding"]) - 1.0) < 1e-4 and body["norm"] == pytest.approx(1.0, abs=1e-4)
    assert (body["model"], body["version"]) == ("facenet-tiny", version)


def test_embed_takes_base64_json_too_and_gives_the_same_vector(face):
    _, client, _ = face
    picture = face_like(2, fmt="PNG")
    by_form = client.post("/v1/face/embed", files={"file": ("face.png", picture, "image/png")}).json()["embedding"]
    by_json = client.post("/v1/face/embed", json={"image": base64.b64encode(picture).decode()}).json()["embedding"]
    data_url = client.post("/v1/face/embed", json={"image": "data:image/png;base64," + base64.b64encode(picture).decode()}).json()["embedding"]
    assert by_form == by_json == data_url


def test_verify_of_the_same_picture_twice_is_a_match_at_distance_zero(face):
    _, client, _ = face
    picture = face_like(3)
    body = client.post("/v1/face/verify", files={"file_a": ("a.jpg", picture), "file_b": ("b.jpg", picture)}).json()
    assert body["distance"] == pytest.approx(0.0, abs=1e-5)
    assert body["match"] is True and body["threshold"] == 1.0


def test_verify_of_very_different_pictures_gives_a_larger_distance(face):
    _, client, _ = face
    same = client.post("/v1/face/verify", files={"file_a": ("a.jpg", face_like(4)), "file_b": ("b.jpg", face_like(4))}).json()
    apart = client.post("/v1/face/verify", files={"file_a": ("a.jpg", face_like(4)), "file_b": ("b.png", checkerboard())}).json()
    by_json = client.post("/v1/face/verify", json={"image_a": base64.b64encode(face_like(4)).decode(),
                                                   "image_b": base64.b64encode(checkerboard()).decode()}).json()
    assert apart["distance"] > same["distance"] + 0.1
    assert 0.0 < apart["distance"] <= 2.0
    assert apart["match"] is (apart["distance"] <= 1.0)
    assert by_json["distance"] == pytest.approx(apart["distance"], abs=1e-6)


@pytest.mark.parametrize("picture, code", [
    (b"", "empty_image"),
    (b"these bytes are not a picture", "invalid_image"),
    (b"GIF89a" + b"\x00" * 64, "invalid_image"),  # a format the server does not take
    ("half a JPEG", "damaged_image"),
    ("half a PNG", "damaged_image"),
    ("4097 pixels wide", "image_too_large"),
    ("a header claiming 100000x100000", "image_too_large"),
])
def test_a_bad_picture_gets_400_with_an_openai_error(face, picture, code):
    _, client, _ = face
    made = {
        "half a JPEG": lambda: face_like(5)[: len(face_like(5)) // 2],
        "half a PNG": lambda: face_like(5, fmt="PNG")[: len(face_like(5, fmt="PNG")) // 2],
        "4097 pixels wide": lambda: _png_sized(4097, 8),
        "a header claiming 100000x100000": lambda: _png_claiming(100_000, 100_000),
    }
    data = made[picture]() if isinstance(picture, str) else picture
    error = _error_of(client.post("/v1/face/embed", files={"file": ("p", data)}), 400, code)
    assert error["type"] == "invalid_request_error"
    error = _error_of(client.post("/v1/face/verify", files={"file_a": ("a.jpg", face_like(6)), "file_b": ("b", data)}), 400, code)
    assert error["message"].startswith("file_b:")
    _error_of(client.post("/v1/face/embed", json={"image": base64.b64encode(data).decode()}), 400, code)
    assert client.get("/ready").status_code == 200  # still serving


def test_a_malformed_request_gets_400_or_415_with_an_openai_error(face):
    _, client, _ = face
    _error_of(client.post("/v1/face/embed", files={"photo": ("p.jpg", face_like(7))}), 400, "missing_image")
    _error_of(client.post("/v1/face/embed", data={"file": "not a file part"}, files={"other": ("o", b"x")}), 400, "missing_image")
    _error_of(client.post("/v1/face/verify", files={"file_a": ("a.jpg", face_like(7))}), 400, "missing_image")
    _error_of(client.post("/v1/face/embed", json={"image": "%%% not base64 %%%"}), 400, "invalid_base64")
    _error_of(client.post("/v1/face/embed", content=b"{not json", headers={"content-type": "application/json"}), 400, "invalid_json")
    _error_of(client.post("/v1/face/embed", json=["a list"]), 400, "invalid_json")
    _error_of(client.post("/v1/face/embed", content=face_like(7), headers={"content-type": "image/jpeg"}), 415, "unsupported_media_type")
    two_files = client.post("/v1/face/embed", files=[("file", ("a.jpg", face_like(7))), ("file", ("b.jpg", face_like(8)))])
    _error_of(two_files, 400, "invalid_multipart")


def test_a_body_over_max_bytes_gets_413(face):
    _, client, _ = face
    big = os.urandom(MAX_BYTES + 50_000)
    _error_of(client.post("/v1/face/embed", files={"file": ("big.jpg", big)}), 413, "request_too_large")
    _error_of(client.post("/v1/face/embed", json={"image": base64.b64encode(big).decode()}), 413, "request_too_large")

    def chunks():  # no Content-Length: the limit is counted as the body arrives
        for start in range(0, len(big), 32 * 1024):
            yield big[start:start + 32 * 1024]

    chunked = client.post("/v1/face/embed", content=chunks(), headers={"content-type": "application/json"})
    _error_of(chunked, 413, "request_too_large")
    assert client.post("/v1/face/embed", files={"file": ("ok.jpg", face_like(9))}).status_code == 200


# --------------------------------------------------------------------------- servers of their own


def test_no_file_name_field_or_picture_content_reaches_any_log(tmp_path):
    store, _ = _installed(tmp_path)
    server = _serve(store, "facenet-tiny", tmp_path)
    marker = f"PLANTED-{uuid.uuid4().hex}"
    answers = []
    try:
        with httpx.Client(base_url=server.url, timeout=30, headers={"user-agent": marker, "x-patient": marker}) as client:
            picture = face_like(10)
            answers.append(client.post(f"/v1/face/embed?patient={marker}", files={"file": (f"{marker}.jpg", picture, "image/jpeg")},
                                       data={marker: marker}))
            answers.append(client.post("/v1/face/verify", files={"file_a": (f"{marker}-a.jpg", picture), "file_b": (f"{marker}-b.jpg", picture)}))
            answers.append(client.post("/v1/face/embed", files={"file": (f"{marker}.jpg", marker.encode() * 20)}))  # not a picture
            answers.append(client.post("/v1/face/embed", files={"file": (f"{marker}.jpg", picture[: len(picture) // 2])}))  # truncated
            answers.append(client.post("/v1/face/embed", files={marker: (f"{marker}.jpg", picture)}))  # the wrong part name
            answers.append(client.post("/v1/face/embed", json={"image": marker, marker: marker}))
            answers.append(client.post("/v1/face/embed", content=json.dumps({"image": marker})[:-3], headers={"content-type": "application/json"}))
            answers.append(client.post("/v1/face/embed", content=marker.encode(), headers={"content-type": f"text/{marker}"}))
    finally:
        code = server.stop()
    out, err = server.proc.communicate(timeout=10)
    assert code == 0
    assert [a.status_code for a in answers] == [200, 200, 400, 400, 400, 400, 400, 415]
    assert all(marker not in a.text for a in answers[2:])  # error messages do not echo the request either
    logs = logs_of(tmp_path)
    assert "POST /v1/face/embed 200" in logs and "POST /v1/face/verify 200" in logs  # the log is written ...
    assert marker not in logs and marker not in out and marker not in err  # ... and holds none of it


def test_a_full_queue_answers_503_with_retry_after(tmp_path):
    """A model slowed on purpose (SLOW_WORK shared conv layers, ~1 s a picture) holds the one worker;
    ``/status`` shows the slot taken (queue_depth 1 of 1) before the second request is sent, so
    the 503 does not depend on winning a race. Then a burst of concurrent requests: some 200, the rest 503."""
    store, _ = _installed(tmp_path, "facenet-slow", work=SLOW_WORK)
    server = _serve(store, "facenet-slow", tmp_path, "--queue", "1")
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            first: dict = {}
            holder = threading.Thread(target=lambda: first.update(answer=client.post("/v1/face/embed", files={"file": ("a.jpg", face_like(11))})))
            holder.start()
            poll(lambda: client.get("/status").json()["queue_depth"] == 1, 10, "the worker taking the first request", every=0.02)
            busy = client.post("/v1/face/embed", files={"file": ("b.jpg", face_like(12))})
            assert holder.is_alive()  # refused while the first was still running: it did not wait its turn
            _error_of(busy, 503, "queue_full")
            assert int(busy.headers["retry-after"]) > 0
            holder.join(60)
            assert first["answer"].status_code == 200

            answers: list = []

            def one(seed: int) -> None:
                with httpx.Client(base_url=server.url, timeout=60) as own:
                    answers.append(own.post("/v1/face/embed", files={"file": ("c.jpg", face_like(seed))}))

            burst = [threading.Thread(target=one, args=(20 + i,)) for i in range(6)]
            for thread in burst:
                thread.start()
            for thread in burst:
                thread.join(60)
            codes = sorted(a.status_code for a in answers)
            assert len(codes) == 6 and codes.count(200) >= 1 and codes.count(503) >= 1 and set(codes) == {200, 503}, codes
            assert all("retry-after" in a.headers for a in answers if a.status_code == 503)
    finally:
        assert server.stop() == 0


def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(tmp_path):
    store, _ = _installed(tmp_path, "facenet-slow", work=SLOW_WORK)
    server = _serve(store, "facenet-slow", tmp_path)
    in_flight: dict = {}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        holder = threading.Thread(target=lambda: in_flight.update(answer=client.post("/v1/face/embed", files={"file": ("a.jpg", face_like(13))})))
        holder.start()
        poll(lambda: client.get("/status").json()["queue_depth"] == 1, 10, "the request reaching the worker", every=0.02)
        code = server.stop()
        holder.join(60)
    assert code == 0
    assert in_flight["answer"].status_code == 200 and len(in_flight["answer"].json()["embedding"]) == 512
    assert "Finished server process" in logs_of(tmp_path)


def test_a_model_that_does_not_verify_is_refused_at_start_with_65(tmp_path):
    from prontuario_cli.models.store import Store

    store, version = _installed(tmp_path)
    onnx_file = Store(store).version_dir("facenet-tiny", version) / MODEL_FILE
    damaged = bytearray(onnx_file.read_bytes())
    damaged[len(damaged) // 2: len(damaged) // 2 + 64] = b"\xff" * 64
    onnx_file.write_bytes(bytes(damaged))
    code, err = refused_at_start("face", store, "facenet-tiny", tmp_path)
    assert code == 65, err
    assert "does not verify" in err


def test_a_model_directory_with_two_onnx_files_is_refused_at_start_with_65(tmp_path):
    source = tmp_path / "two"
    build_facenet(source)
    build_facenet(source, seed=1, file_name="other.onnx")
    store = tmp_path / "store"
    install_model(store, "facenet-two", "face", source)
    code, err = refused_at_start("face", store, "facenet-two", tmp_path)
    assert code == 65, err
    assert "exactly one .onnx file" in err and "has 2" in err


@pytest.mark.parametrize("build, reason", [
    ({"embedding": 128}, "the model's output is [N,128]; FaceNet's is [N,512]"),
    ({"side": 96}, "the model's input is [N,3,96,96]; FaceNet's is [N,3,160,160]"),
])
def test_a_model_of_the_wrong_shape_leaves_the_server_up_but_not_ready(tmp_path, build, reason):
    store, _ = _installed(tmp_path, "facenet-odd", **build)
    server = _serve(store, "facenet-odd", tmp_path, expect_ready=False)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            answer = poll(lambda: _ready_once(client, lambda why: why.startswith("ModelMismatch")), 30, "the shape check", every=0.02)
            assert answer.status_code == 503 and reason in answer.json()["reason"]
            assert client.get("/health").status_code == 200
            refused = client.post("/v1/face/embed", files={"file": ("a.jpg", face_like(14))})
            _error_of(refused, 503, "not_ready")
            assert "retry-after" in refused.headers
    finally:
        assert server.stop() == 0
    assert reason in logs_of(tmp_path)


def test_a_verified_file_that_is_not_onnx_leaves_the_server_not_ready_saying_why(tmp_path):
    source = tmp_path / "garbage"
    source.mkdir()
    (source / MODEL_FILE).write_bytes(b"this is not a protobuf" * 100)
    store = tmp_path / "store"
    install_model(store, "facenet-garbage", "face", source)
    server = _serve(store, "facenet-garbage", tmp_path, expect_ready=False)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            answer = poll(lambda: _ready_once(client, lambda why: why not in ("", "loading the model")), 30, "the load failing", every=0.02)
            assert answer.status_code == 503 and "Protobuf" in answer.json()["reason"]
    finally:
        assert server.stop() == 0


def test_a_model_whose_output_is_not_unit_norm_is_normalised_by_the_server(tmp_path):
    store, _ = _installed(tmp_path, "facenet-raw", normalised=False)
    server = _serve(store, "facenet-raw", tmp_path)
    try:
        body = httpx.post(f"{server.url}/v1/face/embed", files={"file": ("a.jpg", face_like(15))}, timeout=30).json()
        assert abs(_norm(body["embedding"]) - 1.0) < 1e-4
    finally:
        assert server.stop() == 0


# --------------------------------------------------------------------------- in-process pieces


def test_importing_the_server_module_or_its_help_loads_no_heavy_runtime():
    code = ("import sys; import prontuario_cli.serve.face; from prontuario_cli.cli.main import main; main(['serve', 'face', '--help']);"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'onnxruntime', 'PIL', 'starlette', 'uvicorn', 'onnx'}), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60, cwd=str(Path(__file__).resolve().parents[2]))
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr
    assert "/v1/face/embed" in done.stdout


def test_preprocessing_is_rgb_160_nchw_standardised_as_facenet():
    from PIL import Image

    from prontuario_cli.serve.face import decode, preprocess

    buffer = io.BytesIO()
    Image.new("RGB", (320, 200), (255, 0, 128)).save(buffer, "PNG")
    batch = preprocess([decode(buffer.getvalue())])
    assert batch.shape == (1, 3, 160, 160) and batch.dtype == np.float32 and batch.flags["C_CONTIGUOUS"]
    assert np.allclose(batch[0, 0], (255 - 127.5) / 128) and np.allclose(batch[0, 1], -127.5 / 128) and np.allclose(batch[0, 2], 0.5 / 128)
    grey = io.BytesIO()
    Image.new("L", (50, 50), 200).save(grey, "JPEG")
    assert preprocess([decode(grey.getvalue())]).shape == (1, 3, 160, 160)  # greyscale becomes RGB


def test_the_signature_check_names_what_differs():
    from types import SimpleNamespace as T

    from prontuario_cli.serve.face import ModelMismatch, check_signature

    image = T(shape=["batch", 3, 160, 160], type="tensor(float)")
    assert check_signature([image], [T(shape=["batch", 512])]) is None
    assert check_signature([T(shape=[1, 3, 160, 160], type="tensor(float)")], [T(shape=[1, 512])]) == 1
    for inputs, outputs, says in [
        ([T(shape=[None, 160, 160, 3], type="tensor(float)")], [T(shape=[None, 512])], "[N,160,160,3]"),
        ([T(shape=["n", 3, 160, 160], type="tensor(uint8)")], [T(shape=["n", 512])], "tensor(uint8)"),
        ([image], [T(shape=["n", 128])], "[N,128]"),
        ([T(shape=[8, 3, 160, 160], type="tensor(float)")], [T(shape=[8, 512])], "fixed at 8"),
        ([image, image], [T(shape=["n", 512])], "2 inputs"),
    ]:
        with pytest.raises(ModelMismatch) as caught:
            check_signature(inputs, outputs)
        assert says in str(caught.value)


def test_providers_prefer_coreml_where_the_build_has_it_and_always_keep_the_cpu():
    from prontuario_cli.serve.face import choose_providers

    assert choose_providers(["CoreMLExecutionProvider", "CPUExecutionProvider"]) == ["CoreMLExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers(["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
