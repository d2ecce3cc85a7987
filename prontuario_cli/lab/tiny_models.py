"""Tiny, real, random models for the lab's inference servers and the server tests (no download).

- :func:`build_tiny_llm`: a MedGemma-shaped model for mlx-lm. A byte-level BPE tokenizer
  trained with ``tokenizers`` on a few sentences, a Gemma-style chat template, a 2-layer
  ``gemma3_text`` (or ``gemma3``, MedGemma's own layout) config, and weights made by
  mlx-lm's own model class for that layout, so the names match what mlx-lm loads. mlx-lm's
  gemma3 reads the cache slot at ``sliding_window_pattern - 1``, so the pattern must not
  exceed the number of layers (the default 6 crashes a 2-layer model).
- :func:`build_tiny_whisper`: a Whisper for mlx-whisper in large-v3's layout (128 mels, 1500
  audio positions, 51866 tokens; 1 layer, 64 wide: ~7 MB). ``n_text_ctx`` is 64, so a decode
  stops after at most 32 tokens whatever the weights say.
- :func:`build_facenet`: a FaceNet-shaped ONNX (~70 KB) with the production contract: input
  ``[N,3,160,160]`` float32, output ``[N,512]`` L2-normalised. ``work`` layers make one
  inference slower without making the file larger (they share one weight tensor);
  ``normalised=False`` leaves the output at norm ~3; ``embedding`` other than 512 and
  ``side`` other than 160 give a model a server must refuse.

Random weights from a fixed seed: the outputs mean nothing, but the structure is real and
the bytes are deterministic. mlx, mlx-lm, mlx-whisper and onnx are imported inside the
builders.
"""

from __future__ import annotations

import json
from pathlib import Path

MODEL_FILE = "facenet.onnx"

SENTENCES = [
    "The patient reports a mild headache since yesterday evening.",
    "Blood pressure is stable and the heart rate is normal.",
    "Take one tablet twice a day after meals for five days.",
    "No known allergies. Follow up in two weeks at the clinic.",
    "O paciente relata dor de cabeça leve desde ontem à noite.",
    "Pressão arterial estável, frequência cardíaca normal.",
]
SPECIAL = ["<pad>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{{ message['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
LAYOUTS = ("gemma3_text", "gemma3")


def build_tiny_llm(directory: Path, *, layout: str = "gemma3_text", seed: int = 0, vocab: int = 384) -> Path:
    """Write a loadable mlx-lm model directory (config, tokenizer, weights) at ``directory``."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    directory.mkdir(parents=True, exist_ok=True)

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(SENTENCES, trainer)
    tokenizer.save(str(directory / "tokenizer.json"))
    ids = {token: tokenizer.token_to_id(token) for token in SPECIAL}
    vocab_size = tokenizer.get_vocab_size()

    (directory / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "pad_token": "<pad>",
        "additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"],
        "add_bos_token": False,
        "model_max_length": 512,
        "chat_template": CHAT_TEMPLATE,
    }, indent=2))

    text = {
        "model_type": "gemma3_text",
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "query_pre_attn_scalar": 16,
        "vocab_size": vocab_size,
        "sliding_window": 64,
        "sliding_window_pattern": 2,  # <= num_hidden_layers (see the module docstring)
        "max_position_embeddings": 512,
        "rms_norm_eps": 1e-6,
    }
    tokens = {"bos_token_id": ids["<bos>"], "pad_token_id": ids["<pad>"], "eos_token_id": [ids["<eos>"], ids["<end_of_turn>"]]}
    if layout == "gemma3_text":
        config = {**text, **tokens}
        from mlx_lm.models import gemma3_text as module
    else:
        config = {"model_type": "gemma3", "vocab_size": vocab_size, "text_config": dict(text), **tokens}
        from mlx_lm.models import gemma3 as module
    (directory / "config.json").write_text(json.dumps(config, indent=2))

    mx.random.seed(seed)
    model = module.Model(module.ModelArgs.from_dict(json.loads(json.dumps(config))))
    weights = {name: value for name, value in tree_flatten(model.parameters()) if "lm_head" not in name}  # tied, as Gemma's
    mx.save_safetensors(str(directory / "model.safetensors"), weights, metadata={"format": "mlx"})
    return directory


WHISPER_CONFIG = {
    "model_type": "whisper",
    "n_mels": 128,
    "n_audio_ctx": 1500,
    "n_audio_state": 64,
    "n_audio_head": 2,
    "n_audio_layer": 1,
    "n_vocab": 51866,
    "n_text_ctx": 64,
    "n_text_state": 64,
    "n_text_head": 2,
    "n_text_layer": 1,
}


def build_tiny_whisper(directory: Path, seed: int = 0) -> Path:
    """Write ``config.json`` + ``weights.safetensors`` (float16) of a random Whisper into ``directory``."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_whisper.whisper import ModelDimensions, Whisper

    directory.mkdir(parents=True, exist_ok=True)
    mx.random.seed(seed)
    dims = {k: v for k, v in WHISPER_CONFIG.items() if k != "model_type"}
    model = Whisper(ModelDimensions(**dims), mx.float16)
    weights = {name: value.astype(mx.float16) for name, value in tree_flatten(model.parameters()) if name != "alignment_heads"}
    mx.save_safetensors(str(directory / "weights.safetensors"), weights)
    (directory / "config.json").write_text(json.dumps(WHISPER_CONFIG, indent=2) + "\n")
    return directory


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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="prontuario-lab")
    model.ir_version = 8  # readable by older onnxruntime builds too
    onnx.checker.check_model(model, full_check=True)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name
    onnx.save(model, str(path))
    return path


def lab_models() -> tuple[tuple[str, str, object], ...]:
    """The lab's three models: (name, role, builder); the names are :data:`spec.SERVE_KINDS`'s."""
    from prontuario_cli.lab.spec import SERVE_KINDS

    builders = {"llm": build_tiny_llm, "stt": build_tiny_whisper, "face": build_facenet}
    return tuple((SERVE_KINDS[role][0], role, builders[role]) for role in SERVE_KINDS)


def build_lab_models(directory: Path) -> dict[str, Path]:
    """Build each lab model into ``directory/NAME`` unless it is already there; ``{name: dir}``.

    Each is built into a temporary sibling and renamed into place, so an interrupted build
    never leaves a half-written model that a later run would take as complete.
    """
    import shutil

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    built = {}
    for name, _, build in lab_models():
        target = directory / name
        if not target.is_dir():
            partial = directory / f".{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            build(partial)
            partial.rename(target)
        built[name] = target
    return built
