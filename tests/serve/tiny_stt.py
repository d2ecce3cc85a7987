"""A tiny random Whisper for mlx-whisper (large-v3's layout: 128 mels, 1500 audio positions, 51866
tokens; 1 layer, 64 wide: ~7 MB, well under a second to build) and speech clips made by espeak-ng.

The builder is product code, shared with ``prontuario lab up --with-serve``:
:func:`prontuario_cli.lab.tiny_models.build_tiny_whisper`.

Random weights transcribe nonsense; the tests check structure, never words. ``n_text_ctx`` is
small (64), so a decode stops after at most 32 tokens whatever the weights say.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from prontuario_cli.lab.tiny_models import WHISPER_CONFIG, build_tiny_whisper

CONFIG = WHISPER_CONFIG
MODEL_NAME = "whisper-tiny"


def espeak_wav(text: str, path: Path, voice: str = "pt-br") -> Path:
    """Speech for ``text`` as a WAV file (espeak-ng: 22.05 kHz, 16-bit mono)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: run ./install.sh (Debian package espeak-ng)")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, timeout=60, capture_output=True)
    return path


def longer_wav(source: Path, path: Path, times: int) -> Path:
    """``source`` repeated ``times`` times (a longer clip, same format)."""
    with wave.open(str(source), "rb") as reader:
        params, frames = reader.getparams(), reader.readframes(reader.getnframes())
    with wave.open(str(path), "wb") as writer:
        writer.setparams(params)
        writer.writeframes(frames * times)
    return path


def wav_bytes(samples, rate: int = 16000) -> bytes:
    """16-bit mono WAV bytes of float samples in [-1, 1]."""
    import numpy as np

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tiny_stt(tmp_path_factory) -> Path:
    """A tiny random Whisper directory, built once per test module."""
    return build_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper"))


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    """A real speech clip (~3 s, Portuguese) made by espeak-ng."""
    return espeak_wav("O paciente relata dor no peito há três dias.", tmp_path_factory.mktemp("speech") / "speech.wav")
