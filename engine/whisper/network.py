"""Whisper's network in torch: the encoder (full context, or block-causal and streaming) and the decoder.

Module names follow openai-whisper's, so its checkpoints load as they are; CTranslate2's are mapped
by :func:`engine.whisper.weights.whisper_state_dict`.

The streaming encoder (:meth:`AudioEncoder.step`) differs from Whisper's in three ways, each
applied identically to a whole utterance by :meth:`AudioEncoder.forward` with ``causal=True``,
so that chunk-by-chunk and whole-utterance outputs are the same (the tests check it):

- the two convolutions are causal: their inputs are padded by two frames on the left instead of
  one on each side, which delays each output by one frame of its input (10 ms, then 20 ms) and
  lets the front end keep only its last two input frames per convolution;
- self-attention is block-causal: a frame sees every frame of its own chunk (``chunk_frames``
  encoder frames) and of the ``left_chunks`` chunks before it, nothing later;
- each layer caches the keys and values of the last ``left_chunks * chunk_frames`` frames.

Positions count encoder frames from the start of the stream state; Whisper has learned 1,500
(30 s), so a stream restarts its state at each utterance boundary (:class:`WhisperState`).

Shape legend: ``B``: batch, ``T``: mel frames (10 ms), ``N``: encoder frames (20 ms), ``D``: mel
bins, ``C``: model width, ``W``: cached frames, ``L``: text tokens, ``V``: text vocabulary.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class WhisperDims:
    """Sizes of a Whisper model (openai-whisper's ``ModelDimensions``)."""

    n_mels: int = 80
    n_audio_ctx: int = 1500
    n_audio_state: int = 384
    n_audio_head: int = 6
    n_audio_layer: int = 4
    n_vocab: int = 51864
    n_text_ctx: int = 448
    n_text_state: int = 384
    n_text_head: int = 6
    n_text_layer: int = 4

    def to_dict(self) -> dict:
        """Serialisable form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> WhisperDims:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown Whisper dims: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> WhisperDims:
        """Infer the sizes from the weights (heads: 64 channels each, as in every Whisper model)."""
        n_audio_state = state["encoder.ln_post.weight"].shape[0]
        n_text_state = state["decoder.ln.weight"].shape[0]
        return cls(
            n_mels=state["encoder.conv1.weight"].shape[1], n_audio_ctx=state["encoder.positional_embedding"].shape[0],
            n_audio_state=n_audio_state, n_audio_head=n_audio_state // 64,
            n_audio_layer=len({k.split(".")[2] for k in state if k.startswith("encoder.blocks.")}),
            n_vocab=state["decoder.token_embedding.weight"].shape[0],
            n_text_ctx=state["decoder.positional_embedding"].shape[0], n_text_state=n_text_state,
            n_text_head=n_text_state // 64,
            n_text_layer=len({k.split(".")[2] for k in state if k.startswith("decoder.blocks.")}))


def sinusoids(length: int, channels: int, max_timescale: float = 10000) -> torch.Tensor:
    """Whisper's sinusoidal positional embedding ``(length, channels)``."""
    log_increment = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-log_increment * torch.arange(channels // 2))
    scaled = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1)


class MultiHeadAttention(nn.Module):
    """Whisper's attention: the key has no bias."""

    def __init__(self, n_state: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, C)`` to ``(B, H, N, C / H)``."""
        B, N, C = x.shape
        return x.view(B, N, self.n_head, C // self.n_head).transpose(1, 2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: torch.Tensor | None = None) -> torch.Tensor:
        """Scaled dot-product attention of projected ``(B, N, C)`` tensors; ``mask``: True = may attend."""
        y = F.scaled_dot_product_attention(self.heads(q), self.heads(k), self.heads(v), attn_mask=mask)
        B, H, N, c = y.shape
        return self.out(y.transpose(1, 2).reshape(B, N, H * c))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Self-attention over ``x`` ``(B, N, C)``."""
        return self.attend(self.query(x), self.key(x), self.value(x), mask)


class ResidualAttentionBlock(nn.Module):
    """Pre-norm transformer block; with ``cross_attention`` a decoder block."""

    def __init__(self, n_state: int, n_head: int, cross_attention: bool = False) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        self.cross_attn = MultiHeadAttention(n_state, n_head) if cross_attention else None
        self.cross_attn_ln = nn.LayerNorm(n_state) if cross_attention else None
        self.mlp = nn.Sequential(nn.Linear(n_state, 4 * n_state), nn.GELU(), nn.Linear(4 * n_state, n_state))
        self.mlp_ln = nn.LayerNorm(n_state)


def block_mask(query_pos: torch.Tensor, key_pos: torch.Tensor, key_valid: torch.Tensor, *, chunk_frames: int,
               left_chunks: int) -> torch.Tensor:
    """Block-causal attention mask.

    Args:
        query_pos: ``(B, N)`` positions of the queries.
        key_pos: ``(B, M)`` positions of the keys.
        key_valid: ``(B, M)`` True where a key exists.
        chunk_frames: frames per chunk.
        left_chunks: how many earlier chunks a frame sees.

    Returns:
        ``(B, 1, N, M)`` bool, True where the query may attend the key. A query that may attend
        nothing (padding) attends every valid key, so that no row is all masked.
    """
    qc = torch.div(query_pos, chunk_frames, rounding_mode="floor")[:, :, None]
    kc = torch.div(key_pos, chunk_frames, rounding_mode="floor")[:, None, :]
    allowed = (kc <= qc) & (kc >= qc - left_chunks) & key_valid[:, None, :]
    empty = ~allowed.any(dim=2, keepdim=True)
    return (allowed | (empty & key_valid[:, None, :]))[:, None]


@dataclass
class EncoderCache:
    """The streaming encoder's state for a batch of streams.

    Attributes:
        offset: ``(B,)`` encoder frames seen since the state began (the next frame's position).
        conv1: ``(B, D, 2)`` the last two normalised mel frames.
        conv2: ``(B, C, 2)`` the last two outputs of the first convolution.
        keys: per layer ``(B, W, C)``, the keys of the last ``W`` frames (right-aligned; slots
            before the stream's start are unused).
        values: per layer ``(B, W, C)``, their values.
    """

    offset: torch.Tensor
    conv1: torch.Tensor
    conv2: torch.Tensor
    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]

    def to(self, device: torch.device | str) -> EncoderCache:
        """The same state on another device."""
        return EncoderCache(self.offset.to(device), self.conv1.to(device), self.conv2.to(device),
                            tuple(k.to(device) for k in self.keys), tuple(v.to(device) for v in self.values))


def _keep_last(full: torch.Tensor, keep: int, ends: torch.Tensor) -> torch.Tensor:
    """Per row, the ``keep`` frames of ``full`` ``(B, M, C)`` that end at index ``ends[b]`` (exclusive)."""
    index = torch.arange(keep, device=full.device)[None, :] + (ends - keep)[:, None]
    return torch.gather(full, 1, index[:, :, None].expand(-1, -1, full.shape[2]))


class AudioEncoder(nn.Module):
    """Whisper's audio encoder; see the module docstring for its streaming form."""

    def __init__(self, dims: WhisperDims) -> None:
        super().__init__()
        self.dims = dims
        self.conv1 = nn.Conv1d(dims.n_mels, dims.n_audio_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(dims.n_audio_state, dims.n_audio_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(dims.n_audio_ctx, dims.n_audio_state))
        self.blocks = nn.ModuleList(ResidualAttentionBlock(dims.n_audio_state, dims.n_audio_head)
                                    for _ in range(dims.n_audio_layer))
        self.ln_post = nn.LayerNorm(dims.n_audio_state)

    def front(self, mel: torch.Tensor, *, causal: bool) -> torch.Tensor:
        """``(B, T, D)`` normalised mel to ``(B, N, C)`` (``N = ceil(T / 2)``) before the positions."""
        x = mel.transpose(1, 2)
        if causal:
            x = F.gelu(F.conv1d(F.pad(x, (2, 0)), self.conv1.weight, self.conv1.bias))
            x = F.gelu(F.conv1d(F.pad(x, (2, 0)), self.conv2.weight, self.conv2.bias, stride=2))
        else:
            x = F.gelu(self.conv2(F.gelu(self.conv1(x))))
        return x.transpose(1, 2)

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor | None = None, *, causal: bool = False,
                chunk_frames: int = 8, left_chunks: int = 32, layers: int | None = None) -> torch.Tensor:
        """Encode whole utterances.

        Args:
            mel: ``(B, T, D)`` normalised log-mel, ``T`` at most twice the positions.
            lengths: ``(B,)`` valid mel frames (None: all); keys past them are masked out.
            causal: the streaming encoder's computation (see the module docstring); otherwise
                Whisper's full context.
            chunk_frames, left_chunks: the block-causal mask (with ``causal``).
            layers: run only the first ``layers`` blocks, without ``ln_post`` (None: all, then ``ln_post``).

        Returns:
            ``(B, N, C)`` encoder frames.
        """
        x = self.front(mel, causal=causal)
        B, N, _ = x.shape
        if N > self.dims.n_audio_ctx:
            raise ValueError(f"{N} encoder frames exceed Whisper's {self.dims.n_audio_ctx} positions")
        x = x + self.positional_embedding[:N]
        pos = torch.arange(N, device=x.device).expand(B, N)
        valid = torch.ones(B, N, dtype=torch.bool, device=x.device) if lengths is None else \
            pos < torch.div(lengths + 1, 2, rounding_mode="floor")[:, None]
        if causal:
            mask = block_mask(pos, pos, valid, chunk_frames=chunk_frames, left_chunks=left_chunks)
        else:
            mask = None if lengths is None else valid[:, None, None, :]
        x = self.run_blocks(x, mask, stop=layers)
        return self.ln_post(x) if layers is None else x

    def run_blocks(self, x: torch.Tensor, mask: torch.Tensor | None, *, start: int = 0,
                   stop: int | None = None) -> torch.Tensor:
        """Blocks ``start`` to ``stop`` (exclusive; None: the last) over ``(B, N, C)`` with ``mask``."""
        for block in self.blocks[start:stop]:
            x = x + block.attn(block.attn_ln(x), mask)
            x = x + block.mlp(block.mlp_ln(x))
        return x

    def initial_cache(self, batch_size: int, cache_frames: int) -> EncoderCache:
        """The state of ``batch_size`` fresh streams with ``cache_frames`` frames of key/value cache."""
        p = self.conv1.weight
        d, c = self.dims.n_mels, self.dims.n_audio_state
        zeros = [torch.zeros(batch_size, cache_frames, c, device=p.device, dtype=p.dtype)
                 for _ in range(2 * len(self.blocks))]
        return EncoderCache(torch.zeros(batch_size, dtype=torch.long, device=p.device),
                            torch.zeros(batch_size, d, 2, device=p.device, dtype=p.dtype),
                            torch.zeros(batch_size, c, 2, device=p.device, dtype=p.dtype),
                            tuple(zeros[::2]), tuple(zeros[1::2]))

    def step(self, mel: torch.Tensor, lengths: torch.Tensor, cache: EncoderCache, *, chunk_frames: int,
             left_chunks: int) -> tuple[torch.Tensor, torch.Tensor, EncoderCache]:
        """Advance a batch of streams by whole chunks.

        Args:
            mel: ``(B, T, D)`` normalised log-mel, ``T`` even.
            lengths: ``(B,)`` valid mel frames per row, even (0 leaves a row as it was). Each row's
                position must be at a chunk boundary unless this is the row's last step.
            cache: the rows' state.
            chunk_frames, left_chunks: as in :meth:`forward`; ``cache`` must hold
                ``left_chunks * chunk_frames`` frames.

        Returns:
            ``(out, out_lengths, new_cache)``: ``(B, N, C)`` encoder frames (after ``ln_post``),
            ``(B,)`` valid frames, the state after the chunk.
        """
        n_valid = torch.div(lengths, 2, rounding_mode="floor")
        x = mel.transpose(1, 2)
        full1 = torch.cat([cache.conv1, x], dim=2)  # (B, D, 2 + T)
        h1 = F.gelu(F.conv1d(full1, self.conv1.weight, self.conv1.bias))  # (B, C, T)
        full2 = torch.cat([cache.conv2, h1], dim=2)  # (B, C, 2 + T)
        h2 = F.gelu(F.conv1d(full2, self.conv2.weight, self.conv2.bias, stride=2))  # (B, C, T / 2)
        conv1 = _keep_last(full1.transpose(1, 2), 2, lengths + 2).transpose(1, 2)
        conv2 = _keep_last(full2.transpose(1, 2), 2, lengths + 2).transpose(1, 2)
        x = h2.transpose(1, 2)  # (B, N, C)
        B, N, _ = x.shape
        W = cache.keys[0].shape[1] if cache.keys else 0
        steps = torch.arange(N, device=x.device)
        pos = cache.offset[:, None] + steps[None, :]  # (B, N)
        x = x + self.positional_embedding[pos.clamp(max=self.dims.n_audio_ctx - 1)]
        key_pos = torch.cat([cache.offset[:, None] - W + torch.arange(W, device=x.device)[None, :], pos], dim=1)
        key_valid = torch.cat([key_pos[:, :W] >= 0, steps[None, :] < n_valid[:, None]], dim=1)
        mask = block_mask(pos, key_pos, key_valid, chunk_frames=chunk_frames, left_chunks=left_chunks)
        keys, values = [], []
        for block, k_cache, v_cache in zip(self.blocks, cache.keys, cache.values):
            h = block.attn_ln(x)
            k = torch.cat([k_cache, block.attn.key(h)], dim=1)
            v = torch.cat([v_cache, block.attn.value(h)], dim=1)
            x = x + block.attn.attend(block.attn.query(h), k, v, mask)
            x = x + block.mlp(block.mlp_ln(x))
            keys.append(_keep_last(k, W, W + n_valid))
            values.append(_keep_last(v, W, W + n_valid))
        return (self.ln_post(x), n_valid,
                EncoderCache(cache.offset + n_valid, conv1, conv2, tuple(keys), tuple(values)))


class TextDecoder(nn.Module):
    """Whisper's text decoder."""

    def __init__(self, dims: WhisperDims) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(dims.n_vocab, dims.n_text_state)
        self.positional_embedding = nn.Parameter(torch.empty(dims.n_text_ctx, dims.n_text_state))
        self.blocks = nn.ModuleList(ResidualAttentionBlock(dims.n_text_state, dims.n_text_head, cross_attention=True)
                                    for _ in range(dims.n_text_layer))
        self.ln = nn.LayerNorm(dims.n_text_state)
        #: the output projection when it is not the tied embedding itself (see :func:`quantized`)
        self.output: nn.Module | None = None

    def cross_kv(self, audio: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, the cross-attention keys and values of encoder frames ``(B, N, C)`` (computed once)."""
        return [(b.cross_attn.key(audio), b.cross_attn.value(audio)) for b in self.blocks]

    def forward(self, tokens: torch.Tensor, cross: list[tuple[torch.Tensor, torch.Tensor]],
                self_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
                audio_mask: torch.Tensor | None = None):
        """Logits of the next tokens.

        Args:
            tokens: ``(B, L)`` the new tokens (after those already in ``self_kv``).
            cross: from :meth:`cross_kv`.
            self_kv: per layer the keys and values of the earlier tokens, or None at the start.
            audio_mask: ``(B, 1, 1, N)`` True for valid encoder frames (None: all).

        Returns:
            ``(logits, new_self_kv)``: ``(B, L, V)`` and the cache including the new tokens.
        """
        past = 0 if self_kv is None else self_kv[0][0].shape[1]
        L = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[past: past + L]
        causal = torch.ones(L, past + L, dtype=torch.bool, device=tokens.device).tril(past)
        new_kv = []
        for i, block in enumerate(self.blocks):
            h = block.attn_ln(x)
            k, v = block.attn.key(h), block.attn.value(h)
            if self_kv is not None:
                k, v = torch.cat([self_kv[i][0], k], dim=1), torch.cat([self_kv[i][1], v], dim=1)
            new_kv.append((k, v))
            x = x + block.attn.attend(block.attn.query(h), k, v, causal)
            h = block.cross_attn_ln(x)
            x = x + block.cross_attn.attend(block.cross_attn.query(h), cross[i][0], cross[i][1], audio_mask)
            x = x + block.mlp(block.mlp_ln(x))
        x = self.ln(x)
        logits = x @ self.token_embedding.weight.T if self.output is None else self.output(x)
        return logits, new_kv


class Whisper(nn.Module):
    """Encoder and decoder."""

    def __init__(self, dims: WhisperDims) -> None:
        super().__init__()
        self.dims = dims
        self.encoder = AudioEncoder(dims)
        self.decoder = TextDecoder(dims)


def quantized(model: Whisper) -> Whisper:
    """A copy of ``model`` with every Linear layer, and the decoder's tied output projection,
    dynamically quantised to int8 (``torch.ao.quantization.quantize_dynamic``): weights in int8,
    activations quantised per call. The projection onto the 51,864-token vocabulary is most of a
    decoder step on a CPU (it reads the whole embedding matrix), so it becomes a Linear of its own
    before quantisation. For inference only (the copy shares nothing with ``model``)."""
    clone = copy.deepcopy(model)
    output = nn.Linear(clone.dims.n_text_state, clone.dims.n_vocab, bias=False)
    output.weight = clone.decoder.token_embedding.weight
    clone.decoder.output = output
    with warnings.catch_warnings():  # torch 2.9 announces the move of eager quantisation to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(clone, {nn.Linear}, dtype=torch.qint8).eval()
