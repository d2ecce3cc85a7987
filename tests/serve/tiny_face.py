"""A FaceNet-shaped ONNX built here with the ``onnx`` helper API: no download, ~70 KB.

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

from pathlib import Path

MODEL_FILE = "facenet.onnx"


def build_facenet(directory: Path, *, seed: int = 0, work: int = 0, normalised: bool = True, embedding: int = 512, side: int = 160,
                  file_name: str = MODEL_FILE) -> Path:
    """Write the model into ``directory`` (created); the .onnx file's path."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights: list = []

    def tensor(name: str, shape: tuple[int, ...], scale: float) -> str:
        weights.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    nodes = [
        helper.make_node("Conv", ["image", tensor("stem_w", (8, 3, 3, 3), 0.3), tensor("stem_b", (8,), 0.1)], ["stem"],
                         kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["stem"], ["features_0"]),
    ]
    last = "features_0"
    if work:
        wide = 48
        nodes.append(helper.make_node("Conv", [last, tensor("up_w", (wide, 8, 1, 1), 0.3)], ["wide_0"], kernel_shape=[1, 1]))
        shared = tensor("work_w", (wide, wide, 3, 3), 2.0 / (9 * wide) ** 0.5)
        weights += [numpy_helper.from_array(np.array(0.0, dtype=np.float32), "low"), numpy_helper.from_array(np.array(1.0, dtype=np.float32), "high")]
        for i in range(work):  # clipped to [0, 1]: bounded through any depth, and no denormals to slow it unevenly
            nodes.append(helper.make_node("Conv", [f"wide_{i}", shared], [f"work_{i}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node("Clip", [f"work_{i}", "low", "high"], [f"wide_{i + 1}"]))
        nodes.append(helper.make_node("Conv", [f"wide_{work}", tensor("down_w", (8, wide, 1, 1), 0.3)], ["branch"], kernel_shape=[1, 1]))
        nodes.append(helper.make_node("Add", [last, "branch"], ["features_1"]))  # the picture still shows through
        last = "features_1"
    pooled = side // 4  # the stem halves the side; the pool leaves 2x2
    nodes += [
        helper.make_node("AveragePool", [last], ["pooled"], kernel_shape=[pooled, pooled], strides=[pooled, pooled]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", tensor("fc_w", (32, embedding), 0.5), tensor("fc_b", (embedding,), 0.1)], ["raw"]),
    ]
    if normalised:
        nodes.append(helper.make_node("LpNormalization", ["raw"], ["embedding"], p=2, axis=1))
    else:
        weights.append(numpy_helper.from_array(np.array([3.0], dtype=np.float32), "three"))
        nodes += [helper.make_node("LpNormalization", ["raw"], ["unit"], p=2, axis=1),
                  helper.make_node("Mul", ["unit", "three"], ["embedding"])]

    graph = helper.make_graph(
        nodes, "facenet_tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, side, side])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", embedding])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="prontuario-tests")
    model.ir_version = 8  # readable by older onnxruntime builds too
    onnx.checker.check_model(model, full_check=True)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name
    onnx.save(model, str(path))
    return path


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
