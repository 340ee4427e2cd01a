"""Endpointing: close an utterance after enough trailing non-speech.

The CTC posteriors already say where speech is: an utterance that has emitted
at least one token closes once the best path has been blank for
``silence_seconds`` (Watson's ``end_of_phrase_silence_time``, default 0.8 s),
or once it has run ``max_utterance_seconds``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EndpointConfig:
    """When to close an utterance.

    Attributes:
        silence_seconds: trailing blank time that ends an utterance.
        max_utterance_seconds: longest utterance before a forced close.
    """

    silence_seconds: float = 0.8
    max_utterance_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.silence_seconds <= 120:
            raise ValueError(f"silence_seconds must be in (0, 120], got {self.silence_seconds}")
        if self.max_utterance_seconds <= 0:
            raise ValueError(f"max_utterance_seconds must be positive, got {self.max_utterance_seconds}")


def should_close(config: EndpointConfig, *, frames_done: int, first_token_frame: int | None,
                 last_token_frame: int | None, frame_seconds: float) -> bool:
    """True when the open utterance should be finalised now.

    Args:
        config: thresholds.
        frames_done: output frames decoded so far in the stream.
        first_token_frame: frame of the utterance's first token (None: nothing heard yet).
        last_token_frame: frame of its latest token.
        frame_seconds: duration of one output frame.
    """
    if first_token_frame is None or last_token_frame is None:
        return False
    trailing = (frames_done - last_token_frame - 1) * frame_seconds
    length = (frames_done - first_token_frame) * frame_seconds
    return trailing >= config.silence_seconds or length >= config.max_utterance_seconds
