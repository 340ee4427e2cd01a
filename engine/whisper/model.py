"""The streaming CTC model on Whisper's encoder, and the pretrained Whisper it comes from.

:class:`StreamingWhisperCTC` has the interface of :class:`engine.model.StreamingCTC` that streams,
the scheduler and the recipes use: ``initial_state``, ``step(features, lengths, state) ->
(log_probs, out_lengths, new_state)``, ``forward`` for whole utterances, ``stack_states`` /
``split_states``. Inside: Whisper's streaming encoder (:mod:`engine.whisper.network`), whose
trained blocks replace the pretrained ones, and a linear CTC head over a small sentencepiece
vocabulary (id 0 = blank).

Input normalisation: Whisper floors each input 8 (log10) below its maximum, which needs the whole
input. The streaming model floors at a fixed level instead, ``ceiling - 8`` with the ceiling of
:data:`engine.whisper.features.STREAMING_CEILING`; louder frames are not clipped (Whisper's
maximum would move with them). The full-context second pass keeps Whisper's own rule over the
utterance (:func:`engine.whisper.features.normalise_utterance`).

Positions: the state counts encoder frames; Whisper has 1,500 positions (30 s), so streams restart
their state at each utterance boundary and after :attr:`WhisperCTCConfig.idle_restart_frames` of
silence (see :class:`engine.recognizer.Stream`), and utterances are cut before 30 s.

Shapes: ``B``: batch, ``T``: mel frames (10 ms), ``U``: output frames (20 ms), ``V``: CTC vocabulary.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from engine.whisper.features import STREAMING_CEILING, normalise_streaming
from engine.whisper.network import AudioEncoder, EncoderCache, Whisper, WhisperDims
from engine.whisper.importing import ImportedSource, resolve_source
from engine.whisper.weights import read_ct2, verified_model_bin, whisper_state_dict

#: The state of a batch of streams of a :class:`StreamingWhisperCTC`.
WhisperState = EncoderCache


@dataclass(frozen=True)
class WhisperCTCConfig:
    """Architecture of a :class:`StreamingWhisperCTC`.

    Attributes:
        pretrained: the weights it builds on: a key of :data:`engine.whisper.weights.SOURCES`, or
            the folder of an imported checkpoint (:mod:`engine.whisper.importing`).
        vocab_size: CTC classes, blank included.
        chunk_frames: encoder frames (20 ms) per attention chunk: 8 = 160 ms, the look-ahead.
        left_chunks: chunks of left context each frame attends to (32 = 5.12 s).
        trained_blocks: the top encoder blocks whose weights the artifact carries (the others are
            the pretrained ones).
        ceiling: the streaming normaliser's fixed ceiling.
        dims: the Whisper model's sizes.
    """

    pretrained: str
    vocab_size: int
    chunk_frames: int = 8
    left_chunks: int = 32
    trained_blocks: int = 2
    ceiling: float = STREAMING_CEILING
    dims: WhisperDims = WhisperDims()

    kind = "whisper-ctc"

    @property
    def frames_per_output(self) -> int:
        """Mel frames (10 ms) per output frame."""
        return 2

    @property
    def chunk_multiple(self) -> int:
        """Stream chunks must be whole attention chunks: this many mel frames."""
        return 2 * self.chunk_frames

    @property
    def n_mels(self) -> int:
        """Input feature dimension."""
        return self.dims.n_mels

    @property
    def cache_frames(self) -> int:
        """Keys and values kept per layer and stream."""
        return self.chunk_frames * self.left_chunks

    @property
    def idle_restart_frames(self) -> int:
        """Output frames without a token after which a stream restarts its state (4 s)."""
        return 200

    @property
    def max_utterance_seconds(self) -> float:
        """Longest utterance the positions allow, with the idle stretch before it."""
        return (self.dims.n_audio_ctx - self.idle_restart_frames - self.chunk_frames) * 0.02

    def to_dict(self) -> dict:
        """Serialisable form for a manifest."""
        data = asdict(self)
        data["kind"] = self.kind
        return data

    @classmethod
    def from_dict(cls, data: dict) -> WhisperCTCConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        data = {k: v for k, v in data.items() if k != "kind"}
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        if "dims" in data:
            data["dims"] = WhisperDims.from_dict(data["dims"])
        return cls(**data)


def load_pretrained(name: str) -> Whisper:
    """The pretrained Whisper ``name``, checked by sha256, in eval mode.

    Args:
        name: a pinned source (:data:`engine.whisper.weights.SOURCES`) or the folder of an
            imported checkpoint (:mod:`engine.whisper.importing`).

    Raises:
        WeightsError: an unknown name, a carrying package missing, or weights that are not the
            pinned (or recorded) ones.
    """
    source = resolve_source(name)
    if isinstance(source, ImportedSource):
        state = source.load_state()
    else:
        _, variables = read_ct2(verified_model_bin(source))
        state = whisper_state_dict(variables)
    model = Whisper(WhisperDims.from_state_dict(state))
    model.load_state_dict(state)
    return model.eval()


@functools.cache
def shared_pretrained(name: str) -> Whisper:
    """:func:`load_pretrained`, once per process: every version built on the same weights shares them
    (read-only at inference; the streaming models take copies of the encoder)."""
    return load_pretrained(name)


def stack_states(states: list[WhisperState]) -> WhisperState:
    """Join states along the batch axis."""
    return WhisperState(torch.cat([s.offset for s in states]), torch.cat([s.conv1 for s in states]),
                        torch.cat([s.conv2 for s in states]),
                        tuple(torch.cat(layer) for layer in zip(*(s.keys for s in states))),
                        tuple(torch.cat(layer) for layer in zip(*(s.values for s in states))))


def split_states(state: WhisperState) -> list[WhisperState]:
    """One state per stream (inverse of :func:`stack_states`)."""
    keys = [k.split(1) for k in state.keys]
    values = [v.split(1) for v in state.values]
    return [WhisperState(o, c1, c2, tuple(layer[i] for layer in keys), tuple(layer[i] for layer in values))
            for i, (o, c1, c2) in enumerate(zip(state.offset.split(1), state.conv1.split(1), state.conv2.split(1)))]


class StreamingWhisperCTC(nn.Module):
    """Whisper's encoder, block-causal and streaming, with a CTC head; see the module docstring.

    Args:
        config: the architecture.
        encoder: the encoder to stream with (usually a copy of the pretrained one whose top
            blocks are then replaced by trained ones); a fresh one of ``config.dims`` if None.
    """

    stack_states = staticmethod(stack_states)
    split_states = staticmethod(split_states)

    def __init__(self, config: WhisperCTCConfig, encoder: AudioEncoder | None = None) -> None:
        super().__init__()
        self.config = config
        self.encoder = encoder if encoder is not None else AudioEncoder(config.dims)
        self.head = nn.Linear(config.dims.n_audio_state, config.vocab_size)

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights an artifact carries: the top ``trained_blocks`` blocks, ``ln_post`` and the head."""
        first = self.config.dims.n_audio_layer - self.config.trained_blocks
        keep = tuple(f"encoder.blocks.{i}." for i in range(first, self.config.dims.n_audio_layer))
        return {k: v for k, v in self.state_dict().items()
                if k.startswith(keep) or k.startswith(("encoder.ln_post.", "head."))}

    def initial_state(self, batch_size: int = 1) -> WhisperState:
        """State of ``batch_size`` fresh streams."""
        return self.encoder.initial_cache(batch_size, self.config.cache_frames)

    def restart_state(self, state: WhisperState) -> WhisperState:
        """The state a stream continues with at an utterance boundary: a fresh one (positions from 0)."""
        return self.initial_state(state.offset.shape[0])

    def _check(self, features: torch.Tensor, lengths: torch.Tensor) -> None:
        if features.shape[1] % 2 or bool((lengths % 2 != 0).any()):
            raise ValueError(f"frames per stream must be multiples of 2, got T={features.shape[1]}, "
                             f"lengths={lengths.tolist()}")
        if features.shape[2] != self.config.n_mels:
            raise ValueError(f"expected {self.config.n_mels} mel bins, got {features.shape[2]}")

    def step(self, features: torch.Tensor, lengths: torch.Tensor, state: WhisperState):
        """Advance a batch of streams by whole chunks.

        Args:
            features: ``(B, T, D)`` raw log10 mel (:class:`engine.whisper.features.WhisperFeatureConfig`).
            lengths: ``(B,)`` valid frames per stream, even; a stream's steps start on attention
                chunk boundaries (but for its last).
            state: the streams' state.

        Returns:
            ``(log_probs, out_lengths, new_state)``: ``(B, U, V)``, ``(B,)``, the state after.

        Raises:
            ValueError: odd frame counts or the wrong feature dimension.
        """
        self._check(features, lengths)
        c = self.config
        x = normalise_streaming(features, c.ceiling)
        out, out_lengths, new_state = self.encoder.step(x, lengths, state, chunk_frames=c.chunk_frames,
                                                        left_chunks=c.left_chunks)
        return F.log_softmax(self.head(out), dim=-1), out_lengths, new_state

    def forward(self, features: torch.Tensor, lengths: torch.Tensor):
        """Whole utterances, with the streaming computation: ``(log_probs, out_lengths)``."""
        self._check(features, lengths)
        c = self.config
        out = self.encoder(normalise_streaming(features, c.ceiling), lengths, causal=True,
                           chunk_frames=c.chunk_frames, left_chunks=c.left_chunks)
        return F.log_softmax(self.head(out), dim=-1), torch.div(lengths, 2, rounding_mode="floor")


def build_streaming(config: WhisperCTCConfig, pretrained: Whisper, trained: dict[str, torch.Tensor] | None = None
                    ) -> StreamingWhisperCTC:
    """A streaming model from the pretrained encoder and, when given, the artifact's trained weights.

    Raises:
        ValueError: trained weights that do not fit the architecture.
    """
    encoder = AudioEncoder(pretrained.dims)
    encoder.load_state_dict(pretrained.encoder.state_dict())
    model = StreamingWhisperCTC(config, encoder)
    if trained is not None:
        expected = set(model.trained_state_dict())
        if set(trained) != expected:
            raise ValueError(f"trained weights do not match the architecture: missing "
                             f"{sorted(expected - set(trained))[:5]}, unexpected {sorted(set(trained) - expected)[:5]}")
        model.load_state_dict({k: v.float() for k, v in trained.items()}, strict=False)
    return model.eval()
