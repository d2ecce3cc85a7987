"""Models: keep MedGemma, Whisper and FaceNet identical and intact on both Macs.

- :mod:`.manifest`: one YAML manifest per model, every file pinned by size and sha256;
- :mod:`.verify`: a directory checked against its manifest, hashed in parallel;
- :mod:`.store`: versioned directories on a node and the atomic ``current`` pointer;
- :mod:`.local`: what runs on the node itself (lock, pull, verify, activate, status);
- :mod:`.sync`: Mac-to-Mac copies with rsync over SSH, verified on both ends.
"""
