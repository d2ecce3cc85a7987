"""The FaceNet server: face embeddings and 1:1 verification over HTTP, on onnxruntime.

The model is one ``.onnx`` file in the verified model directory (exactly one: refused
at start otherwise, exit 65): input ``[N,3,160,160]`` float32, output ``[N,512]``.
onnxruntime runs it with ``CoreMLExecutionProvider`` then ``CPUExecutionProvider`` on
macOS and the CPU elsewhere — the same code path, filtered by what this build offers.
The model's input and output shapes are checked at load; a model that does not fit
leaves the server up but not ready, ``/ready`` saying why.

No face detection or alignment here: the app sends a picture already cropped to the
face (as MTCNN would crop it). Each picture is decoded (JPEG, PNG or WebP; EXIF
orientation applied), turned RGB, resized to 160x160 (a non-square crop is stretched),
standardised as FaceNet was trained, ``(x - 127.5) / 128``, and laid out NCHW float32.

API (errors are OpenAI-shaped: ``{"error": {"message", "type", "code"}}``):

``POST /v1/face/embed``
    ``multipart/form-data`` with the picture in the part ``file``, or
    ``application/json`` ``{"image": "<base64>"}`` (a ``data:image/...;base64,`` prefix
    is accepted). Answers ``{"embedding": [512 floats], "norm": 1.0, "model",
    "version"}``; the embedding is L2-normalised here whatever the model returns.
``POST /v1/face/verify``
    Two pictures: parts ``file_a`` and ``file_b``, or JSON ``{"image_a", "image_b"}``.
    Answers ``{"distance", "match", "threshold", "model", "version"}``: ``distance`` is
    the plain (not squared) Euclidean distance between the two unit embeddings, 0 to 2;
    ``match`` is ``distance <= threshold`` (``ServeOptions.match_threshold``, 1.0 by
    default, FaceNet's usual operating point on plain L2 between unit vectors).

A picture that is empty, not JPEG/PNG/WebP, truncated or damaged, or larger than
``MAX_SIDE`` pixels on a side gets 400 (its size is read from the header, before any
pixel is decoded). The body limit (413), the queue (503 + Retry-After), /health, /ready
and /status, and an access log without bodies or file names come from ``serve.asgi``.
Decoding runs on the model's worker thread, so at most one picture is in memory
decoded at a time. The readiness probe embeds two generated pictures in one batch
through the same path as ``/v1/face/verify``.

numpy, Pillow, onnxruntime and Starlette are imported inside the functions that use them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

LOG = logging.getLogger("prontuario.serve.face")

SIDE = 160  # FaceNet's input: 160x160 RGB
CHANNELS = 3
EMBEDDING = 512
MAX_SIDE = 4096  # pixels a side; a cropped face needs far fewer (the model sees 160)
FORMATS = ("JPEG", "PNG", "WEBP")
PROVIDERS = ("CoreMLExecutionProvider", "CPUExecutionProvider")  # preferred first; filtered by what is available
FIELDS = {"embed": (("file", "image"),), "verify": (("file_a", "image_a"), ("file_b", "image_b"))}  # (multipart part, JSON key)


class BadImage(ValueError):
    """A picture the server cannot use: answered 400 with ``code``."""

    def __init__(self, message: str, code: str = "invalid_image"):
        super().__init__(message)
        self.message = message
        self.code = code
        self.index: int | None = None  # which picture of the request (0-based), when known


class ModelMismatch(ValueError):
    """The ONNX model does not have FaceNet's contract ([N,3,160,160] float -> [N,512])."""


class ModelFailure(RuntimeError):
    """The model failed on a request's pictures (answered 500; the log gets the kind of failure only)."""


def find_model_file(directory: Path) -> Path:
    """The one ``.onnx`` file under ``directory``; IntegrityError (exit 65) for none or several."""
    from prontuario_cli.errors import IntegrityError

    found = sorted(p for p in Path(directory).rglob("*.onnx") if p.is_file())
    if len(found) != 1:
        listed = ", ".join(str(p.relative_to(directory)) for p in found[:5]) or "none"
        raise IntegrityError(f"a FaceNet model directory holds exactly one .onnx file; {directory} has {len(found)} ({listed})",
                             hint="lock a version with a single .onnx file: prontuario models pull NAME --from-dir PATH")
    return found[0]


def choose_providers(available: list[str]) -> list[str]:
    """The execution providers to ask for, best first: CoreML where the build has it, always the CPU."""
    chosen = [p for p in PROVIDERS if p in available]
    return chosen if "CPUExecutionProvider" in chosen else [*chosen, "CPUExecutionProvider"]


def session_options():
    """onnxruntime's session settings for a server that shares its Mac with Whisper and MedGemma.

    The intra-op threads do not spin between requests: spinning keeps cores busy after
    each picture, and the event loop (and the other servers) wait for them. On a 2-core
    machine, benchmarks/serve_face measured a higher fixed cost per request and a worse
    /ready p99 under load with spinning on. Only errors are logged (a provider falling
    back to the CPU is not one).
    """
    import onnxruntime

    settings = onnxruntime.SessionOptions()
    settings.log_severity_level = 3
    settings.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return settings


def check_signature(inputs: list, outputs: list) -> int | None:
    """Check onnxruntime's input/output descriptions against FaceNet's contract; the fixed batch size, or None if dynamic.

    Raises ModelMismatch naming what differs. A fixed batch of 1 is accepted (pictures
    then run one at a time); a fixed batch of more is not.
    """
    if len(inputs) != 1:
        raise ModelMismatch(f"the model has {len(inputs)} inputs; FaceNet has one, [N,3,{SIDE},{SIDE}] float")
    if not outputs:
        raise ModelMismatch("the model has no output")
    shape_in, shape_out = list(inputs[0].shape), list(outputs[0].shape)
    if inputs[0].type != "tensor(float)":
        raise ModelMismatch(f"the model's input is {inputs[0].type}; FaceNet's is tensor(float)")
    if len(shape_in) != 4 or shape_in[1:] != [CHANNELS, SIDE, SIDE]:
        raise ModelMismatch(f"the model's input is {_shape(shape_in)}; FaceNet's is [N,{CHANNELS},{SIDE},{SIDE}]")
    if len(shape_out) != 2 or shape_out[1] != EMBEDDING:
        raise ModelMismatch(f"the model's output is {_shape(shape_out)}; FaceNet's is [N,{EMBEDDING}]")
    batch = shape_in[0] if isinstance(shape_in[0], int) and shape_in[0] > 0 else None
    if batch is not None and batch != 1:
        raise ModelMismatch(f"the model's batch size is fixed at {batch}; FaceNet's is dynamic (or 1)")
    return batch


def _shape(shape: list) -> str:
    return "[" + ",".join("N" if d is None or isinstance(d, str) else str(d) for d in shape) + "]"


def decode(data: bytes):
    """A picture's bytes -> a 160x160 RGB PIL image; BadImage for anything unusable."""
    import io
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise BadImage("the picture is empty", "empty_image")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's warnings (EXIF quirks) are not logged
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)
        except UnidentifiedImageError:
            raise BadImage("the picture is not a JPEG, PNG or WebP image") from None
        except Image.DecompressionBombError:  # Pillow's own bound (~179 megapixels), far above ours
            raise BadImage(f"the picture is far larger than {MAX_SIDE} pixels a side (send the cropped face)", "image_too_large") from None
        except (OSError, ValueError, SyntaxError, EOFError):
            raise BadImage("the picture's header is damaged") from None
        width, height = image.size
        if width > MAX_SIDE or height > MAX_SIDE:
            raise BadImage(f"the picture is {width}x{height} pixels; at most {MAX_SIDE} a side is accepted (send the cropped face)",
                           "image_too_large")
        if width < 1 or height < 1:
            raise BadImage("the picture has no pixels")
        try:
            image.draft("RGB", (SIDE, SIDE))  # JPEG: decode at a reduced scale still >= 160 a side
            image.load()
            image = ImageOps.exif_transpose(image)
            image = image.convert("RGB")
            return image.resize((SIDE, SIDE), Image.Resampling.BILINEAR)
        except (OSError, ValueError, SyntaxError, EOFError, IndexError, Image.DecompressionBombError):
            raise BadImage("the picture is truncated or damaged", "damaged_image") from None


def preprocess(images: list) -> Any:
    """160x160 RGB images -> one float32 array [N,3,160,160], standardised as FaceNet: (x - 127.5) / 128."""
    import numpy as np

    batch = np.stack([np.asarray(image, dtype=np.float32) for image in images])  # N,H,W,C
    return np.ascontiguousarray(((batch - 127.5) / 128.0).transpose(0, 3, 1, 2), dtype=np.float32)


def unit_rows(vectors: Any) -> Any:
    """Each row scaled to unit L2 norm (in float64, then float32); ValueError for a zero or non-finite row."""
    import numpy as np

    rows = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise ValueError("the model returned a zero or non-finite embedding")
    return (rows / norms).astype(np.float32)


def distance(a: Any, b: Any) -> float:
    """Plain Euclidean distance between two embeddings (0..2 for unit vectors)."""
    import numpy as np

    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def probe_picture(seed: int) -> bytes:
    """A generated PNG (smooth colour ramps, varied by ``seed``): what the readiness probe embeds."""
    import io

    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / SIDE
    pixels = np.stack([x * 255, y * 255, (0.5 + 0.5 * np.sin(6.0 * (x + y) + seed)) * 255], axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(buffer, "PNG")
    return buffer.getvalue()


class FaceModel:
    """One onnxruntime session over the model file; ``embed`` runs on the server's worker thread."""

    def __init__(self, model_file: Path):
        self.model_file = Path(model_file)
        self.session = None
        self.input_name = ""
        self.batch: int | None = None
        self.providers: list[str] = []

    def load(self) -> None:
        """Open the session (CoreML where offered, else CPU) and check its shapes; ModelMismatch if they differ."""
        import onnxruntime

        session = onnxruntime.InferenceSession(str(self.model_file), sess_options=session_options(),
                                               providers=choose_providers(onnxruntime.get_available_providers()))
        self.batch = check_signature(session.get_inputs(), session.get_outputs())
        self.input_name = session.get_inputs()[0].name
        self.providers = session.get_providers()
        self.session = session
        LOG.info("loaded %s with %s", self.model_file.name, ", ".join(self.providers))

    def embed(self, pictures: list[bytes]) -> Any:
        """Pictures' bytes -> unit embeddings [N,512] (float32). BadImage names the picture (0-based) that failed."""
        import numpy as np

        images = []
        for index, data in enumerate(pictures):
            try:
                images.append(decode(data))
            except BadImage as exc:
                exc.index = index
                raise
        batch = preprocess(images)
        try:
            if self.batch == 1:
                raw = np.concatenate([self.session.run(None, {self.input_name: batch[i:i + 1]})[0] for i in range(len(images))])
            else:
                raw = self.session.run(None, {self.input_name: batch})[0]
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors derive from Exception only
            raise ModelFailure(f"onnxruntime failed ({type(exc).__name__})") from None
        if raw.shape != (len(images), EMBEDDING):
            raise ModelFailure(f"the model returned shape {list(raw.shape)} for {len(images)} pictures; expected [{len(images)},{EMBEDDING}]")
        try:
            return unit_rows(raw)
        except ValueError as exc:
            raise ModelFailure(str(exc)) from None

    def probe(self) -> None:
        """The readiness probe: two generated pictures embedded in one call; unit norm, not identical."""
        import numpy as np

        vectors = self.embed([probe_picture(0), probe_picture(3)])
        if not np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4):
            raise ModelMismatch("the probe's embeddings are not unit vectors")
        if distance(vectors[0], vectors[1]) == 0.0:
            raise ModelMismatch("the model gives two different pictures the same embedding")


def _error(status: int, message: str, code: str, kind: str = "invalid_request_error"):
    from starlette.responses import JSONResponse

    from prontuario_cli.serve.asgi import error_body

    return JSONResponse(error_body(message, kind, code), status_code=status)


async def read_pictures(request, fields: tuple[tuple[str, str], ...]) -> list[bytes]:
    """The pictures of a request, in ``fields`` order: multipart parts or base64 JSON values. BadImage otherwise.

    Nothing the client chose (file names, other field names, values) goes into a message.
    """
    import base64
    import binascii
    import json

    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException

    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        try:
            form = await request.form(max_files=len(fields), max_fields=len(fields) + 4)
        except HTTPException:
            raise BadImage(f"the multipart form could not be read (malformed, or more than {len(fields)} file parts)", "invalid_multipart") from None
        try:
            pictures = []
            for part, _ in fields:
                value = form.get(part)
                if value is None:
                    raise BadImage(f"the multipart form has no part '{part}'", "missing_image")
                if not isinstance(value, UploadFile):
                    raise BadImage(f"the part '{part}' must be a file (a picture)", "missing_image")
                pictures.append(await value.read())
            return pictures
        finally:
            await form.close()
    if content_type == "application/json":
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise BadImage("the body is not valid JSON", "invalid_json") from None
        if not isinstance(body, dict):
            raise BadImage("the JSON body must be an object", "invalid_json")
        pictures = []
        for _, key in fields:
            value = body.get(key)
            if not isinstance(value, str):
                raise BadImage(f"the JSON body has no string '{key}' (a base64 picture)", "missing_image")
            if value.startswith("data:") and "," in value:
                value = value.split(",", 1)[1]
            try:
                pictures.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                raise BadImage(f"'{key}' is not valid base64", "invalid_base64") from None
        return pictures
    raise BadImage("send multipart/form-data or application/json", "unsupported_media_type")


def build(options, loaded, model_file: Path):
    """The Starlette app: /v1/face/embed, /v1/face/verify, and serve.asgi's /health, /ready, /status."""
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from prontuario_cli.serve.asgi import ServerState, build_app, run_model

    state = ServerState(kind="face", model=loaded.name, version=loaded.version, path=str(loaded.path))
    model = FaceModel(model_file)

    async def embeddings(request, action: str):
        """The unit embeddings of the request's pictures, or the response that says why not."""
        fields = FIELDS[action]
        try:
            pictures = await read_pictures(request, fields)
            result = await run_model(state, model.embed, pictures)
        except BadImage as exc:
            where = fields[exc.index][0] if len(fields) > 1 and exc.index is not None else ""
            status = 415 if exc.code == "unsupported_media_type" else 400
            return _error(status, f"{where}: {exc.message}" if where else exc.message, exc.code)
        except ModelFailure as exc:
            LOG.error("%s failed in the model: %s", action, exc)
            return _error(500, "the model failed on this request", "inference_failed", "server_error")
        return result

    async def embed(request):
        result = await embeddings(request, "embed")
        if isinstance(result, Response):
            return result
        return JSONResponse({"embedding": result[0].tolist(), "norm": round(float((result[0].astype("float64") ** 2).sum() ** 0.5), 6),
                             "model": state.model, "version": state.version})

    async def verify(request):
        result = await embeddings(request, "verify")
        if isinstance(result, Response):
            return result
        gap = distance(result[0], result[1])
        return JSONResponse({"distance": gap, "match": gap <= options.match_threshold, "threshold": options.match_threshold,
                             "model": state.model, "version": state.version})

    routes = [Route("/v1/face/embed", embed, methods=["POST"]), Route("/v1/face/verify", verify, methods=["POST"])]
    return build_app(state, routes, load=model.load, probe=model.probe, limit_bytes=options.max_bytes, queue=options.queue)


def run(options, loaded) -> None:
    """Serve FaceNet from the verified ``loaded`` directory until SIGTERM (then in-flight requests finish).

    The model file is found first: none or several ``.onnx`` files refuse the start
    (IntegrityError, exit 65). Loading and the probe run after the port is open.
    """
    from prontuario_cli.serve.asgi import configure_logging, serve

    model_file = find_model_file(Path(loaded.path))
    configure_logging(options.log_file)
    serve(build(options, loaded, model_file), options.host, options.port)
