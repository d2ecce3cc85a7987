"""A tiny random MedGemma-shaped model for the server tests, about two seconds to build (no download).

The builder is product code, shared with ``prontuario lab up --with-serve``:
:func:`prontuario_cli.lab.tiny_models.build_tiny_llm`.
"""

from __future__ import annotations

from prontuario_cli.lab.tiny_models import CHAT_TEMPLATE, LAYOUTS, SENTENCES, SPECIAL, build_tiny_llm

__all__ = ["CHAT_TEMPLATE", "LAYOUTS", "SENTENCES", "SPECIAL", "build_tiny_llm"]
