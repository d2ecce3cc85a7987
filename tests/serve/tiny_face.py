"""Pictures for the FaceNet server tests, and the tiny FaceNet-shaped ONNX they serve (no download, ~70 KB).

The builder is product code, shared with ``prontuario lab up --with-serve``:
:func:`prontuario_cli.lab.tiny_models.build_facenet`.

Same contract as the production FaceNet (InceptionResnetV1 converted to ONNX): input
``[N,3,160,160]`` float32, output ``[N,512]`` L2-normalised. Random weights from a fixed
seed: embeddings mean nothing, but they are deterministic, depend on the picture, and the
graph is a real convolutional network run by onnxruntime.

    conv 3x3 stride 2 (3->8) -> relu -> [slow: 1x1 up to 48, `work` x shared 3x3 (48->48) + clip, 1x1 back, added]
    -> average pool 40x40 -> flatten (32) -> gemm (32->512) -> LpNormalization(p=2)

Variants for the tests: ``work`` layers make one inference slower without making the file
larger (the layers share one weight tensor); ``normalised=False`` leaves the output at
norm ~3 (the server must normalise it itself); ``embedding`` other than 512 and
``side`` other than 160 give a model the server must refuse.
"""

from __future__ import annotations

from prontuario_cli.lab.tiny_models import MODEL_FILE, build_facenet

__all__ = ["MODEL_FILE", "build_facenet", "checkerboard", "face_like"]


def face_like(seed: int = 0, size: int = 200, fmt: str = "JPEG") -> bytes:
    """A picture of ``size`` pixels a side, in ``fmt``: a face-coloured oval on a background, varied by ``seed``."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    background = rng.uniform(0, 255, 3)
    skin = rng.uniform(90, 230, 3)
    cy, cx, ry, rx = 0.5 + rng.uniform(-0.05, 0.05), 0.5 + rng.uniform(-0.05, 0.05), rng.uniform(0.3, 0.45), rng.uniform(0.25, 0.4)
    inside = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0
    pixels = np.where(inside[..., None], skin, background) + rng.normal(0, 6, (size, size, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(buffer, fmt)
    return buffer.getvalue()


def checkerboard(size: int = 160, square: int = 20, fmt: str = "PNG") -> bytes:
    """Black and white squares: as unlike a face as a picture gets."""
    import io

    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:size, 0:size]
    pixels = (((y // square + x // square) % 2) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.stack([pixels] * 3, axis=-1), "RGB").save(buffer, fmt)
    return buffer.getvalue()
