"""``prontuario serve llm``: mlx-lm's own server, pinned to one verified model, run as a real process.

A tiny random Gemma 3 model is built here (tests/serve/tiny_llm.py, about 2 s) and put in a
store through ``models pull``; every server is started by ``prontuario serve llm`` and
stopped by PID. Text quality is noise by construction: the tests look at structure.
"""

from __future__ import annotations

import json
import signal
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.helpers import poll
from tests.serve.harness import install_model, logs_of, refused_at_start, start_server
from tests.serve.tiny_llm import build_tiny_llm

MODEL = "medgemma-tiny"
CHAT = [{"role": "user", "content": "The patient reports a mild headache."}]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The served model (gemma3_text) and another real model (MedGemma's gemma3 layout, other weights)."""
    root = tmp_path_factory.mktemp("tiny-llm")
    return {"served": build_tiny_llm(root / "served", layout="gemma3_text", seed=0),
            "other": build_tiny_llm(root / "other", layout="gemma3", seed=1)}


@pytest.fixture(scope="module")
def store(built, tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("store")
    install_model(store, MODEL, "llm", built["served"])
    return store


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    """One server for the tests that only ask it things; stopped by PID at the end."""
    started = start_server("llm", store, MODEL, tmp_path_factory.mktemp("server"))
    yield started
    assert started.stop() == 0


def stop_ids(directory: Path) -> dict[str, float]:
    """A logit bias that forbids the end tokens, so a generation runs to max_tokens."""
    ids = json.loads((directory / "config.json").read_text())["eos_token_id"]
    return {str(i): -1000.0 for i in ids}


def openai_client(url: str):
    import openai

    return openai.OpenAI(base_url=f"{url}/v1", api_key="not-used", max_retries=0, timeout=30)


def model_loads(log: Path) -> int:
    return log.read_text().count("model loaded (load ")


def greedy(url: str) -> tuple[list[int], list[float]]:
    """Token ids and logprobs of a greedy 6-token completion: they change if other weights are loaded."""
    answer = httpx.post(f"{url}/v1/chat/completions", timeout=30,
                        json={"model": MODEL, "messages": CHAT, "max_tokens": 6, "temperature": 0, "logprobs": True})
    assert answer.status_code == 200, answer.text
    content = answer.json()["choices"][0]["logprobs"]["content"]
    return [t["id"] for t in content], [t["logprob"] for t in content]


# --------------------------------------------------------------------------- readiness and status


def test_health_ready_and_status_once_ready(server):
    from prontuario_cli.serve.asgi import ServerState

    assert httpx.get(f"{server.url}/health", timeout=5).json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/ready", timeout=5)
    assert ready.status_code == 200 and ready.json()["ready"] is True and ready.json()["model"] == MODEL
    status = httpx.get(f"{server.url}/status", timeout=5).json()
    assert set(status) == set(ServerState("llm", "m", "v", "p").snapshot())
    assert status["kind"] == "llm" and status["state"] == "ready" and status["reason"] == ""
    assert status["model"] == MODEL and status["version"] == ready.json()["version"] and status["path"].endswith(status["version"])
    assert status["pid"] == server.proc.pid  # mlx-lm runs inside `prontuario serve llm`, not in a child
    assert status["queue_limit"] == 8 and status["queue_depth"] == 0 and status["rss_bytes"] > 0
    assert "ready: " in server.log.read_text()  # the 1-token probe passed before /ready said 200


def test_models_lists_only_the_pinned_model_and_no_cors_header_is_sent(server):
    models = httpx.get(f"{server.url}/v1/models", timeout=5).json()
    assert [m["id"] for m in models["data"]] == [MODEL]
    origin = {"Origin": "https://elsewhere.example"}
    answers = [httpx.get(f"{server.url}/health", headers=origin, timeout=5),
               httpx.post(f"{server.url}/v1/chat/completions", headers=origin, json={"messages": CHAT, "max_tokens": 2}, timeout=30),
               httpx.options(f"{server.url}/v1/chat/completions", headers=origin, timeout=5)]
    assert [a.status_code for a in answers] == [200, 200, 405]
    for answer in answers:
        assert not [h for h in answer.headers if h.lower().startswith("access-control-")], answer.headers


def test_the_listen_backlog_is_deep(server):
    """mlx-lm's backlog of 5 overflowed at 50 /health clients; the kernel shows a listener's backlog as its Send-Q."""
    import shutil
    import subprocess

    if not shutil.which("ss"):
        pytest.fail("ss is missing: run ./install.sh (Debian package iproute2)")
    port = server.url.rsplit(":", 1)[1]
    listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], check=True, capture_output=True, text=True, timeout=10).stdout.split()
    cap = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert listening[0] == "LISTEN" and int(listening[2]) == min(512, cap)


# --------------------------------------------------------------------------- OpenAI's client


def test_a_chat_completion_through_the_openai_client(server):
    completion = openai_client(server.url).chat.completions.create(model=MODEL, messages=CHAT, max_tokens=4)
    assert completion.object == "chat.completion" and completion.model == MODEL
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("length", "stop")
    assert 1 <= completion.usage.completion_tokens <= 4 and completion.usage.prompt_tokens > 0


def test_a_streamed_chat_completion_through_the_openai_client(server):
    stream = openai_client(server.url).chat.completions.create(model=MODEL, messages=CHAT, max_tokens=5, stream=True,
                                                              stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks and all(c.object == "chat.completion.chunk" for c in chunks if c.choices)  # mlx-lm's usage chunk says "chat.completion"
    finished = [c for c in chunks if c.choices and c.choices[0].finish_reason is not None]
    assert len(finished) == 1 and finished[0].choices[0].finish_reason in ("length", "stop")
    assert chunks[-1].usage is not None and 1 <= chunks[-1].usage.completion_tokens <= 5
    assert all(c.model == MODEL for c in chunks)


def test_the_alias_and_an_absent_model_are_the_pinned_model(server):
    for extra in ({}, {"model": "default_model"}):
        answer = httpx.post(f"{server.url}/v1/completions", json={"prompt": "Blood pressure", "max_tokens": 2, **extra}, timeout=30)
        assert answer.status_code == 200 and answer.json()["model"] == MODEL


# --------------------------------------------------------------------------- pinned


def test_another_model_is_refused_and_the_pinned_one_stays_loaded(server, built):
    import openai

    before = greedy(server.url)
    before = greedy(server.url)  # the second run comes from the prompt cache, as the last one will
    loads = model_loads(server.log)
    assert loads == 1
    client = openai_client(server.url)
    # a model name, and a real loadable model directory: mlx-lm alone would unload ours for either
    for other in ("gpt-4o", str(built["other"]), str(built["served"])):
        with pytest.raises(openai.NotFoundError) as refused:
            client.chat.completions.create(model=other, messages=CHAT, max_tokens=2)
        assert refused.value.status_code == 404
        assert refused.value.body == {"message": f"this server serves only the model '{MODEL}'", "type": "invalid_request_error",
                                      "code": "model_not_found"}
    for extra in ({"draft_model": str(built["other"])}, {"adapters": str(built["other"])}):
        answer = httpx.post(f"{server.url}/v1/chat/completions", json={"model": MODEL, "messages": CHAT, **extra}, timeout=30)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "unsupported_parameter"
    completion = client.chat.completions.create(model=MODEL, messages=CHAT, max_tokens=3)
    assert completion.choices[0].finish_reason in ("length", "stop")
    ids, logprobs = greedy(server.url)
    assert ids == before[0] and logprobs == pytest.approx(before[1], abs=1e-4)  # the same weights answer
    assert model_loads(server.log) == loads  # and they were not loaded again
    assert httpx.get(f"{server.url}/ready", timeout=5).status_code == 200


def test_the_provider_itself_refuses_any_other_load(built):
    """The last line behind the request guard: a load of anything else never drops the pinned model."""
    from prontuario_cli.serve import llm

    pinned = llm._classes()
    NotPinned = pinned.NotPinned
    provider = pinned.Provider(llm.mlx_lm_args(str(built["served"])), MODEL)
    model, _ = provider.load("default_model", None, "default_model")
    for other in ((str(built["other"]), None, None), ("gpt-4o", None, None), (MODEL, None, str(built["other"]))):
        with pytest.raises(NotPinned):
            provider.load(*other)
        assert provider.model is model
    assert provider.load(MODEL, None, "default_model")[0] is model
    assert provider.load(MODEL, str(built["other"]), "default_model")[0] is model  # an adapter on the pinned names is ignored
    assert provider.load(str(built["served"]), None, None)[0] is model and provider.loads == 1


# --------------------------------------------------------------------------- limits


def test_a_body_over_the_limit_gets_413_before_it_is_read(server):
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1073741824\r\n\r\n" + b" " * 65536)  # 1 GiB declared, 64 KiB sent
        answer = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.0 413"), answer[:200]
    large = httpx.post(f"{server.url}/v1/chat/completions", content=b"{" + b" " * (2 << 20) + b"}", timeout=30)
    assert large.status_code == 413 and large.json()["error"]["code"] == "request_too_large"


def test_a_full_queue_gets_503_with_retry_after(built, store, tmp_path, servers):
    server = start_server("llm", store, MODEL, tmp_path, "--queue", "1")
    servers.append(server)
    long = {"model": MODEL, "messages": CHAT, "max_tokens": 1500, "stream": True, "logit_bias": stop_ids(built["served"])}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=long, timeout=30) as streaming:
        lines = streaming.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))  # generating now
        status = httpx.get(f"{server.url}/status", timeout=5).json()
        assert (status["queue_depth"], status["queue_limit"]) == (1, 1)
        busy = httpx.post(f"{server.url}/v1/chat/completions", json={"messages": CHAT, "max_tokens": 2}, timeout=30)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "2" and busy.json()["error"]["code"] == "queue_full"
    # the client left: its place is given back
    poll(lambda: httpx.get(f"{server.url}/status", timeout=5).json()["queue_depth"] == 0, 20, "the slot given back", every=0.1)
    assert httpx.post(f"{server.url}/v1/chat/completions", json={"messages": CHAT, "max_tokens": 2}, timeout=30).status_code == 200


# --------------------------------------------------------------------------- no bodies in the logs


def test_a_planted_marker_never_reaches_a_log(built, store, tmp_path, servers):
    server = start_server("llm", store, MODEL, tmp_path)
    servers.append(server)
    marker = f"PATIENT-{uuid.uuid4().hex}"
    said = [{"role": "user", "content": f"Maria, CPF {marker}, has a fever."}]
    url = f"{server.url}/v1/chat/completions"
    with httpx.Client(timeout=30, headers={"User-Agent": marker}) as http:
        statuses = [
            http.post(f"{url}?patient={marker}", json={"messages": said, "max_tokens": 3}).status_code,
            http.post(url, json={"messages": said, "max_tokens": 3, "stream": True}).status_code,
            http.post(f"{server.url}/v1/completions", json={"prompt": marker, "max_tokens": 3}).status_code,
            http.post(url, json={"messages": said, "max_tokens": 2, "tools": [{"type": "function", "function": {"name": "f", "description": marker}}]}).status_code,
            http.post(url, content=f'{{"messages": [{{"role": "user", "content": "{marker}"'.encode()).status_code,  # malformed JSON
            http.post(url, content=b'{"messages": "' + marker.encode() + b'\xff\xfe"}').status_code,  # not UTF-8
            http.post(url, json=[marker]).status_code,  # not an object
            http.post(url, json={"model": marker, "messages": said}).status_code,
            http.post(url, json={"messages": said, "max_tokens": marker}).status_code,  # mlx-lm's own validation
            http.post(url, json={"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": f"http://127.0.0.1:9/{marker}"}}]}]}).status_code,
            http.post(url, content=marker.encode() * (80_000)).status_code,  # over the limit
            http.get(f"{server.url}/v1/patients/{marker}").status_code,
        ]
    assert statuses == [200, 200, 200, 200, 400, 400, 400, 404, 400, 400, 413, 404]
    assert server.stop() == 0
    stdout, stderr = server.proc.stdout.read(), server.proc.stderr.read()
    logs = logs_of(tmp_path)
    assert "POST /v1/chat/completions 400" in logs and "POST /v1/chat/completions 200" in logs and "GET (other) 404" in logs
    assert marker not in logs and marker not in stdout and marker not in stderr


# --------------------------------------------------------------------------- start and stop


def test_the_medgemma_layout_serves(built, tmp_path, servers):
    store = tmp_path / "store"
    install_model(store, "medgemma-layout", "llm", built["other"])  # model_type gemma3, as MedGemma's config
    server = start_server("llm", store, "medgemma-layout", tmp_path)
    servers.append(server)
    completion = openai_client(server.url).chat.completions.create(model="medgemma-layout", messages=CHAT, max_tokens=3)
    assert completion.choices[0].message.role == "assistant" and completion.usage.completion_tokens >= 1


def test_a_corrupt_model_refuses_to_start_with_65(built, tmp_path):
    store = tmp_path / "store"
    version = install_model(store, MODEL, "llm", built["served"])
    weights = store / MODEL / version / "model.safetensors"
    damaged = bytearray(weights.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size: only the hash can tell
    weights.write_bytes(bytes(damaged))
    code, stderr = refused_at_start("llm", store, MODEL, tmp_path)
    assert code == 65
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "does not verify" in lines[0], stderr
    assert "Traceback" not in stderr


def test_a_model_that_verifies_but_does_not_load_is_never_ready(built, tmp_path, servers):
    import shutil

    broken = shutil.copytree(built["served"], tmp_path / "broken")
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))  # weights for 2 layers only
    store = tmp_path / "store"
    install_model(store, MODEL, "llm", broken)  # its manifest is made from these files: it verifies
    server = start_server("llm", store, MODEL, tmp_path, expect_ready=False)
    servers.append(server)
    def failed_load():
        answer = httpx.get(f"{server.url}/ready", timeout=5)
        return answer if "did not load" in answer.json()["reason"] else None

    ready = poll(failed_load, 60, "the load failing", every=0.1)
    assert ready.status_code == 503 and ready.json()["reason"].startswith("the model did not load: ValueError")
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 503  # the generation thread is gone
    refused = httpx.post(f"{server.url}/v1/chat/completions", json={"messages": CHAT}, timeout=30)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "not_ready"
    assert httpx.get(f"{server.url}/status", timeout=5).json()["state"] == "not-ready"
    assert server.stop() == 0


def test_sigterm_finishes_the_request_in_flight_and_exits_0(built, store, tmp_path, servers):
    server = start_server("llm", store, MODEL, tmp_path)
    servers.append(server)
    long = {"model": MODEL, "messages": CHAT, "max_tokens": 600, "stream": True, "logit_bias": stop_ids(built["served"])}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=long, timeout=30) as streaming:
        lines = streaming.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        rest = [line for line in lines if line.startswith("data:")]
    assert rest[-1] == "data: [DONE]"
    assert json.loads(rest[-2][len("data: "):])["choices"][0]["finish_reason"] == "length"  # it ran to the end
    assert server.proc.wait(20) == 0 and time.monotonic() - signalled < 20
    log = server.log.read_text()
    assert "stopping (SIGTERM)" in log and log.rstrip().endswith("stopped")
    assert log.index("stopping (SIGTERM)") < log.rindex("POST /v1/chat/completions 200")  # it finished after the signal


# --------------------------------------------------------------------------- pure parts


def test_pin_and_shape_rules():
    from prontuario_cli.serve.llm import pin_problem, shape_problem

    assert pin_problem({}, MODEL) is None and pin_problem({"model": "default_model"}, MODEL) is None
    assert pin_problem({"model": MODEL, "draft_model": None}, MODEL) is None
    assert pin_problem({"model": "medgemma-27b"}, MODEL)[0] == 404
    assert pin_problem({"model": None}, MODEL)[0] == 404
    assert pin_problem({"draft_model": "x"}, MODEL)[0] == 400 and pin_problem({"adapters": "x"}, MODEL)[0] == 400
    assert shape_problem({"messages": CHAT}, "/v1/chat/completions") is None
    assert shape_problem({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}]}, "/v1/chat/completions") is None
    assert shape_problem({"messages": []}, "/v1/chat/completions") and shape_problem({"prompt": 3}, "/v1/completions")
    assert "only text" in shape_problem({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "/chat/completions")


def test_the_log_filter_drops_body_lines():
    import logging

    from prontuario_cli.serve.llm import NoBodies

    def record(name, level, msg):
        return logging.LogRecord(name, level, __file__, 1, msg, (), None)

    keep = NoBodies()
    assert not keep.filter(record("root", logging.ERROR, "JSONDecodeError: x - Raw body: {secret"))
    assert not keep.filter(record("root", logging.DEBUG, "token text"))
    long = record("root", logging.ERROR, "x" * 5000)
    assert keep.filter(long) and "x" * 100 not in long.getMessage()
    assert keep.filter(record("prontuario.serve.access", logging.INFO, "GET /health 200 0.3ms 15B"))
