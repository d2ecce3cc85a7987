"""Serve: the three local inference servers, each on the active, verified version of its model.

- :mod:`.llm`: MedGemma on mlx-lm's own server, pinned to its model;
- :mod:`.stt`: Whisper (mlx-whisper) behind OpenAI's ``/v1/audio/transcriptions``;
- :mod:`.face`: FaceNet (onnxruntime) embeddings and verification;
- :mod:`.asgi`: what the ASGI servers share (readiness, bounded queue, access log without bodies);
- :mod:`.options`: how a server is started, and the model it may load (``models.local.servable``);
- :mod:`.units`: launchd plists and systemd units rendered from the inventory;
- :mod:`.status`: ``serve status``, like ``ollama ps``.

The heavy runtimes (mlx, onnxruntime, Starlette, uvicorn) are imported only inside the
server processes.
"""
