"""A tiny random MedGemma-shaped model, built here in about two seconds (no download).

A byte-level BPE tokenizer trained with ``tokenizers`` on a few sentences, a Gemma-style
chat template, a 2-layer ``gemma3_text`` (or ``gemma3``, MedGemma's own layout) config,
and weights made by mlx-lm's own model class for that layout, so the names match what
mlx-lm loads. Random weights: the text it writes is noise, its structure is real.

Facts that shape it: mlx-lm's gemma3 reads the cache slot at ``sliding_window_pattern - 1``,
so the pattern must not exceed the number of layers (the default 6 crashes a 2-layer model).
"""

from __future__ import annotations

import json
from pathlib import Path

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
