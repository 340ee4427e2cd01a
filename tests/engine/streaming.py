"""Test helper: feed a signal to a stream in 0.1 s pieces (at 16 kHz) and collect its finals."""

from __future__ import annotations

import torch

from engine.recognizer import Recognizer, Result, Stream

PIECE = 1600


def stream_finals(recognizer: Recognizer, stream: Stream, audio: torch.Tensor) -> list[Result]:
    """Every final result of ``audio`` fed piece by piece, stepping whenever a chunk is ready."""
    out: list[Result] = []
    for i in range(0, audio.numel(), PIECE):
        stream.accept_audio(audio[i : i + PIECE])
        while stream.has_chunk:
            out += [r for r in recognizer.step([stream])[0] if r.final]
    stream.end_audio()
    while not stream.finished:
        out += [r for r in recognizer.step([stream])[0] if r.final]
    return out
