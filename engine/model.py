"""A streaming CTC acoustic model with explicit, stackable state.

Architecture (the "pyramid GRU"): streaming mean normalisation of the log-mel
input, 4 frames stacked into one 40 ms vector, a projection, unidirectional GRU
layers, 2 more frames stacked into one 80 ms vector, more GRU layers, and a
linear CTC head over sentencepiece pieces (id 0 = blank).

Every operation is causal, so a stream can be fed in chunks of any multiple of
:data:`FRAMES_PER_OUTPUT` feature frames and gives the same outputs as the
whole utterance; the look-ahead is one output frame (80 ms) at most, well
inside the 200 ms budget of a chunk plus right context.

Shape legend: ``B``: batch (streams), ``T``: feature frames (10 ms),
``U``: output frames (80 ms), ``D``: mel bins, ``H``: GRU width, ``V``: vocabulary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a :class:`StreamingCTC` model.

    Attributes:
        n_mels: input feature dimension ``D``.
        vocab_size: output classes ``V``, blank included.
        hidden: GRU width ``H``.
        low_layers: GRU layers at 40 ms.
        high_layers: GRU layers at 80 ms.
        stack_low: feature frames per 40 ms vector.
        stack_high: 40 ms vectors per output frame.
        cmn_prior_frames: weight, in frames, of the global mean in the running mean.
        dropout: dropout between layers during training.
    """

    n_mels: int
    vocab_size: int
    hidden: int = 320
    low_layers: int = 1
    high_layers: int = 2
    stack_low: int = 4
    stack_high: int = 2
    cmn_prior_frames: float = 100.0
    dropout: float = 0.1

    @property
    def frames_per_output(self) -> int:
        """Feature frames (10 ms) per output frame."""
        return self.stack_low * self.stack_high

    def to_dict(self) -> dict:
        """Serialisable form for a manifest."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


FRAMES_PER_OUTPUT = ModelConfig(n_mels=1, vocab_size=2).frames_per_output


@dataclass
class StreamState:
    """Recurrent state of a batch of streams.

    Attributes:
        cmn_sum: ``(B, D)`` sum of the feature frames seen so far.
        cmn_count: ``(B,)`` number of frames seen so far.
        low: ``(low_layers, B, H)`` hidden state of the 40 ms GRU.
        high: ``(high_layers, B, H)`` hidden state of the 80 ms GRU.
    """

    cmn_sum: torch.Tensor
    cmn_count: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor

    @property
    def batch_size(self) -> int:
        """Number of streams ``B``."""
        return int(self.cmn_count.shape[0])

    def to(self, device: torch.device | str) -> StreamState:
        """The same state on another device."""
        return StreamState(self.cmn_sum.to(device), self.cmn_count.to(device), self.low.to(device), self.high.to(device))


def stack_states(states: list[StreamState]) -> StreamState:
    """Join single- or multi-stream states along the batch axis."""
    return StreamState(
        torch.cat([s.cmn_sum for s in states]), torch.cat([s.cmn_count for s in states]),
        torch.cat([s.low for s in states], dim=1), torch.cat([s.high for s in states], dim=1),
    )


def split_states(state: StreamState) -> list[StreamState]:
    """Split a batch state into one state per stream (inverse of :func:`stack_states`)."""
    return [
        StreamState(state.cmn_sum[i : i + 1], state.cmn_count[i : i + 1], state.low[:, i : i + 1], state.high[:, i : i + 1])
        for i in range(state.batch_size)
    ]


class StreamingCTC(nn.Module):
    """The pyramid-GRU streaming CTC model; see the module docstring."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("feature_mean", torch.zeros(c.n_mels))
        self.register_buffer("feature_std", torch.ones(c.n_mels))
        self.proj_low = nn.Sequential(nn.Linear(c.n_mels * c.stack_low, c.hidden), nn.LayerNorm(c.hidden), nn.GELU())
        self.gru_low = nn.GRU(c.hidden, c.hidden, num_layers=c.low_layers, batch_first=True)
        self.proj_high = nn.Sequential(nn.Linear(c.hidden * c.stack_high, c.hidden), nn.LayerNorm(c.hidden), nn.GELU())
        self.gru_high = nn.GRU(c.hidden, c.hidden, num_layers=c.high_layers, batch_first=True,
                               dropout=c.dropout if c.high_layers > 1 else 0.0)
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden, c.vocab_size)

    def initial_state(self, batch_size: int = 1) -> StreamState:
        """State of ``batch_size`` fresh streams."""
        c, device = self.config, self.feature_mean.device
        return StreamState(
            torch.zeros(batch_size, c.n_mels, device=device), torch.zeros(batch_size, device=device),
            torch.zeros(c.low_layers, batch_size, c.hidden, device=device),
            torch.zeros(c.high_layers, batch_size, c.hidden, device=device),
        )

    def _normalise(self, features: torch.Tensor, lengths: torch.Tensor, state: StreamState):
        """Causal mean normalisation: frame t minus the running mean up to t (with a global prior)."""
        B, T, _ = features.shape
        valid = (torch.arange(T, device=features.device)[None, :] < lengths[:, None]).to(features.dtype)  # (B, T)
        x = features * valid[..., None]
        csum = state.cmn_sum[:, None, :] + torch.cumsum(x, dim=1)  # (B, T, D)
        ccount = state.cmn_count[:, None] + torch.cumsum(valid, dim=1)  # (B, T)
        prior = self.config.cmn_prior_frames
        mean = (csum + prior * self.feature_mean) / (ccount[..., None] + prior)
        normed = (features - mean) / self.feature_std * valid[..., None]
        last = (lengths - 1).clamp(min=0)
        idx = torch.arange(B, device=features.device)
        new_sum = torch.where(lengths[:, None] > 0, csum[idx, last], state.cmn_sum)
        new_count = torch.where(lengths > 0, ccount[idx, last], state.cmn_count)
        return normed, new_sum, new_count

    @staticmethod
    def _gru(gru: nn.GRU, x: torch.Tensor, lengths: torch.Tensor, h0: torch.Tensor):
        """Run a GRU over padded sequences; padded steps do not touch the state."""
        nonzero = lengths > 0
        if bool(nonzero.all()):
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, h = gru(packed, h0)
            out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
            return out, h
        # Streams with nothing in this step keep their state and produce no output.
        out = torch.zeros(x.shape[0], x.shape[1], gru.hidden_size, dtype=x.dtype, device=x.device)
        h = h0.clone()
        if bool(nonzero.any()):
            sub_out, sub_h = StreamingCTC._gru(gru, x[nonzero], lengths[nonzero], h0[:, nonzero].contiguous())
            out[nonzero] = sub_out
            h[:, nonzero] = sub_h
        return out, h

    def step(self, features: torch.Tensor, lengths: torch.Tensor, state: StreamState):
        """Advance a batch of streams by one chunk.

        Args:
            features: ``(B, T, D)`` log-mel frames; ``T`` a multiple of
                ``config.frames_per_output``.
            lengths: ``(B,)`` valid frames per stream, each a multiple of
                ``config.frames_per_output`` (frames past it are padding).
            state: the streams' state before this chunk.

        Returns:
            ``(log_probs, out_lengths, new_state)``: ``(B, U, V)`` log
            posteriors, ``(B,)`` valid output frames, and the state after
            the chunk.

        Raises:
            ValueError: on a ``T`` or length that is not a whole number of output frames.
        """
        c = self.config
        B, T, D = features.shape
        k = c.frames_per_output
        if T % k or bool((lengths % k != 0).any()):
            raise ValueError(f"frames per stream must be multiples of {k}, got T={T}, lengths={lengths.tolist()}")
        if D != c.n_mels:
            raise ValueError(f"expected {c.n_mels} mel bins, got {D}")
        x, cmn_sum, cmn_count = self._normalise(features, lengths, state)
        x = self.proj_low(x.reshape(B, T // c.stack_low, D * c.stack_low))
        x, low = self._gru(self.gru_low, self.dropout(x), lengths // c.stack_low, state.low)
        x = self.proj_high(x.reshape(B, T // k, c.hidden * c.stack_high))
        out_lengths = lengths // k
        x, high = self._gru(self.gru_high, self.dropout(x), out_lengths, state.high)
        log_probs = torch.log_softmax(self.head(self.dropout(x)), dim=-1)
        return log_probs, out_lengths, StreamState(cmn_sum, cmn_count, low, high)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor):
        """Whole utterances from a fresh state: ``(log_probs, out_lengths)``."""
        log_probs, out_lengths, _ = self.step(features, lengths, self.initial_state(features.shape[0]))
        return log_probs, out_lengths
