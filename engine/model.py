"""A streaming CTC acoustic model with explicit, stackable state.

Architecture (a causal convolutional encoder): streaming mean normalisation of
the log-mel input, 4 frames stacked into one 40 ms vector and projected, then
residual blocks of [LayerNorm, causal depthwise convolution over time (with
dilation), feed-forward], and a linear CTC head over sentencepiece pieces
(id 0 = blank). Convolutions train far faster than recurrent layers on a CPU
(every frame at once) and stream exactly: each block keeps the last
``(kernel - 1) * dilation`` inputs in the state.

Every operation is causal, so a stream fed in chunks of any multiple of
``frames_per_output`` feature frames gives the same outputs as the whole
utterance. There is no right context: the look-ahead is the chunk itself
(160 ms by default), inside the 200 ms budget.

Shape legend: ``B``: batch (streams), ``T``: feature frames (10 ms),
``U``: output frames (40 ms), ``D``: mel bins, ``C``: channels, ``V``: vocabulary.
"""

from __future__ import annotations

import warnings

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a :class:`StreamingCTC` model.

    Attributes:
        n_mels: input feature dimension ``D``.
        vocab_size: output classes ``V``, blank included.
        channels: width ``C`` of the encoder.
        kernel: temporal kernel of each depthwise convolution.
        dilations: one dilation per residual block (their count is the depth).
        stack: feature frames per output frame.
        ffn_mult: width of each block's feed-forward layer, in multiples of ``C``.
        cmn_prior_frames: weight, in frames, of the global mean in the running mean.
        dropout: dropout inside the blocks during training.
    """

    n_mels: int
    vocab_size: int
    channels: int = 256
    kernel: int = 5
    dilations: tuple[int, ...] = (1, 1, 2, 2, 4, 4, 1, 1)
    stack: int = 4
    ffn_mult: int = 2
    cmn_prior_frames: float = 100.0
    dropout: float = 0.1

    @property
    def frames_per_output(self) -> int:
        """Feature frames (10 ms) per output frame."""
        return self.stack

    def to_dict(self) -> dict:
        """Serialisable form for a manifest."""
        data = asdict(self)
        data["dilations"] = list(self.dilations)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        data = dict(data)
        if "dilations" in data:
            data["dilations"] = tuple(data["dilations"])
        return cls(**data)


@dataclass
class StreamState:
    """State of a batch of streams.

    Attributes:
        cmn_sum: ``(B, D)`` sum of the feature frames seen so far.
        cmn_count: ``(B,)`` number of frames seen so far.
        caches: per block, ``(B, C, (kernel - 1) * dilation)`` the block's latest inputs.
    """

    cmn_sum: torch.Tensor
    cmn_count: torch.Tensor
    caches: tuple[torch.Tensor, ...]

    @property
    def batch_size(self) -> int:
        """Number of streams ``B``."""
        return int(self.cmn_count.shape[0])

    def to(self, device: torch.device | str) -> StreamState:
        """The same state on another device."""
        return StreamState(self.cmn_sum.to(device), self.cmn_count.to(device), tuple(c.to(device) for c in self.caches))


def stack_states(states: list[StreamState]) -> StreamState:
    """Join states along the batch axis."""
    return StreamState(
        torch.cat([s.cmn_sum for s in states]), torch.cat([s.cmn_count for s in states]),
        tuple(torch.cat(layer) for layer in zip(*(s.caches for s in states))),
    )


def split_states(state: StreamState) -> list[StreamState]:
    """Split a batch state into one state per stream (inverse of :func:`stack_states`)."""
    # One split per tensor, not one slice per stream and layer: this runs for every batched step.
    caches = [c.split(1) for c in state.caches]
    return [StreamState(total, count, tuple(layer[i] for layer in caches))
            for i, (total, count) in enumerate(zip(state.cmn_sum.split(1), state.cmn_count.split(1)))]


class CausalBlock(nn.Module):
    """``x + FFN(DepthwiseCausalConv(LayerNorm(x)))`` with its input cache."""

    def __init__(self, channels: int, kernel: int, dilation: int, ffn_mult: int, dropout: float) -> None:
        super().__init__()
        self.context = (kernel - 1) * dilation
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation, groups=channels)
        self.ffn = nn.Sequential(nn.Linear(channels, channels * ffn_mult), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(channels * ffn_mult, channels))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, cache: torch.Tensor):
        """Args: ``x`` ``(B, U, C)``, ``lengths`` ``(B,)``, ``cache`` ``(B, C, context)``.

        Returns ``(y, new_cache)``; the cache holds the normalised inputs before each row's end.
        """
        h = self.norm(x).transpose(1, 2)  # (B, C, U)
        full = torch.cat([cache, h], dim=2)  # (B, C, context + U)
        y = self.conv(full).transpose(1, 2)  # (B, U, C)
        index = (torch.arange(self.context, device=x.device)[None, :] + lengths[:, None]).long()
        new_cache = torch.gather(full, 2, index[:, None, :].expand(-1, full.shape[1], -1))
        return x + self.dropout(self.ffn(y)), new_cache


class StreamingCTC(nn.Module):
    """The causal convolutional streaming CTC model; see the module docstring."""

    stack_states = staticmethod(stack_states)
    split_states = staticmethod(split_states)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("feature_mean", torch.zeros(c.n_mels))
        self.register_buffer("feature_std", torch.ones(c.n_mels))
        self.proj = nn.Linear(c.n_mels * c.stack, c.channels)
        self.blocks = nn.ModuleList(CausalBlock(c.channels, c.kernel, d, c.ffn_mult, c.dropout) for d in c.dilations)
        self.norm = nn.LayerNorm(c.channels)
        self.head = nn.Linear(c.channels, c.vocab_size)

    def initial_state(self, batch_size: int = 1) -> StreamState:
        """State of ``batch_size`` fresh streams."""
        c, device = self.config, self.feature_mean.device
        return StreamState(
            torch.zeros(batch_size, c.n_mels, device=device), torch.zeros(batch_size, device=device),
            tuple(torch.zeros(batch_size, c.channels, b.context, device=device) for b in self.blocks),
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

    def step(self, features: torch.Tensor, lengths: torch.Tensor, state: StreamState):
        """Advance a batch of streams by one chunk.

        Args:
            features: ``(B, T, D)`` log-mel frames; ``T`` a multiple of
                ``config.frames_per_output``.
            lengths: ``(B,)`` valid frames per stream, each a multiple of
                ``config.frames_per_output`` (frames past it are padding; 0 leaves a stream as it was).
            state: the streams' state before this chunk.

        Returns:
            ``(log_probs, out_lengths, new_state)``: ``(B, U, V)`` log
            posteriors, ``(B,)`` valid output frames, and the state after the chunk.

        Raises:
            ValueError: on a ``T`` or length that is not a whole number of output frames,
                or features of the wrong dimension.
        """
        c = self.config
        B, T, D = features.shape
        k = c.frames_per_output
        if T % k or bool((lengths % k != 0).any()):
            raise ValueError(f"frames per stream must be multiples of {k}, got T={T}, lengths={lengths.tolist()}")
        if D != c.n_mels:
            raise ValueError(f"expected {c.n_mels} mel bins, got {D}")
        x, cmn_sum, cmn_count = self._normalise(features, lengths, state)
        x = self.proj(x.reshape(B, T // k, D * k))
        out_lengths = lengths // k
        caches = []
        for block, cache in zip(self.blocks, state.caches):
            x, new_cache = block(x, out_lengths, cache)
            caches.append(new_cache)
        log_probs = F.log_softmax(self.head(self.norm(x)), dim=-1)
        return log_probs, out_lengths, StreamState(cmn_sum, cmn_count, tuple(caches))

    def forward(self, features: torch.Tensor, lengths: torch.Tensor):
        """Whole utterances from a fresh state: ``(log_probs, out_lengths)``."""
        log_probs, out_lengths, _ = self.step(features, lengths, self.initial_state(features.shape[0]))
        return log_probs, out_lengths


class _StepGraph(nn.Module):
    """:meth:`StreamingCTC.step` over plain tensors, the form :func:`torch.jit.trace` records."""

    def __init__(self, model: StreamingCTC) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, lengths: torch.Tensor, cmn_sum: torch.Tensor, cmn_count: torch.Tensor,
                caches: tuple[torch.Tensor, ...]):
        log_probs, out_lengths, state = self.model.step(features, lengths, StreamState(cmn_sum, cmn_count, caches))
        return log_probs, out_lengths, state.cmn_sum, state.cmn_count, state.caches


class TracedStep:
    """:meth:`StreamingCTC.step` as a TorchScript graph, for serving.

    The step is a fixed sequence of tensor operations (no control flow on
    values), so one trace serves every batch size and chunk width; it is
    checked against the eager step in the tests. Serving wants it because the
    graph runs its few hundred operations in C++ in one call: less per-step
    overhead, and far fewer hand-overs of the GIL to the event loop's thread.
    The input checks of :meth:`StreamingCTC.step` stay in Python, here.

    Args:
        model: a model in eval mode (dropout off), on its serving device.
    """

    def __init__(self, model: StreamingCTC) -> None:
        self.model = model
        device = model.feature_mean.device
        example = model.initial_state(2)
        features = torch.zeros(2, 2 * model.config.frames_per_output, model.config.n_mels, device=device)
        lengths = torch.full((2,), features.shape[1], device=device)
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer warns that the Python-side checks in step() are frozen into the trace;
            # they are constant for valid inputs, and __call__ repeats them in Python.
            warnings.simplefilter("ignore")
            self._graph = torch.jit.trace(_StepGraph(model).eval(),
                                          (features, lengths, example.cmn_sum, example.cmn_count, example.caches),
                                          check_trace=False)

    def __call__(self, features: torch.Tensor, lengths: torch.Tensor, state: StreamState):
        """Same contract as :meth:`StreamingCTC.step`."""
        k = self.model.config.frames_per_output
        if features.shape[1] % k or bool((lengths % k != 0).any()):
            raise ValueError(f"frames per stream must be multiples of {k}, got T={features.shape[1]}, "
                             f"lengths={lengths.tolist()}")
        if features.shape[2] != self.model.config.n_mels:
            raise ValueError(f"expected {self.model.config.n_mels} mel bins, got {features.shape[2]}")
        log_probs, out_lengths, cmn_sum, cmn_count, caches = self._graph(features, lengths, state.cmn_sum,
                                                                         state.cmn_count, state.caches)
        return log_probs, out_lengths, StreamState(cmn_sum, cmn_count, tuple(caches))
